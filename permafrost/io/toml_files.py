"""TOML files in (pipeline files, covariate stack files): one reader with one-line errors.

:func:`read_toml` refuses, naming the file (and the key), what ``tomllib`` would turn into a
raw error or what TOML allows but no setting can mean: invalid syntax or encoding, nesting so
deep that ``tomllib``'s recursive parser overflows, a NUL character in a key or a string
(no path or name can hold one), and nesting deeper than :data:`MAX_DEPTH` levels (checked
iteratively, with no recursion on the user's depth).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from permafrost.errors import ConfigError, InputFileError

__all__ = ["MAX_DEPTH", "read_toml"]

#: deepest nesting of arrays and tables a pipeline or stack file may use (they use 4)
MAX_DEPTH = 32


def read_toml(path: str | os.PathLike, *, what: str = "file") -> dict[str, Any]:
    """The parsed TOML of ``path``.

    Raises
    ------
    InputFileError
        The file does not exist.
    ConfigError
        Invalid TOML or UTF-8, too deep a nesting, or a NUL character in a key or value.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{what} not found", path=p, fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", path=p,
                          fix="save the file as UTF-8 text") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", path=p, fix="fix the syntax") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError("not valid TOML (arrays or tables nested too deeply)", path=p,
                          fix=f"nest at most {MAX_DEPTH} levels") from None
    _check_raw(raw, p)
    return raw


def _check_raw(raw: dict, path: Path) -> None:
    todo: list[tuple[Any, tuple, int]] = [(raw, (), 0)]
    while todo:
        obj, loc, depth = todo.pop()
        where = ".".join(str(k) for k in loc) or None
        if depth > MAX_DEPTH:
            raise ConfigError(f"arrays or tables nested more than {MAX_DEPTH} levels deep",
                              path=path, field=where, fix="flatten the value")
        if isinstance(obj, str) and "\x00" in obj:
            raise ConfigError("a NUL character in a value", path=path, field=where,
                              fix="remove the \\u0000 (no path or name can hold one)")
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
            if isinstance(obj, list) else ()
        for k, v in items:
            if isinstance(k, str) and "\x00" in k:
                raise ConfigError("a NUL character in a key", path=path, field=where,
                                  fix="remove the \\u0000 from the key")
            todo.append((v, (*loc, k), depth + 1))
