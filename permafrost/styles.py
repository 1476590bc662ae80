"""How the tool's layers look and what their values mean, in one place.

The palettes, the zone colours, the nodata codes, the units and the band descriptions of the
layers the tool writes. The report's figures (:mod:`permafrost.report`), the colour tables
stored in the COGs (:mod:`permafrost.workflows.predict`) and the QGIS styles (a ``.qml``
beside each raster and a ``layer_styles`` table in each GeoPackage, written by
:mod:`permafrost.io.styles`) all read them from here, so a layer opens in QGIS with the
colours of the report.

Colours
    The continuous ramps are ColorBrewer's (Harrower & Brewer 2003) sequential and diverging
    schemes, as matplotlib names them (``YlGnBu`` for the PZI, ``OrRd`` for its spread,
    ``RdBu`` for a change): the report draws with matplotlib's colormap of that name, QGIS
    interpolates between the same ColorBrewer colours (equal steps from ``vmin`` to ``vmax``,
    which is how matplotlib builds these colormaps). Zones (Brown et al. 1997 classes) go
    light to dark blue; velocity classes (RGIK 2023 kinematic classes) yellow to red.

Units
    UDUNITS-2 spellings, as GDAL's band unit type holds them: ``"1"`` for a dimensionless
    quantity (a probability, a class code, a bit mask), ``"count"`` for a number of labels.

References
----------
Brown, J., Ferrians, O. J., Heginbottom, J. A., Melnikov, E. S. (1997). Circum-Arctic map of
    permafrost and ground-ice conditions. USGS CP-45.
Harrower, M., Brewer, C. A. (2003). ColorBrewer.org: an online tool for selecting colour
    schemes for maps. The Cartographic Journal 40(1), 27–37.
Machado, G. M., Oliveira, M. M., Fernandes, L. A. F. (2009). A physiologically-based model
    for simulation of color vision deficiency. IEEE TVCG 15(6), 1291–1298.
Okabe, M., Ito, K. (2008). Color universal design (CUD): how to make figures and
    presentations that are friendly to colorblind people. https://jfly.uni-koeln.de/color/
RGIK (2023). Guidelines for inventorying rock glaciers, v1.0 (kinematic attribute classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from permafrost.kinematics import RGIK_CLASS_EDGES_CM_YR, RGIK_CLASS_LABELS

__all__ = [
    "AGREEMENT_CLASSES",
    "AGREEMENT_NODATA",
    "PRIOR_CLASS_COLOURS",
    "LABEL_COLOURS",
    "LAYERS",
    "NODATA_COLOUR",
    "RAMPS",
    "SERIES_COLOURS",
    "VELOCITY_COLOURS",
    "ZONE_COLOURS",
    "ZONE_COLOUR_TABLE",
    "ZONE_NODATA",
    "Layer",
    "Ramp",
    "delta_e",
    "hex_rgba",
    "series_colours",
    "simulate_cvd",
    "support_classes",
    "layer",
    "raster_qml",
    "vector_qml",
]


@dataclass(frozen=True)
class Ramp:
    """A continuous colour ramp: matplotlib's colormap ``name`` and its colours ``stops``
    (hex, equally spaced from ``vmin`` to ``vmax``)."""

    name: str
    stops: tuple[str, ...]
    vmin: float
    vmax: float | None  # None: the layer's own maximum (the report scales to the data)


#: ColorBrewer's 9-class YlGnBu, 9-class OrRd and 11-class RdBu (matplotlib's colormaps of
#: the same names are built from exactly these colours)
RAMPS: dict[str, Ramp] = {
    "pzi": Ramp("YlGnBu", ("#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0",
                           "#225ea8", "#253494", "#081d58"), 0.0, 1.0),
    "uncertainty": Ramp("OrRd", ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59",
                                 "#ef6548", "#d7301f", "#b30000", "#7f0000"), 0.0, None),
    "change": Ramp("RdBu", ("#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7",
                            "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"), -1.0, 1.0),
}

#: nodata code of the zone raster (:func:`permafrost.area.classify_zones` writes it for NaN)
ZONE_NODATA = 255

#: zone colours by zone name (``permafrost.area.ZONE_NAMES``, code 0 = "none" upwards)
ZONE_COLOURS: dict[str, str] = {
    "none": "#f0f0f0",
    "isolated": "#c6dbef",
    "sporadic": "#6baed6",
    "discontinuous": "#2171b5",
    "continuous": "#08306b",
}

#: agreement raster codes (:func:`permafrost.validation.map_agreement`): (name, colour)
#: (Okabe & Ito 2008 colours: "both" bluish green, "model only" orange, "prior only" blue;
#: no red against green, every pair distinct under protanopia and deuteranopia, checked by
#: :func:`simulate_cvd` in tests/test_report_figures.py)
AGREEMENT_CLASSES: dict[int, tuple[str, str]] = {
    0: ("neither", "#f2f2f2"), 1: ("both", "#009e73"),
    2: ("model only (excess)", "#e69f00"), 3: ("prior only (missed)", "#0072b2")}
#: nodata code of the agreement rasters
AGREEMENT_NODATA = 255
#: a categorical prior map's classes: permafrost code(s), other code(s)
PRIOR_CLASS_COLOURS = ("#2171b5", "#f2f2f2")

#: colours of cells without a value in the report's maps
NODATA_COLOUR = "#d9d9d9"

#: label points by their 0/1 label (the report's map of labels)
LABEL_COLOURS = {1: ("label: permafrost", "#ffd92f"), 0: ("label: no permafrost", "#e7298a")}

#: colours of the maps compared in line plots (ROC, reliability): the model first, then each
#: prior in its order (Okabe & Ito 2008, the colour-blind-safe qualitative palette); one map
#: keeps its colour in every panel (:func:`series_colours`)
SERIES_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
                  "#000000")


def series_colours(names) -> dict[str, str]:
    """One colour per map name (:data:`SERIES_COLOURS` in order; ``"model"`` always first)."""
    order = sorted(dict.fromkeys(names), key=lambda n: n != "model")
    return {n: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, n in enumerate(order)}


#: Machado, Oliveira & Fernandes (2009) simulation matrices of dichromacy (severity 1), on
#: linear sRGB
_CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _gamma(c: float) -> float:
    c = min(max(c, 0.0), 1.0)
    return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def simulate_cvd(colour: str, kind: str) -> str:
    """``colour`` as seen with a dichromacy (``"protanopia"``, ``"deuteranopia"``,
    ``"tritanopia"``): Machado et al. (2009)'s matrix applied to linear sRGB (IEC 61966-2-1
    transfer function), clipped to the gamut.

    References
    ----------
    Machado, G. M., Oliveira, M. M., Fernandes, L. A. F. (2009). A physiologically-based
    model for simulation of color vision deficiency. IEEE TVCG 15(6), 1291–1298.
    """
    m = _CVD[kind]
    rgb = [_linear(v / 255) for v in hex_rgba(colour)[:3]]
    out = [_gamma(sum(m[i][j] * rgb[j] for j in range(3))) for i in range(3)]
    return "#" + "".join(f"{round(255 * v):02x}" for v in out)


def delta_e(a: str, b: str) -> float:
    """CIE 1976 colour difference ΔE*ab between two sRGB colours (D65 white) [-]; about 2.3
    is a just-noticeable difference, above 10 two colours read as different classes.

    References
    ----------
    CIE 15:2004, Colorimetry (CIELAB); IEC 61966-2-1 (sRGB).
    """
    def lab(c):
        r, g, bb = (_linear(v / 255) for v in hex_rgba(c)[:3])
        x = (0.4124 * r + 0.3576 * g + 0.1805 * bb) / 0.95047
        y = 0.2126 * r + 0.7152 * g + 0.0722 * bb
        z = (0.0193 * r + 0.1192 * g + 0.9505 * bb) / 1.08883
        f = [t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29
             for t in (x, y, z)]
        return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])
    la, lb = lab(a), lab(b)
    return sum((p - q) ** 2 for p, q in zip(la, lb, strict=True)) ** 0.5


#: rock glacier velocity classes, slowest first (RGIK 2023 classes,
#: :data:`permafrost.kinematics.RGIK_CLASS_EDGES_CM_YR`)
VELOCITY_COLOURS = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")


def hex_rgba(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    """``"#rrggbb"`` as an (r, g, b, a) tuple of 0-255 integers."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def _zone_colour_table() -> dict[int, tuple[int, int, int, int]]:
    table = {code: hex_rgba(c) for code, c in enumerate(ZONE_COLOURS.values())}
    table[ZONE_NODATA] = (0, 0, 0, 0)  # transparent
    return table


