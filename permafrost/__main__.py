"""``python -m permafrost`` runs the command-line app."""

from permafrost import _interrupted

try:
    from permafrost.cli import main
except BaseException as exc:  # Ctrl-C while the import machinery loads the app, before its
    import sys  # own guards run: one line and exit code 130, as mid-run (no traceback)

    if not _interrupted(exc):  # possibly wrapped (a RuntimeError from __set_name__)
        raise
    sys.stderr.write("Interrupted during start-up; nothing was written.\n")
    raise SystemExit(130) from None

if __name__ == "__main__":
    main()
