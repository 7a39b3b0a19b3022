"""`python -m livematte` runs the command line."""
from livematte.cli import run

run()
