"""`python -m explainers …`: see explainers/cli.py."""
import sys

from .cli import main

sys.exit(main())
