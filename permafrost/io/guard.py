"""The output guard: before any work, every path a command or a pipeline step will write is
checked against its inputs, against the other outputs and against what is on disk.

A command lists its outputs (side files included) as :class:`Output` records and its inputs
by option name, then calls :func:`check_outputs` before it reads anything.  It refuses, with
one :class:`~permafrost.errors.OutputError` line naming the path, what it collides with and
the fix, an output that

- is an input (the same file by :func:`os.path.samefile`, or the same resolved path), lies
  inside an input folder (``predict --out`` into the covariate folder or the model
  directory), or is a folder output that contains an input (``train --out`` onto a
  project folder that holds the covariates);
- is another output of the same command, or lies inside a folder output;
- is an existing GeoPackage that holds layers other than the one the command writes (the
  whole file is replaced on write, so those layers would be lost);
- is an existing folder where a file goes, or a file where a folder goes;
- is an existing folder that permafrost would replace or write into as a whole (a model
  directory, a pipeline's ``output_dir``, a block cache) and that permafrost did not write:
  neither empty, nor marked by :data:`MARKER`, nor recognised by the caller (a model
  directory is recognised by its ``metadata.json``; a run folder written before the marker
  existed by its ``.cache/hashes.json``);
- is the current directory or one of its parents, or has a name longer than the file
  system takes (255 bytes).

Deleting follows the same rule: :func:`check_replaceable` is called right before a folder
is renamed away or removed, so the tool deletes only what it wrote.  Paths are expanded as a
shell would (``~``, ``$VAR``) by :func:`expand_path` where the shell did not do it (pipeline
files).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from permafrost import __version__
from permafrost.errors import ConfigError, OutputError

__all__ = ["MARKER", "NAME_MAX", "RUN_FOLDER", "Output", "check_outputs", "check_replaceable",
           "expand_path", "is_marked", "mark_folder", "provenance_base", "run_root"]

#: the marker file of a folder permafrost wrote (a pipeline's output_dir, a block cache)
MARKER = ".permafrost"

#: longest file name most file systems take (ext4, XFS, tmpfs, APFS, NTFS: 255 bytes)
NAME_MAX = 255

#: kinds of :class:`Output`: a file; a folder the command writes files into (it replaces
#: only those files); a folder the tool owns as a whole (it may replace or delete it)
KINDS = ("file", "folder", "owned")


@dataclass(frozen=True)
class Output:
    """One path a command writes.

    Parameters
    ----------
    path : path-like
        The path as the user gave it (or as the command derives it).
    label : str
        How the user named it: an option (``--out``), a pipeline key
        (``pipeline.output_dir``) or ``"<name> beside --out"`` for a side file.
    kind : str
        ``"file"``, ``"folder"`` (files are written into it) or ``"owned"`` (a folder
        permafrost replaces or deletes as a whole; it must be absent, empty, marked or
        recognised).
    layer : str, optional
        The one layer written into a GeoPackage ``path``; the file must hold no other.
    recognise : callable, optional
        For ``"owned"``: ``recognise(path) -> bool`` says a folder without the marker was
        written by permafrost all the same (back-compatibility).
    what : str
        What the folder is, for the messages (``"model directory"``).
    """

    path: Any
    label: str
    kind: str = "file"
    layer: str | None = None
    recognise: Callable[[Path], bool] | None = None
    what: str = "output"


def expand_path(path: str | os.PathLike, *, where: Any = None, field: str | None = None) -> Path:
    """``path`` with ``~`` and ``$VAR`` / ``${VAR}`` expanded as a shell would.

    An undefined variable is refused (a shell would drop it and write somewhere else).

    Raises
    ------
    ConfigError
        The path names an environment variable that is not set.
    """
    text = os.path.expanduser(os.fspath(path))
    if "$" in text:
        expanded = os.path.expandvars(text)
        left = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
        if left:
            raise ConfigError(f"the path {text!r} names the environment variable ${left[0]}, "
                              "which is not set", path=where, field=field,
                              fix=f"set {left[0]} or write the path out")
        text = expanded
    return Path(text)


def is_marked(folder: str | os.PathLike) -> bool:
    """True when ``folder`` carries permafrost's :data:`MARKER` file."""
    return (Path(folder) / MARKER).is_file()


