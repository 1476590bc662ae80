"""The edges of permafrost: readers and writers only, no science."""

from permafrost.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from permafrost.io.guard import Output, check_outputs, check_replaceable, expand_path
from permafrost.io.rasters import read_raster, write_cog
from permafrost.io.vectors import read_vector, write_vector

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "Output",
    "check_outputs",
    "check_replaceable",
    "expand_path",
    "read_raster",
    "write_cog",
    "read_vector",
    "write_vector",
]