#: the zone raster's GDAL colour table (code -> RGBA), stored in the COG itself so that any
#: GIS draws the zones without a style; nodata transparent
ZONE_COLOUR_TABLE: dict[int, tuple[int, int, int, int]] = _zone_colour_table()


@dataclass(frozen=True)
class Layer:
    """One kind of layer the tool writes: its band unit and description, and its style.

    ``style`` is ``"ramp"`` (continuous, :data:`RAMPS` ``[ramp]``), ``"paletted"`` (class
    codes: ``classes`` = {code: (label, colour)}), ``"discrete"`` (value ranges: ``classes``
    = {upper bound inclusive or ``"inf"``: (label, colour)}), ``"graduated"`` / ``"categorized"``
    (vector: by the expression ``attribute`` over ``classes``) or ``"single"`` (one symbol).
    """

    kind: str
    unit: str | None
    description: str
    style: str
    ramp: str | None = None
    classes: dict = field(default_factory=dict)
    attribute: str | None = None
    geometry: str = "fill"  # vector symbol: fill, marker, line


def _zone_classes() -> dict[int, tuple[str, str]]:
    # code order = permafrost.area.ZONE_NAMES (tests/test_styles.py holds them equal; the
    # zone module takes its nodata code from here, so it cannot be imported here)
    return {code: (n, c) for code, (n, c) in enumerate(ZONE_COLOURS.items())}


