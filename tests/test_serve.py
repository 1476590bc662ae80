"""Tests of `permafrost serve`: tiles, values at a point, refusals, and the page in a real
headless browser (Debian chromium), over the demo run."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import rasterio
from matplotlib.image import imread
from pyproj import Transformer
from typer.testing import CliRunner

import permafrost.io.tiles as tiles_mod
from permafrost.cli import app
from permafrost.errors import ConfigError, InputFileError
from permafrost.io.tiles import MERCATOR_HALF_M, TILE_SIZE, encode_png, tile_bounds
from permafrost.report import AGREEMENT_COLOURS, ZONE_COLOURS
from permafrost.workflows.serve import STATIC_FILES, make_server, serve_in_thread
from permafrost.workflows.viewer import open_run

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
TO_MERC = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
TO_LONLAT = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
runner = CliRunner()


# ----------------------------------------------------------------------------- fast
def _decode(png: bytes) -> np.ndarray:
    """RGBA [0-255] of a PNG (Matplotlib's reader: Pillow)."""
    return np.round(imread(io.BytesIO(png), format="png") * 255).astype(int)


def test_png_encoder_round_trips():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    png = encode_png(rgba)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(_decode(png), rgba)


def test_tile_bounds_follow_the_xyz_scheme():
    # zoom 0 is the whole mercator square; tile (1, 0) of zoom 1 its north-east quarter
    assert np.allclose(tile_bounds(0, 0, 0), (-MERCATOR_HALF_M, -MERCATOR_HALF_M,
                                              MERCATOR_HALF_M, MERCATOR_HALF_M))
    assert np.allclose(tile_bounds(1, 1, 0), (0, 0, MERCATOR_HALF_M, MERCATOR_HALF_M))
    # the tile holding a point, by the slippy-map formula, contains the point's mercator x, y
    lon, lat, z = 99.0, 38.5, 12
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * 2 ** z)
    mx, my = TO_MERC.transform(lon, lat)
    l, b, r, t = tile_bounds(z, x, y)
    assert l <= mx < r and b < my <= t


def test_not_a_run_folder_and_a_public_host_are_refused(tmp_path):
    with pytest.raises(InputFileError, match="not a pipeline output directory"):
        open_run(tmp_path)
    with pytest.raises(ConfigError, match="--allow-remote"):
        make_server(tmp_path, host="0.0.0.0", port=0)
    res = runner.invoke(app, ["serve", str(tmp_path), "--port", "70000"])
    assert res.exit_code == 2 and "port" in res.output


def test_the_wheel_packages_the_static_files():
    """hatch puts the whole permafrost/ folder (data files too) in the wheel: nothing may
    narrow it (only-include, exclude) without keeping permafrost/static."""
    import tomllib

    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"]["wheel"]
    assert wheel["packages"] == ["permafrost"]
    assert not {"only-include", "exclude", "include"} & set(wheel)


def test_the_page_and_leaflet_ship_with_the_package_and_name_no_other_host():
    from importlib import resources

    static = resources.files("permafrost") / "static"
    for rel, _ in STATIC_FILES.values():
        assert (static / rel).is_file(), rel
    assert "BSD 2-Clause" in (static / "leaflet" / "LICENSE").read_text()
    for page in ("viewer/index.html", "viewer/viewer.js", "viewer/viewer.css"):
        text = (static / page).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text.replace(
            "https://leafletjs.com", "")), page


# ----------------------------------------------------------------------------- demo run
@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """The demo pipeline run once (all scenarios)."""
    from test_pipeline import demo_copy

    tmp = tmp_path_factory.mktemp("serve_demo")
    p = demo_copy(tmp)
    res = runner.invoke(app, ["run", str(p), "--all-scenarios"])
    assert res.exit_code == 0, res.output
    return tmp / "out"


