"""``python -m crossgrad.benchmarks [options]`` is ``crossgrad bench [options]``."""

import sys

from crossgrad.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