def _velocity_classes() -> dict[tuple[float, float], tuple[str, str]]:
    edges = (-1e9, *RGIK_CLASS_EDGES_CM_YR, 1e12)
    return {(edges[i], edges[i + 1]): (RGIK_CLASS_LABELS[i], VELOCITY_COLOURS[i])
            for i in range(len(VELOCITY_COLOURS))}


def support_classes(min_labels: int) -> dict:
    """The label support map's classes: cells whose least supported stratum holds fewer than
    ``min_labels`` training labels (:data:`permafrost.applicability.SUPPORT_MIN_LABELS`)
    in orange, the others in green."""
    return {min_labels - 1: (f"fewer than {min_labels} labels", "#e6550d"),
            "inf": (f"{min_labels} labels or more", "#c7e9b4")}


def layer(kind: str) -> Layer:
    """The :class:`Layer` of ``kind`` (a key of :data:`LAYERS`)."""
    if kind not in LAYERS:
        raise KeyError(f"no layer style {kind!r}; known: {', '.join(sorted(LAYERS))}")
    return LAYERS[kind]()


#: every layer the tool writes, by kind (built on demand)
LAYERS = {
    "pzi": lambda: Layer("pzi", "1", "PZI: permafrost probability [-]", "ramp", ramp="pzi"),
    "warmed_pzi": lambda: Layer("warmed_pzi", "1",
                                "PZI after air warming (physical method) [-]", "ramp",
                                ramp="pzi"),
    "uncertainty": lambda: Layer("uncertainty", "1", "PZI spread of the fold models [-]",
                                 "ramp", ramp="uncertainty"),
    "zones": lambda: Layer("zones", "1", "permafrost zone (class code)", "paletted",
                           classes=_zone_classes()),
    "agreement": lambda: Layer("agreement", "1",
                               "agreement: 0 neither, 1 both, 2 model only, 3 prior only",
                               "paletted", classes=dict(AGREEMENT_CLASSES)),
    "change": lambda: Layer("change", "1", "PZI change against the reference run [-]",
                            "ramp", ramp="change"),
    "extrapolation": lambda: Layer(
        "extrapolation", "1", "covariates outside the training range (bit mask)", "discrete",
        classes={0: ("inside every training range", "#f7f7f7"),
                 "inf": ("outside one or more (bits: the PZI_CONTENT tag)", "#e6550d")}),
    # its classes depend on the support rule's threshold: support_classes(min_labels)
    "support": lambda: Layer("support", "count",
                             "training labels in the least supported stratum", "discrete"),
    "kinematics": lambda: Layer(
        "kinematics", None, "rock glaciers by downslope velocity (RGIK classes)", "graduated",
        attribute='coalesce("kin_v_moving_m_yr", "kin_v_downslope_median_m_yr") * 100',
        classes=_velocity_classes()),
    "labels": lambda: Layer("labels", None, "labelled points", "categorized",
                            attribute="label", classes=dict(LABEL_COLOURS), geometry="marker"),
    "boreholes": lambda: Layer("boreholes", None, "boreholes by permafrost presence",
                               "categorized", attribute="presence",
                               classes={1: ("permafrost", LABEL_COLOURS[1][1]),
                                        0: ("no permafrost", LABEL_COLOURS[0][1])},
                               geometry="marker"),
    "holdout_blocks": lambda: Layer("holdout_blocks", None, "held-out spatial blocks",
                                    "single", classes={0: ("held-out block", "#00000000")}),
    "rock_glaciers": lambda: Layer("rock_glaciers", None, "rock glaciers by activity",
                                   "categorized", attribute="activity", classes={
                                       "active": ("active", "#d7301f"),
                                       "transitional": ("transitional", "#fc8d59"),
                                       "relict": ("relict", "#4393c3"),
                                       "uncertain": ("uncertain", "#bdbdbd")}),
}


