"""``python -m medalign <command> ...``: the same as the `medalign` console script."""

from medalign.cli import main

if __name__ == "__main__":
    main()
