"""The public API answers a wrong argument with the package's one-line error.

Every function in ``permafrost.__all__`` is called with an object of the wrong type (a number)
for each of its required arguments; it must raise a :class:`permafrost.PermafrostError` (for a
wrong type: :class:`permafrost.errors.ArgumentError`, which is also a ``TypeError``) whose
message is one line, not an ``AttributeError``/``TypeError`` from inside a library.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import xarray as xr

import permafrost as pf
from permafrost.checks import KINDS, expects
from permafrost.errors import ArgumentError, InputError, PermafrostError

FUNCTIONS = sorted(n for n in pf.__all__ if inspect.isfunction(getattr(pf, n)))


def _required(func) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(func).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_number_for_every_required_argument_is_a_package_error(name):
    func = getattr(pf, name)
    req = _required(func)
    kwargs = {p.name: 42 for p in req}
    try:
        func(**kwargs)
    except PermafrostError as exc:
        assert "\n" not in str(exc)
        if isinstance(exc, ArgumentError):
            assert exc.field in kwargs  # names the argument
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{name}({', '.join(kwargs)}=42) raised {type(exc).__name__}: {exc}")
    else:
        if req:
            pytest.fail(f"{name} accepted 42 for {list(kwargs)}")


def test_argument_error_is_an_input_error_and_a_type_error():
    @expects(raster="dataarray", regions="geodataframe?")
    def f(raster, regions=None):
        return raster.shape

    da = xr.DataArray(np.zeros((2, 3)))
    assert f(da) == (2, 3)
    with pytest.raises(ArgumentError, match=r"field 'raster': expected an xarray.DataArray, "
                                            r"got str; read it with permafrost.read_raster"):
        f("pzi.tif")
    with pytest.raises(InputError):
        f(da, regions="basins.gpkg")
    with pytest.raises(TypeError):  # also what Python users catch for a wrong type
        f(np.zeros(3))
    assert f.__wrapped__ is not None and list(inspect.signature(f).parameters) == ["raster",
                                                                                "regions"]
    with pytest.raises(ValueError, match="unknown kind"):
        expects(x="raster")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_refuses_a_number(kind):
    test = KINDS[kind][0]
    assert not test(42)


def test_a_generator_of_paths_is_not_consumed_by_the_check(tmp_path):
    """The check of a "paths" argument must leave an iterator for the function to read."""
    seen = []

    @expects(files="paths")
    def f(files):
        seen.extend(files)

    f(p for p in [tmp_path / "a.tif", tmp_path / "b.tif"])
    assert seen == [tmp_path / "a.tif", tmp_path / "b.tif"]
    with pytest.raises(ArgumentError, match="field 'files'"):
        f([tmp_path / "a.tif", 3])