@pytest.fixture(scope="module")
def server(demo_out, tmp_path_factory):
    """A copy of the run with a planted symbolic link out of it, served on a free port; the
    paths the server opens are recorded."""
    tmp = tmp_path_factory.mktemp("serve_copy")
    run = tmp / "out"  # beside a copy of its pipeline file: the run's inputs are found
    shutil.copytree(demo_out, run, symlinks=True)
    shutil.copy(demo_out.parent / "demo.toml", tmp / "demo.toml")
    outside = tmp / "outside"
    outside.mkdir()
    secret = outside / "secret.tif"
    shutil.copy(run / "plus2" / "pzi.tif", secret)
    (outside / "secret.txt").write_text("SECRET")
    (run / "plus2" / "pzi.tif").unlink()
    os.symlink(secret, run / "plus2" / "pzi.tif")  # an output of the run now points outside
    os.symlink(outside / "secret.txt", run / "baseline" / "leak.txt")
    opened: list[str] = []
    real_open = rasterio.open

    def recording_open(fp, *a, **k):
        opened.append(os.path.realpath(str(fp)))
        return real_open(fp, *a, **k)

    tiles_mod.rasterio.open = recording_open
    srv = make_server(run, port=0)
    serve_in_thread(srv)
    try:
        yield srv, run, outside, opened
    finally:
        srv.shutdown()
        srv.server_close()
        tiles_mod.rasterio.open = real_open


def _get(srv, path: str) -> tuple[int, bytes, str]:
    """One raw request (the path sent as written, not normalised by a client)."""
    host, port = srv.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    c.putheader("Host", f"127.0.0.1:{port}")
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body, r.getheader("Content-Type") or ""


def _tile_at(lon: float, lat: float, z: int) -> tuple[int, int]:
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * 2 ** z)
    return x, y


def _pixel_lonlat(z, x, y, i, j):
    l, b, r, t = tile_bounds(z, x, y)
    px = (r - l) / TILE_SIZE
    return TO_LONLAT.transform(l + (j + 0.5) * px, t - (i + 0.5) * px)


def _cell(src, lon, lat):
    """(value, fraction of the way across the cell in x and y) of the cell holding a point."""
    col_f, row_f = ~src.transform * (lon, lat)
    row, col = int(np.floor(row_f)), int(np.floor(col_f))
    if not (0 <= row < src.height and 0 <= col < src.width):
        return np.nan, (0.0, 0.0)
    v = src.read(1, window=((row, row + 1), (col, col + 1)), masked=True)
    val = float(v.filled(np.nan)[0, 0]) if v.dtype.kind == "f" else (
        np.nan if v.mask.any() else float(v[0, 0]))
    return val, (col_f - col, row_f - row)


def _ramp_colours(cmap: str) -> np.ndarray:
    return np.round(matplotlib.colormaps[cmap](np.arange(256)) * 255).astype(int)[:, :3]


def _check_ramp(rgb, value, lo, hi, cmap):
    """The pixel's colour is the colour map's at the value (to one step of 256)."""
    k = (value - lo) / (hi - lo) * 255
    lut = _ramp_colours(cmap)
    ks = [int(np.clip(v, 0, 255)) for v in (np.floor(k), np.ceil(k), np.floor(k) - 1,
                                              np.ceil(k) + 1)]
    assert any(np.array_equal(rgb, lut[j]) for j in ks), (rgb, value, k)


def _hex(c):
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])


