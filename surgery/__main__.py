"""`python -m surgery`: the same as the `savedmodel-surgery` command."""

from surgery.cli import run

run()
