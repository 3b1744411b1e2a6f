"""python -m smlib.study: the study runner's command line (smlib.study.cli)."""
import sys

from .cli import main

sys.exit(main())