@pytest.mark.slow
def test_tiles_are_pngs_in_the_reports_colours_at_known_pixels(server):
    srv, run, _, _ = server
    lon, lat, z = 99.05, 38.5, 12  # tile pixels (~30 m) finer than the cells: full resolution
    x, y = _tile_at(lon, lat, z)
    got = {}
    for lid in ("baseline.pzi", "plus1.change", "baseline.zones", "baseline.uncertainty"):
        st, body, ctype = _get(srv, f"/tiles/{lid}/{z}/{x}/{y}.png")
        assert st == 200 and ctype == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
        got[lid] = _decode(body)
    unc_top = next(r for r in srv.run.rasters.values() if r.id == "baseline.uncertainty").vmax
    srcs = {n: rasterio.open(run / n) for n in ("baseline/pzi.tif", "plus1/pzi.tif",
                                                "baseline/zones.tif",
                                                "baseline/pzi_uncertainty.tif")}
    checked = 0
    zone_rgb = {code: _hex(ZONE_COLOURS[name]) for code, name in
                enumerate(("none", "isolated", "sporadic", "discontinuous", "continuous"))
                if name in ZONE_COLOURS}
    for i in range(8, TILE_SIZE, 23):
        for j in range(8, TILE_SIZE, 23):
            plon, plat = _pixel_lonlat(z, x, y, i, j)
            v, (fx, fy) = _cell(srcs["baseline/pzi.tif"], plon, plat)
            if not (0.2 < fx < 0.8 and 0.2 < fy < 0.8):
                continue  # near a cell edge: the warper's approximation may pick the neighbour
            if not np.isfinite(v):
                assert got["baseline.pzi"][i, j, 3] == 0  # nodata is transparent
                continue
            assert got["baseline.pzi"][i, j, 3] == 255
            _check_ramp(got["baseline.pzi"][i, j, :3], v, 0.0, 1.0, "YlGnBu")
            v1, _ = _cell(srcs["plus1/pzi.tif"], plon, plat)
            _check_ramp(got["plus1.change"][i, j, :3], v1 - v, -1.0, 1.0, "RdBu")
            u, _ = _cell(srcs["baseline/pzi_uncertainty.tif"], plon, plat)
            _check_ramp(got["baseline.uncertainty"][i, j, :3], u, 0.0, unc_top, "OrRd")
            zc, _ = _cell(srcs["baseline/zones.tif"], plon, plat)
            if int(zc) in zone_rgb:
                assert np.array_equal(got["baseline.zones"][i, j, :3], zone_rgb[int(zc)])
            else:
                assert got["baseline.zones"][i, j, 3] == 0
            checked += 1
    assert checked >= 20
    # a zoomed-out tile is cut from the overview (cells twice as large), not the full image
    layer = srv.run.rasters["baseline.pzi"]
    zo = 9
    xo, yo = _tile_at(lon, lat, zo)
    assert layer.sources[0].overview_level(zo, xo, yo) == 0
    assert layer.sources[0].overview_level(z, x, y) is None
    st, body, _ = _get(srv, f"/tiles/baseline.pzi/{zo}/{xo}/{yo}.png")
    img = _decode(body)
    with rasterio.open(run / "baseline/pzi.tif", overview_level=0) as ov:
        n = 0
        for i in range(1, TILE_SIZE, 7):
            for j in range(2, TILE_SIZE, 5):
                plon, plat = _pixel_lonlat(zo, xo, yo, i, j)
                v, (fx, fy) = _cell(ov, plon, plat)
                if np.isfinite(v) and 0.2 < fx < 0.8 and 0.2 < fy < 0.8:
                    _check_ramp(img[i, j, :3], v, 0.0, 1.0, "YlGnBu")
                    n += 1
    assert n >= 10
    # a tile off the map is transparent; a hillshade tile is grey
    st, body, _ = _get(srv, "/tiles/baseline.pzi/12/0/0.png")
    assert st == 200 and _decode(body)[..., 3].max() == 0
    st, body, _ = _get(srv, f"/tiles/dem/{z}/{x}/{y}.png")
    hs = _decode(body)
    opaque = hs[..., 3] == 255
    assert opaque.mean() > 0.5
    assert np.array_equal(hs[opaque][:, 0], hs[opaque][:, 1])
    for s in srcs.values():
        s.close()


