"""``python -m crossgrad`` runs the ``crossgrad`` command."""

from .cli import console_main

console_main()