# ------------------------------------------------------------------------------- QGIS QML
_HEAD = ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
         '<qgis version="3.28.0" styleCategories="Symbology">\n')


def _qcolour(colour: str) -> str:
    """QGIS's "r,g,b,a" of a ``#rrggbb`` or ``#rrggbbaa`` colour."""
    c = colour.lstrip("#")
    a = int(c[6:8], 16) if len(c) == 8 else 255
    return ",".join(str(v) for v in (*hex_rgba(colour)[:3], a))


def raster_qml(kind: str, *, vmax: float | None = None, classes: dict | None = None) -> str:
    """The QGIS style (``.qml``) of a raster layer of ``kind``.

    A ramp is drawn from its ``vmin`` to its ``vmax`` (or ``vmax`` given here: the layer's
    maximum, for ramps scaled to the data as the report does); class codes by their colours
    (``classes`` replaces the layer's, as :func:`support_classes` gives them).
    """
    lay = layer(kind)
    if classes is not None:
        lay = Layer(lay.kind, lay.unit, lay.description, lay.style, classes=classes)
    if lay.style in ("paletted", "discrete") and not lay.classes:
        raise ValueError(f"the {kind!r} style needs its classes")
    if lay.style == "ramp":
        assert lay.ramp is not None  # a ramp layer names its ramp
        r = RAMPS[lay.ramp]
        top = r.vmax if r.vmax is not None else (vmax if vmax and vmax > r.vmin else 1.0)
        n = len(r.stops) - 1
        items = "".join(
            f'          <item value="{r.vmin + (top - r.vmin) * i / n:.6g}" color="{c}" '
            f'alpha="255" label="{r.vmin + (top - r.vmin) * i / n:.4g}"/>\n'
            for i, c in enumerate(r.stops))
        body = _pseudocolor("INTERPOLATED", items,
                            f'classificationMin="{r.vmin:g}" classificationMax="{top:g}" ',
                            f' minimumValue="{r.vmin:g}" maximumValue="{top:g}"')
    elif lay.style == "discrete":
        items = "".join(
            f'          <item value="{up}" color="{colour}" alpha="255" '
            f'label={quoteattr(name)}/>\n' for up, (name, colour) in lay.classes.items())
        body = _pseudocolor("DISCRETE", items)
    elif lay.style == "paletted":
        items = "".join(
            f'        <paletteEntry value="{code}" color="{colour[:7]}" alpha="255" '
            f'label={quoteattr(name)}/>\n' for code, (name, colour) in lay.classes.items())
        body = ('    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" '
                f'nodataColor="">\n      <colorPalette>\n{items}      </colorPalette>\n'
                '    </rasterrenderer>\n')
    else:
        raise ValueError(f"{kind!r} is a vector layer style")
    return _HEAD + f"  <pipe>\n{body}  </pipe>\n</qgis>\n"