@pytest.mark.slow
def test_the_point_endpoint_gives_rasterios_values_at_the_point(server):
    srv, run, _, _ = server
    lon, lat = 99.0317, 38.4711
    st, body, ctype = _get(srv, f"/api/point?lon={lon}&lat={lat}")
    assert st == 200 and ctype.startswith("application/json")
    vals = {r["id"]: r for r in json.loads(body)["values"]}

    def sample(path):
        with rasterio.open(path) as s:
            v = next(s.sample([(lon, lat)], masked=True))
            return np.nan if np.ma.is_masked(v[0]) else float(v[0])

    base = sample(run / "baseline/pzi.tif")
    assert np.isfinite(base)
    assert vals["baseline.pzi"]["value"] == pytest.approx(base, abs=1e-7)
    assert vals["plus1.pzi"]["value"] == pytest.approx(sample(run / "plus1/pzi.tif"), abs=1e-7)
    assert vals["plus1.change"]["value"] == pytest.approx(
        sample(run / "plus1/pzi.tif") - base, abs=1e-6)
    assert vals["baseline.uncertainty"]["value"] == pytest.approx(
        sample(run / "baseline/pzi_uncertainty.tif"), abs=1e-7)
    z = sample(run / "baseline/zones.tif")
    assert vals["baseline.zones"]["value"] == z
    agree = [k for k in vals if k.startswith("agreement.")]
    assert len(agree) == 2
    for k in agree:
        r = vals[k]
        assert r["class"] == AGREEMENT_COLOURS[int(r["value"])][0]
    dem = ROOT / "data_samples" / "covariates" / "dem.tif"
    assert vals["dem"]["value"] == pytest.approx(sample(dem), abs=1e-3)
    # off the map: no value; a bad query: 400
    st, body, _ = _get(srv, "/api/point?lon=10&lat=10")
    assert all(r["value"] is None for r in json.loads(body)["values"])
    for q in ("lon=abc&lat=1", "lon=1", "lon=nan&lat=1", "lon=200&lat=1"):
        assert _get(srv, "/api/point?" + q)[0] == 400


HOSTILE = [
    "/../pyproject.toml", "/static/../../../pyproject.toml", "/static/..%2f..%2fpyproject.toml",
    "/%2e%2e/%2e%2e/etc/passwd", "/%2E%2E/outside/secret.txt", "/static/%2e%2e/viewer.js",
    "/tiles/..%2Fplus2/12/0/0.png", "/vectors/..%2f..%2foutside%2fsecret.geojson",
    "/./api/layers", "/static/.hidden", "/..\\..\\etc\\passwd", "/static/images/../../x",
    "/%2fetc%2fpasswd", "http://127.0.0.1/../pyproject.toml", "/tiles/baseline.pzi%00/1/1/1.png",
]


@pytest.mark.slow
def test_requests_outside_the_run_are_refused_and_nothing_outside_is_read(server):
    srv, run, outside, opened = server
    # the planted link: plus2's PZI resolves outside, so neither it nor its change is served
    assert "plus2.pzi" not in srv.run.rasters and "plus2.change" not in srv.run.rasters
    assert any("plus2/pzi.tif" in r and "outside" in r for r in srv.run.refused)
    assert "plus1.pzi" in srv.run.rasters
    opened.clear()
    for path in HOSTILE:
        st, body, _ = _get(srv, path)
        assert st == 403, path
        assert b"SECRET" not in body
    for path in ("/etc/passwd", "/baseline/pzi.tif", "/baseline/leak.txt", "/outside/secret.txt",
                 "/tiles/plus2.pzi/12/3190/1567.png", "/tiles/plus2.change/12/3190/1567.png",
                 "/vectors/secret.geojson",
                 "/static/leaflet.js.map", "/tiles/baseline.pzi/30/0/0.png",
                 "/tiles/baseline.pzi/2/4/0.png"):
        st, body, _ = _get(srv, path)
        assert st == 404, path
        assert b"SECRET" not in body
    # an absolute path in a layer's place
    st, body, _ = _get(srv, f"/tiles/{outside / 'secret.tif'}/12/0/0.png")
    assert st in (403, 404) and b"SECRET" not in body
    st, body, _ = _get(srv, "/api/layers")
    assert st == 200 and str(outside) not in body.decode().split('"refused"')[0]
    assert not [p for p in opened if p.startswith(str(outside))]
    # read-only: other methods are refused; the Host header must be this machine
    host, port = srv.server_address[:2]
    for method in ("POST", "PUT", "DELETE"):
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request(method, "/api/layers", body=b"x")
        assert c.getresponse().status == 405
        c.close()
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/", headers={"Host": "attacker.example"})
    assert c.getresponse().status == 403
    c.close()
    # another address only when asked for, and then any Host is answered
    remote = make_server(run, host="0.0.0.0", port=0, allow_remote=True)
    assert not remote.local_only
    remote.server_close()


