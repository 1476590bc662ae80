"""The file-facing layer: read inputs, call the science, write outputs.

Each module here is one command's work on files (``kinematics``, ``labels``, ``train``,
``predict``, ``applicability``, ``stats``, ``validate``, ``report``) plus the assembly of
covariate stacks from files (``covariates``).  The command-line app (:mod:`permafrost.cli`)
and the pipeline's steps (:mod:`permafrost.pipeline.steps`) both call these functions; the science
modules (:mod:`permafrost.kinematics`, :mod:`permafrost.labels`, :mod:`permafrost.models`,
:mod:`permafrost.predict`, :mod:`permafrost.area`, :mod:`permafrost.validation`, ...) take
and return objects (NumPy arrays, xarray, GeoDataFrames, dataclasses) and import nothing
from :mod:`permafrost.io`.

Layers, from the edges in::

    cli, pipeline/steps  ->  workflows  ->  science modules
                                 |
                                 +-------->  io (rasters, vectors, tables, MintPy, JSON)
"""