def _pseudocolor(ramp_type: str, items: str, renderer_attrs: str = "",
                 shader_attrs: str = "") -> str:
    """QGIS's single-band pseudocolour renderer around colour-ramp ``items``."""
    return ('    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" '
            f'alphaBand="-1" {renderer_attrs}nodataColor="">\n      <rastershader>\n'
            f'        <colorrampshader colorRampType="{ramp_type}" classificationMode="1" '
            f'clip="0"{shader_attrs}>\n{items}        </colorrampshader>\n'
            '      </rastershader>\n    </rasterrenderer>\n')


def _symbol(name: str, colour: str, geometry: str) -> str:
    cls, opts = {
        "fill": ("SimpleFill", {"color": _qcolour(colour), "outline_color": "51,51,51,255",
                                "outline_width": "0.26", "style": "solid"}),
        "marker": ("SimpleMarker", {"color": _qcolour(colour), "outline_color": "0,0,0,255",
                                    "size": "2", "name": "circle"}),
        "line": ("SimpleLine", {"line_color": _qcolour(colour), "line_width": "0.4"}),
    }[geometry]
    if geometry == "fill" and len(colour.lstrip("#")) == 8 and colour.endswith("00"):
        opts["style"] = "no"
        opts["outline_color"] = "0,0,0,255"
        opts["outline_width"] = "0.5"
    o = "".join(f'          <Option name="{k}" type="QString" value="{v}"/>\n'
                for k, v in opts.items())
    return (f'    <symbol type="{geometry}" name="{name}" alpha="1" clip_to_extent="1" '
            f'force_rhr="0">\n      <layer class="{cls}" enabled="1" pass="0" locked="0">\n'
            f'        <Option type="Map">\n{o}        </Option>\n      </layer>\n'
            '    </symbol>\n')


def vector_qml(kind: str) -> str:
    """The QGIS style (``.qml``, also the ``styleQML`` of a GeoPackage's ``layer_styles``)
    of a vector layer of ``kind``."""
    lay = layer(kind)
    geom = lay.geometry
    if lay.style == "graduated":
        assert lay.attribute is not None  # a graduated layer names the attribute it styles by
        ranges = "".join(
            f'    <range lower="{lo:g}" upper="{hi:g}" symbol="{i}" label={quoteattr(lab)} '
            f'render="true"/>\n' for i, ((lo, hi), (lab, _)) in enumerate(lay.classes.items()))
        symbols = "".join(_symbol(str(i), c, geom)
                          for i, (_, c) in enumerate(lay.classes.values()))
        body = (f'  <renderer-v2 type="graduatedSymbol" attr={quoteattr(lay.attribute)} '
                'graduatedMethod="GraduatedColor" symbollevels="0" enableorderby="0" '
                f'forceraster="0">\n  <ranges>\n{ranges}  </ranges>\n  <symbols>\n{symbols}'
                '  </symbols>\n  </renderer-v2>\n')
    elif lay.style == "categorized":
        assert lay.attribute is not None  # a categorized layer names the attribute too
        cats = "".join(
            f'    <category value={quoteattr(str(v))} symbol="{i}" label={quoteattr(lab)} '
            f'render="true"/>\n' for i, (v, (lab, _)) in enumerate(lay.classes.items()))
        symbols = "".join(_symbol(str(i), c, geom)
                          for i, (_, c) in enumerate(lay.classes.values()))
        body = (f'  <renderer-v2 type="categorizedSymbol" attr={quoteattr(lay.attribute)} '
                'symbollevels="0" enableorderby="0" forceraster="0">\n'
                f'  <categories>\n{cats}  </categories>\n  <symbols>\n{symbols}'
                '  </symbols>\n  </renderer-v2>\n')
    elif lay.style == "single":
        (_, colour), = lay.classes.values()
        body = ('  <renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" '
                f'forceraster="0">\n  <symbols>\n{_symbol("0", colour, geom)}  </symbols>\n'
                '  </renderer-v2>\n')
    else:
        raise ValueError(f"{kind!r} is a raster layer style")
    return _HEAD + body + "</qgis>\n"