def mark_folder(folder: str | os.PathLike, what: str) -> None:
    """Write the :data:`MARKER` of a folder permafrost owns (what wrote it, which version).

    Its bytes depend only on ``what`` and the version, so reruns give identical files."""
    m = Path(folder) / MARKER
    text = json.dumps({"written_by": "permafrost", "what": what, "version": __version__},
                      indent=2, sort_keys=True) + "\n"
    try:
        if m.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    # written in place, not renamed: a second run that looks at the folder meanwhile sees it
    # empty or marked, never holding a temporary file only (only its existence counts)
    m.write_text(text, encoding="utf-8")


#: what the marker of a pipeline's output directory says (:func:`run_root`)
RUN_FOLDER = "pipeline output directory"


def run_root(path: str | os.PathLike) -> Path | None:
    """The pipeline output directory (the *run folder*) that holds ``path``: the nearest
    folder above it whose :data:`MARKER` says :data:`RUN_FOLDER`; None outside any run.

    Provenance paths inside a run are written relative to it, so that they resolve from
    every copy of a file in the run (the step's own and the one published in a scenario
    folder) and from a copy of the whole run folder."""
    for d in Path(os.path.abspath(path)).parents:
        m = d / MARKER
        try:
            if m.is_file() and json.loads(m.read_text(encoding="utf-8")).get("what") \
                    == RUN_FOLDER:
                return d
        except (OSError, ValueError, AttributeError):
            continue
    return None


#: the ``PZI_PATHS_RELATIVE_TO`` tag of a file inside a run (:func:`provenance_base`)
RELATIVE_TO_RUN = (f"the run folder: the nearest folder above this file that holds a {MARKER} "
                   f"file saying \"{RUN_FOLDER}\"")
#: the same tag of a file outside any run
RELATIVE_TO_FILE = "this file's directory"


def provenance_base(path: str | os.PathLike) -> tuple[Path, str]:
    """The folder the provenance paths of the output ``path`` are relative to, and how its
    tags say so: the run folder (:func:`run_root`) inside a pipeline run, else the file's
    own directory."""
    root = run_root(path)
    if root is not None:
        return root, RELATIVE_TO_RUN
    return Path(os.path.abspath(path)).parent, RELATIVE_TO_FILE


def _owned(p: Path, recognise: Callable[[Path], bool] | None) -> bool:
    """An existing folder the tool may replace: empty, marked or recognised."""
    try:
        if not any(p.iterdir()):
            return True
    except OSError:
        return False
    return is_marked(p) or bool(recognise and recognise(p))


def check_replaceable(path: str | os.PathLike, *, label: str | None = None,
                      what: str = "folder",
                      recognise: Callable[[Path], bool] | None = None) -> None:
    """Refuse to replace or delete the folder ``path`` unless permafrost wrote it.

    Called right before a folder is renamed away or removed.  A missing path passes.

    Raises
    ------
    OutputError
        ``path`` is a file, or a folder neither empty, nor marked, nor recognised.
    """
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return
    head = f"{label}: " if label else ""
    give = f" for {label}" if label else ""
    if p.is_symlink() or not p.is_dir():
        raise OutputError(f"{head}a file is in the way of the {what}", path=p,
                          fix=f"give a new folder name{give} (the file is kept)")
    if not _owned(p, recognise):
        raise OutputError(f"{head}an existing folder that permafrost did not write; it "
                          f"would be replaced by the {what}", path=p,
                          fix=f"give a new or empty folder{give} (nothing was changed)")


def _flat(obj: Any, label: str) -> Iterable[tuple[str, Path]]:
    if obj is None:
        return
    if isinstance(obj, (str, os.PathLike)):
        if str(obj) not in ("", "-"):
            yield label, Path(obj)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _flat(v, label)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _flat(v, label)
    elif isinstance(getattr(obj, "path", None), (str, os.PathLike)):  # e.g. a prior spec
        yield label, Path(obj.path)
    elif hasattr(obj, "__dataclass_fields__"):  # e.g. TrackFiles: every path it names
        for name in obj.__dataclass_fields__:
            yield from _flat(getattr(obj, name), label)


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(p))


def _same(a: Path, ra: Path, b: Path, rb: Path) -> bool:
    if ra == rb:
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _inside(child: Path, parent: Path) -> bool:
    return child != parent and parent in child.parents


#: vector formats that hold several layers in one file (the others hold only the output's)
_MULTI_LAYER = (".gpkg", ".sqlite", ".db")


def _layers(p: Path) -> list[str] | None:
    """Layer names of an existing vector file (None when it is not one GDAL reads)."""
    try:
        import pyogrio

        return [str(n) for n in pyogrio.list_layers(p)[:, 0]]
    except Exception:  # noqa: BLE001 - not a vector file: an ordinary file output
        return None


