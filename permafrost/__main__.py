"""``python -m permafrost`` runs the command-line app."""

from permafrost.cli import main

if __name__ == "__main__":
    main()
