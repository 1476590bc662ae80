"""``permafrost serve``: a local, read-only HTTP server of a run folder's map viewer.

Standard library only (:class:`http.server.ThreadingHTTPServer`).  Its whole surface:

==============================  ===========================================================
``GET /``                       the viewer page (package data: ``permafrost/static/viewer``)
``GET /static/NAME``            the page's script and style, Leaflet's files and licence
``GET /api/layers``             the run's layers (:func:`permafrost.workflows.viewer.open_run`)
``GET /api/point?lon=&lat=``    every raster layer's value at a point (JSON)
``GET /tiles/ID/Z/X/Y.png``     a layer's XYZ tile (web mercator, 256 px)
``GET /vectors/ID.geojson``     a vector layer in EPSG:4326
==============================  ===========================================================

Anything else is refused: a path with ``..``, ``.``, an empty segment, a backslash or any
percent-escape (an encoded slash or dot) is 403 before routing; an unknown route, layer or
file is 404; a method other than GET and HEAD is 405.  Requests never name files: a layer id
is looked up in the catalogue made once at start-up, whose files resolve inside the run
folder (the run's DEM and prior maps, named by its manifest, excepted).  Nothing is written.
The server binds 127.0.0.1 unless told otherwise, and then refuses requests whose ``Host``
header is not the loopback address (DNS rebinding).
"""

from __future__ import annotations

import json
import math
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs

from permafrost.errors import ConfigError
from permafrost.io.tiles import MAX_ZOOM
from permafrost.workflows.viewer import RunLayers, layer_geojson, open_run, render_tile, values_at

