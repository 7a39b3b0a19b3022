"""`python -m livematte` runs the command line."""
import sys

from livematte.cli import main

sys.exit(main())
