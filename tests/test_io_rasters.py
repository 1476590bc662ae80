"""The raster edge: reading with CRS checks, atomic COG writing, clear errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import xarray as xr
from factories import write_raster
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from permafrost.errors import CRSError, GridMismatchError, InputFileError
from permafrost.grid import grids_equal
from permafrost.io import atomic_path
from permafrost.io.atomic import TMP_MARK
from permafrost.io.rasters import read_raster, write_cog
from permafrost.workflows.covariates import build_stack


def make_da(ny=300, nx=400, *, x0=98.9, y0=38.6, res=1 / 1800, crs="EPSG:4326", seed=0,
            chunks=None) -> xr.DataArray:
    """A float32 raster with NaN holes on a geographic grid (pixel-centre coordinates)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(ny, nx)).astype("float32")
    data[:5, :7] = np.nan
    x = x0 + res * (np.arange(nx) + 0.5)
    y = y0 - res * (np.arange(ny) + 0.5)
    da = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x}, name="v")
    da = da.rio.write_crs(crs)
    return da.chunk(chunks) if chunks else da


def write_plain_tif(path, data, *, crs="EPSG:4326", nodata=-9999.0):
    """A float32 GeoTIFF on a 0.001 deg grid at (99.0, 38.5), NaN kept."""
    write_raster(path, data, crs=crs or None, transform=from_origin(99.0, 38.5, 0.001, 0.001),
                 nodata=nodata, fill_nan=False)


def test_write_cog_is_valid_cog_with_metadata(tmp_path):
    da = make_da()
    out = write_cog(da, tmp_path / "pzi.tif", nodata=-9999.0, description="PZI",
                    tags={"model": "m1", "inputs": "dem,maat"}, blocksize=128)
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    with rasterio.open(out) as src:
        assert src.nodata == -9999.0
        assert src.descriptions == ("PZI",)
        assert src.tags()["model"] == "m1"
        assert src.crs.to_epsg() == 4326
        assert src.overviews(1), "a COG larger than its block size carries overviews"
        assert src.block_shapes[0] == (128, 128)
        back = src.read(1)
    np.testing.assert_array_equal(back[:5, :7], -9999.0)
    np.testing.assert_array_equal(back[5:], da.values[5:])
    # the grid round-trips: pixel centres recomputed from the file's transform
    got = read_raster(out)
    assert grids_equal(got, da)
    assert np.isnan(got.values[0, 0])


def test_write_cog_from_dask_equals_in_memory_and_is_deterministic(tmp_path):
    da = make_da()
    a = write_cog(da, tmp_path / "a.tif", nodata=-9999.0, tags={"k": "v"})
    b = write_cog(make_da(chunks={"y": 64, "x": 128}), tmp_path / "b.tif", nodata=-9999.0,
                  tags={"k": "v"})
    c = write_cog(da, tmp_path / "c.tif", nodata=-9999.0, tags={"k": "v"})
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] == digest[2]
    assert cog_validate(str(b))[0]


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "out.tif"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("simulated kill during the COG copy")

    monkeypatch.setattr(rasterio.shutil, "copy", boom)
    with pytest.raises(KeyboardInterrupt):
        write_cog(make_da(), target, nodata=-9999.0)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary leftovers either


def test_interrupted_write_keeps_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.slow
def test_sigkill_during_write_leaves_no_file_at_target(tmp_path):
    """A process killed while writing a large COG leaves nothing at the target path."""
    target = tmp_path / "big.tif"
    script = textwrap.dedent(f"""
        import os, signal, threading
        import numpy as np, xarray as xr, rioxarray
        import rasterio.shutil
        from permafrost.io.rasters import write_cog
        real_copy = rasterio.shutil.copy
        def copy_then_die(*a, **k):
            real_copy(*a, **k)                  # the temporary COG is complete on disk ...
            os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before the rename
        rasterio.shutil.copy = copy_then_die
        n = 1500
        da = xr.DataArray(np.ones((n, n), "float32"), dims=("y", "x"),
                          coords={{"y": np.arange(n)[::-1] + 0.5, "x": np.arange(n) + 0.5}})
        write_cog(da.rio.write_crs("EPSG:32647"), {str(target)!r}, nodata=-9999.0)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(TMP_MARK in name for name in leftovers)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputFileError) as exc:
        read_raster(tmp_path / "nope.tif")
    assert "nope.tif" in str(exc.value) and "not found" in str(exc.value)


def test_unreadable_raster_names_the_file(tmp_path):
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(InputFileError) as exc:
        read_raster(bad)
    msg = str(exc.value)
    assert "corrupt.tif" in msg and "\n" not in msg


def test_raster_without_crs_is_refused(tmp_path):
    p = tmp_path / "nocrs.tif"
    write_plain_tif(p, np.zeros((10, 10)), crs=None)
    with pytest.raises(CRSError) as exc:
        read_raster(p)
    assert "nocrs.tif" in str(exc.value) and "CRS" in str(exc.value)
    assert read_raster(p, require_crs=False).rio.crs is None


def test_covariate_stack_names_by_stem_and_checks_grid(tmp_path):
    d = tmp_path / "cov"
    d.mkdir()
    write_plain_tif(d / "dem.tif", np.full((10, 12), 3000.0))
    write_plain_tif(d / "maat.tif", np.full((10, 12), -2.0))
    ds = build_stack(d, chunks=None)
    assert list(ds.data_vars) == ["dem", "maat"]
    assert ds.rio.crs.to_epsg() == 4326
    assert float(ds["maat"].mean()) == -2.0
    write_plain_tif(d / "ndvi.tif", np.zeros((11, 12)))
    with pytest.raises(GridMismatchError) as exc:
        build_stack(d, chunks=None)
    assert "ndvi.tif" in str(exc.value)