def _browse(url: str, tmp: Path) -> tuple[str, str]:
    """Open a page in headless chromium; return (DOM after load, browser log)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
           "--v=0", "--window-size=1200,800", "--virtual-time-budget=15000", "--dump-dom",
           url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    return res.stdout, res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_the_viewer_in_headless_chromium(server, tmp_path):
    srv, run, _, _ = server
    port = srv.server_address[1]
    # negative control: an error in the page reaches the log the test reads
    _, bad_log = _browse(f"http://127.0.0.1:{port}/?at=north,east", tmp_path)
    assert any("CONSOLE" in ln and "Invalid LatLng" in ln for ln in bad_log.splitlines())
    lat, lon = 38.4711, 99.0317
    url = (f"http://127.0.0.1:{port}/?layer=baseline.pzi&compare=plus1.change"
           f"&vectors=labels,kinematics&at={lat},{lon}")
    dom, log = _browse(url, tmp_path)
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln]
    assert console == []
    m = re.search(r'id="pf-status" data-tiles-loaded="(\d+)" data-tiles-failed="(\d+)" '
                  r'data-values="(\w+)"', dom)
    assert m, "the viewer did not start"
    assert int(m.group(1)) > 0 and int(m.group(2)) == 0 and m.group(3) == "shown"
    # every tile image in the page has loaded (Leaflet marks it), in both compared panes
    imgs = re.findall(r'<img[^>]*class="(leaflet-tile[^"]*)"', dom)
    assert imgs and all("leaflet-tile-loaded" in c for c in imgs)
    assert re.search(r'/tiles/plus1\.change/\d+/\d+/\d+\.png', dom)
    assert re.search(r'/tiles/dem/\d+/\d+/\d+\.png', dom)
    # the simulated click filled the value panel with the values at that point
    shown = dict(re.findall(r'<tr data-id="([^"]+)" data-value="([^"]*)"', dom))
    st, body, _ = _get(srv, f"/api/point?lon={lon}&lat={lat}")
    want = {r["id"]: r["value"] for r in json.loads(body)["values"]}
    assert set(shown) == set(want)
    for k, v in want.items():
        if v is None:
            assert shown[k] == ""
        else:
            assert float(shown[k]) == pytest.approx(v, rel=1e-12, abs=1e-12)
    with rasterio.open(run / "baseline/pzi.tif") as s:
        ref = float(next(s.sample([(lon, lat)]))[0])
    assert float(shown["baseline.pzi"]) == pytest.approx(ref, abs=1e-7)
    assert "0.5" in dom and "PZI · baseline" in dom  # the legend
    # the labels (circles) and kinematics outlines are drawn: one SVG path per feature, and
    # the clicked point's circle
    n_labels = len(json.loads(_get(srv, "/vectors/labels.geojson")[1])["features"])
    n_kin = len(json.loads(_get(srv, "/vectors/kinematics.geojson")[1])["features"])
    paths = re.findall(r'<path[^>]*class="leaflet-interactive"', dom)
    assert n_labels > 100 and n_kin > 100
    assert len(paths) == n_labels + n_kin + 1


def test_png_tiles_are_compressed():  # the encoder's IDAT is zlib data of filtered rows
    rgba = np.zeros((256, 256, 4), np.uint8)
    png = encode_png(rgba)
    idat = png[png.index(b"IDAT") + 4: png.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    assert len(raw) == 256 * (1 + 256 * 4) and len(png) < 2000