def _styles_only_of(p: Path, layer: str) -> bool:
    """True when the GeoPackage's ``layer_styles`` table (QGIS's) holds styles of ``layer``
    only, as the tool writes it (:func:`permafrost.io.styles.write_gpkg_style`): replacing
    the file loses no other layer's style."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT DISTINCT f_table_name FROM layer_styles")}
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return names <= {layer}


def check_outputs(outputs: Iterable[Output], inputs: Mapping[str, Any] | None = None) -> None:
    """Refuse, before any work, outputs that would lose data (see the module's text).

    Parameters
    ----------
    outputs : iterable of Output
        Every path the command writes, side files included (``None`` paths are skipped).
    inputs : mapping, optional
        Option name -> path, list of paths (nested), objects with a ``path`` or dataclasses
        of paths (``TrackFiles``).  Anything else (in-memory data) is skipped.

    Raises
    ------
    OutputError
        One line: the output path, what it collides with and the fix.
    """
    outs = [o for o in outputs if o.path is not None and str(o.path) not in ("", "-")]
    ins = [(label, p, _resolved(p)) for k, v in (inputs or {}).items() for label, p in _flat(v, k)]
    cwd = _resolved(Path.cwd())
    seen: list[tuple[Output, Path, Path]] = []
    for o in outs:
        given = Path(o.path)
        p = _resolved(given)
        for part in given.parts:
            n = len(os.fsencode(part))
            if n > NAME_MAX:
                short = part if len(part) <= 40 else part[:24] + "..." + part[-12:]
                raise OutputError(f"{o.label}: the name {short!r} is {n} bytes long; file "
                                  f"systems take at most {NAME_MAX}", path=None,
                                  fix=f"choose a shorter name for {o.label}")
        if o.kind == "owned" and (p == cwd or _inside(cwd, p)):
            where = "the current folder" if p == cwd else "a folder above the current one"
            raise OutputError(f"{o.label} is {where}; the {o.what} would replace it",
                              path=p,
                              fix=f"give a new folder name for {o.label}")
        for label, q, rq in ins:
            if _same(given, p, q, rq):
                raise OutputError(f"{o.label} is the input {label} ({q}): writing it would "
                                  "replace the input", path=given,
                                  fix=f"give {o.label} another path (nothing was written)")
            if _inside(p, rq) and rq.is_dir():
                raise OutputError(f"{o.label} lies inside the input folder {label} ({q}); "
                                  "writing it would change that input", path=given,
                                  fix=f"give {o.label} a path outside {q} (nothing was "
                                      "written)")
            if o.kind == "owned" and _inside(rq, p):
                raise OutputError(f"{o.label} contains the input {label} ({q}); the "
                                  f"{o.what} would replace it", path=given,
                                  fix=f"give {o.label} a new folder outside the inputs "
                                      "(nothing was written)")
        for o2, g2, p2 in seen:
            if _same(given, p, g2, p2) or (o2.kind == "owned" and _inside(p, p2)) or (
                    o.kind == "owned" and _inside(p2, p)):
                raise OutputError(f"{o.label} and {o2.label} are the same path"
                                  if _same(given, p, g2, p2)
                                  else f"{o.label} and {o2.label} overlap ({g2})", path=given,
                                  fix="give each output its own path")
        seen.append((o, given, p))
        if o.kind == "file":
            if p.is_dir():
                raise OutputError(f"{o.label}: a folder is in the way of the {o.what} file",
                                  path=given, fix=f"give a file name for {o.label} (the folder "
                                                  "is kept)")
            if o.layer is not None and p.suffix.lower() in _MULTI_LAYER and p.is_file():
                others = [n for n in (_layers(p) or []) if n != o.layer and not (
                    n == "layer_styles" and _styles_only_of(p, o.layer))]
                if others:
                    listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                    raise OutputError(f"{o.label}: the GeoPackage holds other layers "
                                      f"({listed}); writing layer {o.layer!r} replaces the "
                                      "whole file", path=given,
                                      fix=f"give {o.label} a new file (nothing was written)")
        elif p.exists() and not p.is_dir():
            raise OutputError(f"{o.label}: a file is in the way of the {o.what}", path=given,
                              fix=f"give a new folder name for {o.label} (the file is kept)")
        elif o.kind == "owned" and p.is_dir() and not _owned(p, o.recognise):
            raise OutputError(f"{o.label}: an existing folder that permafrost did not write; "
                              f"it would be replaced by the {o.what}", path=given,
                              fix=f"give a new or empty folder for {o.label} (nothing was "
                                  "changed)")
