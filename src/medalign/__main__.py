"""``python -m medalign <command> ...``: the same as the `medalign` console script."""

from medalign.cli import main

main()
