"""``python -m crossgrad`` runs the ``crossgrad`` command."""

from .cli import console_main

if __name__ == "__main__":  # importing the module (pkgutil, API docs) must not run the command
    console_main()
