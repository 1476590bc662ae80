"""The part of MintPy permafrost uses works in the default install.

The default install leaves out MintPy's dependencies that only its processing workflows need
(pyproject.toml, ``[tool.uv] override-dependencies``; docs/installation.md, "Install
weight").  This test imports every MintPy module that permafrost (``permafrost/io``) and the
sample generator (``data_samples/samplegen``) import, and calls every MintPy function they
call, so that a dependency dropped by mistake fails here rather than in a user's run.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

# grep -rn "from mintpy" permafrost data_samples
MODULES = ["mintpy.utils.readfile", "mintpy.utils.writefile", "mintpy.utils.utils0",
           "mintpy.utils.ptime", "mintpy.objects"]


@pytest.mark.parametrize("name", MODULES)
def test_mintpy_module_imports(name):
    importlib.import_module(name)


def test_writefile_readfile_round_trip(tmp_path):
    from mintpy.utils import readfile, writefile

    vel = np.arange(12, dtype=np.float32).reshape(3, 4) / 100
    atr = {"FILE_TYPE": "velocity", "LENGTH": "3", "WIDTH": "4", "X_FIRST": "100.0",
           "Y_FIRST": "38.0", "X_STEP": "0.001", "Y_STEP": "-0.001", "UNIT": "m/year",
           "HEADING": "-168.0", "ORBIT_DIRECTION": "DESCENDING"}
    out = tmp_path / "velocity.h5"
    writefile.write({"velocity": vel}, out_file=str(out), metadata=atr, compression="gzip",
                    ds_unit_dict={"velocity": "m/year"}, print_msg=False)
    assert "velocity" in readfile.get_dataset_list(str(out))
    back = readfile.read_attribute(str(out))
    assert back["HEADING"] == "-168.0"
    data, meta = readfile.read(str(out), datasetName="velocity", print_msg=False)
    np.testing.assert_array_equal(data, vel)


def test_utils0_functions_permafrost_calls():
    from mintpy.utils import utils0

    assert int(utils0.utm_zone2epsg_code("45N")) == 32645
    az = float(utils0.heading2azimuth_angle(-168.0, look_direction="right"))
    assert np.isfinite(az)
    meta = {"LENGTH": "10", "WIDTH": "10", "CENTER_LINE_UTC": "43200",
            "HEIGHT": "693000", "EARTH_RADIUS": "6371000",
            "STARTING_RANGE": "800000", "RANGE_PIXEL_SIZE": "2.3", "Y_FIRST": "38.0"}
    inc = float(utils0.incidence_angle(meta, dimension=0, print_msg=False))
    assert 0 < inc < 90
