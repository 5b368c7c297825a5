"""`python -m explainers …`: see explainers/cli.py."""
import sys

from models.host_memory import keep_freed_memory

from .cli import main

keep_freed_memory()  # here, not in main(): this process is the CLI's own, while main() is also called in-process
sys.exit(main())
