"""``python -m permafrost`` runs the command-line app."""

try:
    from permafrost.cli import main
except KeyboardInterrupt:  # Ctrl-C while the import machinery loads the app, before its own
    import sys  # guards run: one line and exit code 130, as mid-run (no traceback)

    sys.stderr.write("Interrupted during start-up; nothing was written.\n")
    raise SystemExit(130) from None

if __name__ == "__main__":
    main()
