"""The CLI helpers of the robustness tests and the assertion every malformed-input test ends
with (:func:`assert_clean_failure`).

The factory fixtures (``make_covariates``, ``make_pzi``, ``model_dir``, ``make_inventory``...)
live in ``tests/conftest.py`` and ``tests/factories.py``, where every test sees them.  Every
factory writes a *valid* input first; the tests then damage one thing (truncate a file,
drop a dataset, swap two columns, ...) so that each test checks exactly one defect.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from permafrost.io.atomic import TMP_MARK

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # factories lives in tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the factories and their fixtures moved to tests/factories.py and tests/conftest.py (every
# test sees them); re-exported here for the robustness tests that import them from here
from factories import (  # noqa: E402, F401
    BOREHOLE_HEADER,
    FEATURES,
    NX,
    NY,
    PRIVATE,
    RES,
    ROOT,
    TIMING_KEYS,
    X0,
    Y0,
    borehole_rows,
    cell_box,
    cell_point,
    compare_runs,
    covariate_arrays,
    demo_pipeline_text,
    normalised,
    rewrite_h5,
    run_files,
    write_raster,
)


# ----------------------------------------------------------------------------- CLI helpers


def invoke(args: list) -> object:
    """Run the CLI in-process (stdout and stderr kept apart)."""
    from permafrost.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@dataclass
class Outputs:
    """A snapshot of output paths: which existed, with which bytes, and the temporaries."""

    paths: list[Path]
    before: dict

    @classmethod
    def take(cls, *paths) -> Outputs:
        ps = [Path(p) for p in paths]
        return cls(ps, {p: _digest(p) for p in ps})

    def assert_untouched(self) -> None:
        for p in self.paths:
            now = _digest(p)
            assert now == self.before[p], (
                f"{p}: partial or changed output after a failed command "
                f"(before: {self.before[p]}, after: {now})")
            parent = p.parent
            if parent.is_dir():
                left = [q.name for q in parent.iterdir() if TMP_MARK in q.name]
                assert not left, f"temporary files left behind in {parent}: {left}"


def _digest(p: Path):
    if p.is_dir():
        return ("dir", sorted(str(q.relative_to(p)) + ":" + hashlib.sha256(q.read_bytes())
                              .hexdigest() for q in p.rglob("*") if q.is_file()))
    if p.is_file():
        return ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return None


#: malformed inputs refused cleanly in this session (the figure docs/reliability.md quotes)
REFUSED: list[str] = []
#: (command, the point of its progress where it was killed and what it had left) of every
#: SIGKILL a later rerun recovered from (tests/robustness/test_interruptions.py)
INTERRUPTIONS: list[tuple[str, str]] = []
#: files found identical between two full demo runs, by suffix (tests/test_determinism.py)
IDENTICAL: dict[str, int] = {}


def assert_clean_failure(result, *, names, field: str | None = None, outputs: Outputs | None = None,
                         exit_code: int = 2) -> str:
    """The contract for a bad input: exit code, exactly one line on stderr naming the file
    (and the field), no traceback, no partial output.  Returns the line."""
    out, err = result.stdout, result.stderr
    assert result.exit_code == exit_code, (
        f"exit code {result.exit_code} (expected {exit_code});\nstdout: {out}\nstderr: {err}\n"
        f"exception: {result.exception!r}")
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    line = lines[0]
    for n in ([names] if isinstance(names, (str, Path)) else names):
        n = Path(n).name if isinstance(n, Path) else n
        assert n in line, f"{n!r} not named in the error: {line}"
    if field is not None:
        assert field in line, f"field {field!r} not named in the error: {line}"
    if outputs is not None:
        outputs.assert_untouched()
    REFUSED.append(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
    return line


def pytest_terminal_summary(terminalreporter):
    if REFUSED:
        terminalreporter.write_line(
            f"robustness: {len(REFUSED)} malformed inputs refused cleanly "
            f"(exit code, one named line on stderr, no traceback, no partial output) "
            f"in {len(set(REFUSED))} test cases")
    if INTERRUPTIONS:
        by = {}
        for cmd, _ in INTERRUPTIONS:
            by[cmd] = by.get(cmd, 0) + 1
        terminalreporter.write_line(
            f"robustness: {len(INTERRUPTIONS)} SIGKILLs survived (rerun gave identical bytes), "
            "each at a point of the work done: "
            + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
        for cmd, point in INTERRUPTIONS:
            terminalreporter.write_line(f"  killed {cmd} {point}")
    if IDENTICAL:
        terminalreporter.write_line(
            f"determinism: {sum(IDENTICAL.values())} files identical between two demo runs ("
            + ", ".join(f"{v} {k}" for k, v in sorted(IDENTICAL.items())) + ")")