__all__ = ["LOCAL_HOSTS", "make_server", "serve_in_thread", "is_local_host", "STATIC_FILES"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: the package's static files the server sends: URL name -> (path in the package, type)
STATIC_FILES = {
    "viewer.js": ("viewer/viewer.js", "text/javascript; charset=utf-8"),
    "viewer.css": ("viewer/viewer.css", "text/css; charset=utf-8"),
    "leaflet.js": ("leaflet/leaflet.js", "text/javascript; charset=utf-8"),
    "leaflet.css": ("leaflet/leaflet.css", "text/css; charset=utf-8"),
    "LICENSE-leaflet.txt": ("leaflet/LICENSE", "text/plain; charset=utf-8"),
    "images/layers.png": ("leaflet/images/layers.png", "image/png"),
    "images/layers-2x.png": ("leaflet/images/layers-2x.png", "image/png"),
    "images/marker-icon.png": ("leaflet/images/marker-icon.png", "image/png"),
    "images/marker-icon-2x.png": ("leaflet/images/marker-icon-2x.png", "image/png"),
    "images/marker-shadow.png": ("leaflet/images/marker-shadow.png", "image/png"),
}
_INDEX = ("viewer/index.html", "text/html; charset=utf-8")
_TILE = re.compile(r"/tiles/([A-Za-z0-9_.-]+)/(\d{1,2})/(\d{1,7})/(\d{1,7})\.png")
_VECTOR = re.compile(r"/vectors/([A-Za-z0-9_.-]+)\.geojson")
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'")


def is_local_host(host: str) -> bool:
    return host in LOCAL_HOSTS or host.startswith("127.")


def _static(rel: str) -> bytes:
    return resources.files("permafrost").joinpath("static", *rel.split("/")).read_bytes()


def _refused_path(path: str) -> bool:
    """A path that names something outside the routes: traversal, escapes, empty segments."""
    if not path.startswith("/") or any(c in path for c in "%\\\x00") or "//" in path:
        return True
    return any(seg in (".", "..") or seg.startswith(".") for seg in path.split("/")[1:])


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # the viewer's server (its run, options and caches)
    server_version = "permafrost-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # ---------------------------------------------------------------- plumbing
    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, body: bytes, ctype: str, *, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: HTTPStatus, head: bool = False) -> None:
        self._send(status, f"{status.value} {status.phrase}\n".encode(),
                   "text/plain; charset=utf-8", head=head)

    def _json(self, obj, head: bool) -> None:
        self._send(200, json.dumps(obj, allow_nan=False).encode(),
                   "application/json; charset=utf-8", head=head)

    def _refuse_method(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # ---------------------------------------------------------------- routes
    def _dispatch(self, head: bool) -> None:
        srv = self.server
        if srv.local_only:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if not is_local_host(host):
                return self._error(HTTPStatus.FORBIDDEN, head)
        path, _, query = self.path.partition("?")
        if _refused_path(path):
            return self._error(HTTPStatus.FORBIDDEN, head)
        run: RunLayers = srv.run
        try:
            if path == "/":
                rel, ctype = _INDEX
                return self._send(200, _static(rel), ctype, head=head)
            if path.startswith("/static/"):
                entry = STATIC_FILES.get(path[len("/static/"):])
                if entry is None:
                    return self._error(HTTPStatus.NOT_FOUND, head)
                return self._send(200, _static(entry[0]), entry[1], head=head)
            if path == "/api/layers":
                return self._json({**run.describe(), "refused": run.refused,
                                   "notes": run.notes}, head)
            if path == "/api/point":
                q = parse_qs(query, max_num_fields=4)
                try:
                    lon, lat = float(q["lon"][0]), float(q["lat"][0])
                except (KeyError, ValueError, IndexError):
                    return self._error(HTTPStatus.BAD_REQUEST, head)
                if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
                        and -90 <= lat <= 90):
                    return self._error(HTTPStatus.BAD_REQUEST, head)
                return self._json(values_at(run, lon, lat), head)
            m = _TILE.fullmatch(path)
            if m:
                lid, z, x, y = m.group(1), *(int(v) for v in m.groups()[1:])
                layer = run.hillshade if lid == "dem" else run.rasters.get(lid)
                if layer is None or z > MAX_ZOOM or x >= 2 ** z or y >= 2 ** z:
                    return self._error(HTTPStatus.NOT_FOUND, head)
                return self._send(200, render_tile(layer, z, x, y), "image/png", head=head)
            m = _VECTOR.fullmatch(path)
            if m:
                vlayer = run.vectors.get(m.group(1))
                if vlayer is None:
                    return self._error(HTTPStatus.NOT_FOUND, head)
                with srv.vector_lock:
                    body = srv.vector_cache.get(vlayer.id)
                    if body is None:
                        body = srv.vector_cache[vlayer.id] = layer_geojson(vlayer)
                return self._send(200, body, "application/geo+json", head=head)
        except (BrokenPipeError, ConnectionResetError):
            return None
        return self._error(HTTPStatus.NOT_FOUND, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, run: RunLayers, *, local_only: bool, verbose: bool):
        self.run = run
        self.local_only = local_only
        self.verbose = verbose
        self.vector_cache: dict[str, bytes] = {}
        self.vector_lock = threading.Lock()
        super().__init__(address, _Handler)


def make_server(run_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
                allow_remote: bool = False, dem: str | Path | None = None,
                verbose: bool = False) -> _Server:
    """The viewer's HTTP server of a run folder, bound and ready (``serve_forever`` runs it;
    port 0 picks a free port: ``server.server_address``).

    Raises
    ------
    ConfigError
        A host other than the loopback address without ``allow_remote``.
    InputFileError
        Not a run folder (:func:`permafrost.workflows.viewer.open_run`).
    """
    if not is_local_host(host) and not allow_remote:
        raise ConfigError(f"--host {host} would serve the run to other machines",
                          field="--host", fix="bind 127.0.0.1 (the default), or add "
                                              "--allow-remote to mean it")
    run = open_run(run_dir, dem=dem)
    return _Server((host, port), run, local_only=is_local_host(host), verbose=verbose)


def serve_in_thread(server: _Server) -> threading.Thread:
    """Run a server in a daemon thread (tests, notebooks); ``server.shutdown()`` stops it."""
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t
