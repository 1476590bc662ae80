"""The command-line app: version, help on every command, one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from permafrost import __version__
from permafrost.cli import app

runner = CliRunner()


def command_names() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"permafrost {__version__}"


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and name in result.output


def test_missing_input_is_one_line_exit_2_no_traceback(tmp_path):
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["inspect", str(missing)])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0] and lines[0].startswith("Error:")
    assert "Traceback" not in result.output + result.stderr


def test_unreadable_file_is_reported_not_fatal(tmp_path):
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    (tmp_path / "ok.json").write_text('{"a": 1}')
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert "broken.tif" in result.stdout and "unreadable" in result.stdout
    strict = runner.invoke(app, ["inspect", str(tmp_path), "--strict"])
    assert strict.exit_code == 2 and "broken.tif" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_console_script_runs_as_a_process(tmp_path):
    """The installed entry point works and keeps the one-line error contract."""
    proc = subprocess.run([sys.executable, "-m", "permafrost", "inspect", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_verbose_turns_on_logging(tmp_path, caplog):
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    result = runner.invoke(app, ["-v", "inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert any("broken.tif" in r.getMessage() for r in caplog.records)


def test_public_api_names_resolve():
    import permafrost

    for name in permafrost.__all__:
        assert getattr(permafrost, name) is not None, name
    with pytest.raises(AttributeError):
        permafrost.no_such_function  # noqa: B018
