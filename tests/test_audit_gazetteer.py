"""The country-mention gazetteer (globalign.audit.gazetteer): canonical names that the world map can
draw, longest-match and word-boundary rules in several scripts, and each ambiguity rule."""

from __future__ import annotations

import pytest

from globalign.audit.gazetteer import (
    KINDS,
    CountryMention,
    Gazetteer,
    default_gazetteer,
    gazetteer_version,
)
from globalign.report.maps import match_country


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return default_gazetteer()


def surfaces(gaz: Gazetteer, text: str) -> list[tuple[str, str]]:
    """(surface, canonical country) of each mention, in order."""
    return [(m.surface, m.country) for m in gaz.find(text)]


# ----------------------------------------------------------------------------------------------------
# Canonical names, table, determinism


def test_every_canonical_country_is_drawable_on_the_world_map(gaz):
    unmatched = {a3: name for a3, name in gaz.canonical.items() if match_country(name) is None}
    assert unmatched == {}
    assert len(gaz.canonical) == 239  # 249 ISO countries - 11 folded territories + Kosovo
    assert gaz.canonical["KOR"] == "South Korea" and gaz.canonical["RUS"] == "Russia"
    assert gaz.canonical["COD"] == "Democratic Republic of the Congo"


def test_every_term_names_a_canonical_country_with_a_known_kind(gaz):
    rows = gaz.term_table()
    assert len(rows) > 30000
    assert {kind for _, _, kind, _ in rows} == set(KINDS)
    assert {a3 for _, a3, _, _ in rows} - {""} <= set(gaz.canonical)


def test_territories_drawn_inside_another_country_are_reported_as_that_country(gaz):
    assert surfaces(gaz, "Réunion and French Guiana") == [("Réunion", "France"), ("French Guiana", "France")]
    assert surfaces(gaz, "Svalbard and Jan Mayen") == [("Svalbard and Jan Mayen", "Norway")]
    assert surfaces(gaz, "Kosovo") == [("Kosovo", "Kosovo")]


def test_results_and_table_are_deterministic(gaz):
    text = "Nigeria, the U.S. and 中国 met in Jordan; Kenya na Tanzania; в России."
    again = Gazetteer()
    assert again.term_table() == gaz.term_table()
    assert again.find(text) == gaz.find(text) == gaz.find(text)


def test_version_names_packages_and_hashes_the_table():
    version = gazetteer_version()
    assert version["pycountry"] == "26.2.16" and version["babel"] == "2.19.0"
    assert version["countries"] == "239" and int(version["terms"]) > 30000
    assert len(version["table_sha256"]) == 16
    assert Gazetteer(locales=("en",)).term_table() != default_gazetteer().term_table()


def test_default_gazetteer_is_built_once():
    assert default_gazetteer() is default_gazetteer()


def test_mention_spans_point_at_the_surface(gaz):
    text = "From Lagos, Nigeria to the U.S. — then South Korea (미국은 no) and Côte d’Ivoire."
    mentions = gaz.find(text)
    assert [(m.start, m.end) for m in mentions] == [(12, 19), (27, 31), (39, 50), (52, 55), (64, 77)]
    assert all(text[m.start:m.end] == m.surface for m in mentions)
    assert mentions[0] == CountryMention("Nigeria", "NGA", 12, 19, "Nigeria", "name")
    assert [m.kind for m in mentions] == ["name", "code", "name", "localised", "name"]


def test_countries_is_the_set_of_canonical_names(gaz):
    assert gaz.countries("Kenya, Kenyans and the Kenyan coast; Uganda") == {"Kenya", "Uganda"}
    assert gaz.countries("a text about nothing in particular") == set()


# ----------------------------------------------------------------------------------------------------
# Longest match and word boundaries


@pytest.mark.parametrize(("text", "expected"), [
    ("South Sudan, not Sudan", [("South Sudan", "South Sudan"), ("Sudan", "Sudan")]),
    ("Papua New Guinea", [("Papua New Guinea", "Papua New Guinea")]),
    ("Equatorial Guinea and Guinea", [("Equatorial Guinea", "Equatorial Guinea"), ("Guinea", "Guinea")]),
    ("Guinea-Bissau, Guinea Bissau", [("Guinea-Bissau", "Guinea-Bissau"), ("Guinea Bissau", "Guinea-Bissau")]),
    ("Niger, Nigeria, a Nigerien", [("Niger", "Niger"), ("Nigeria", "Nigeria"), ("Nigerien", "Niger")]),
    ("Dominica and the Dominican Republic", [("Dominica", "Dominica"),
                                             ("Dominican Republic", "Dominican Republic")]),
    ("Northern Ireland", [("Northern Ireland", "United Kingdom")]),
    ("the Republic of Ireland", [("Republic of Ireland", "Ireland")]),
    ("American Samoa", [("American Samoa", "American Samoa")]),
    ("the Democratic Republic of the Congo", [("Democratic Republic of the Congo",
                                               "Democratic Republic of the Congo")]),
    ("Republic of the Congo", [("Republic of the Congo", "Republic of the Congo")]),
    ("DR Congo, DRC, Zaire, Congo-Kinshasa", [("DR Congo", "Democratic Republic of the Congo"),
                                              ("DRC", "Democratic Republic of the Congo"),
                                              ("Zaire", "Democratic Republic of the Congo"),
                                              ("Congo-Kinshasa", "Democratic Republic of the Congo")]),
    ("the People's Republic of China", [("People's Republic of China", "China")]),
    ("U.S. Virgin Islands", [("U.S. Virgin Islands", "U.S. Virgin Islands")]),
    ("Bosnia & Herzegovina", [("Bosnia & Herzegovina", "Bosnia and Herzegovina")]),
    ("St. Lucia and St Lucia", [("St. Lucia", "Saint Lucia"), ("St Lucia", "Saint Lucia")]),
])
def test_the_longest_term_wins(gaz, text, expected):
    assert surfaces(gaz, text) == expected


def test_bare_congo_is_ambiguous_and_not_counted(gaz):
    assert surfaces(gaz, "Congo, the Congo River and Congolese music") == []


def test_a_match_never_starts_or_ends_inside_a_word(gaz):
    assert surfaces(gaz, "A Woman from Omaha; Somalia; malice; Togoland; Omanis") == [
        ("Somalia", "Somalia"), ("Omanis", "Oman")]
    assert surfaces(gaz, "Nigeria2024 and Nigeria_data") == []
    assert surfaces(gaz, "Nigeria's and Nigeria-based") == [("Nigeria", "Nigeria"), ("Nigeria", "Nigeria")]
    assert surfaces(gaz, "जापान में, जापानी") == [("जापान", "Japan")]  # vowel signs are word characters


def test_cjk_names_match_without_spaces_and_katakana_names_respect_katakana_neighbours(gaz):
    assert surfaces(gaz, "我去过中国和美国。") == [("中国", "China"), ("美国", "United States")]
    assert surfaces(gaz, "インドとインドア、インドネシア") == [("インド", "India"), ("インドネシア", "Indonesia")]
    assert surfaces(gaz, "日本は韓国の隣") == [("日本", "Japan"), ("韓国", "South Korea")]
    assert surfaces(gaz, "南アメリカ") == []  # the continent
    assert surfaces(gaz, "日本語と韓国語") == []  # the languages


def test_korean_particles_and_arabic_proclitics(gaz):
    assert surfaces(gaz, "미국은 한국과 일본에서") == [
        ("미국은", "United States"), ("한국과", "South Korea"), ("일본에서", "Japan")]
    assert surfaces(gaz, "والهند وبالهند وللهند ومصر") == [
        ("والهند", "India"), ("وبالهند", "India"), ("وللهند", "India"), ("ومصر", "Egypt")]
    assert surfaces(gaz, "수단과 방법") == []  # 수단 is "means", not Sudan


# ----------------------------------------------------------------------------------------------------
# Case


def test_lowercase_common_words_never_count(gaz):
    assert surfaces(gaz, "fine china, roast turkey, chad and jordan, a guinea pig, japan lacquer") == []


def test_all_caps_names_count_except_the_ambiguous_words(gaz):
    assert surfaces(gaz, "NIGERIA BEATS SOUTH AFRICA") == [("NIGERIA", "Nigeria"), ("SOUTH AFRICA", "South Africa")]
    assert surfaces(gaz, "TURKEY AND CHAD RECIPES") == []


# ----------------------------------------------------------------------------------------------------
# Ambiguous words


def test_turkey_counts_capitalised_and_as_turkiye_but_not_as_food(gaz):
    assert surfaces(gaz, "Turkey and Türkiye") == [("Turkey", "Türkiye"), ("Türkiye", "Türkiye")]
    assert surfaces(gaz, "Turkey sandwich recipes") == []


def test_chad_and_jordan_need_geographic_context(gaz):
    assert surfaces(gaz, "Chad went home. Jordan said hi.") == []
    assert surfaces(gaz, "Michael Jordan and Jordan Peterson at Lake Chad") == []
    assert surfaces(gaz, "I flew to Jordan.") == [("Jordan", "Jordan")]
    assert surfaces(gaz, "Chad's government resigned.") == [("Chad", "Chad")]
    assert surfaces(gaz, "Jordan is a country in the Middle East.") == [("Jordan", "Jordan")]
    assert surfaces(gaz, "Jordan and Syria signed it.") == [("Jordan", "Jordan"), ("Syria", "Syria")]


def test_georgia_is_not_counted_with_a_us_cue(gaz):
    assert surfaces(gaz, "Tbilisi is the capital of Georgia.") == [("Georgia", "Georgia")]
    assert surfaces(gaz, "She moved to Atlanta, Georgia.") == []
    assert surfaces(gaz, "Georgia, USA") == [("USA", "United States")]
    assert surfaces(gaz, "He studied at Georgia Tech.") == []
    assert surfaces(gaz, "South Georgia") == [("South Georgia", "South Georgia and the South Sandwich Islands")]


@pytest.mark.parametrize("text", [
    "a Guinea pig", "New Jersey", "Jersey City", "a Panama hat", "Java coffee", "New Mexico", "New England",
    "New South Wales", "the Indian Ocean", "American Indian tribes", "Latin American music", "North America",
    "French fries", "a German shepherd", "Polish the text.", "Polish your essay", "the Niger River",
    "the East India Company",
])
def test_blocking_phrases_name_no_country(gaz, text):
    assert surfaces(gaz, text) == []


def test_words_next_to_blocking_phrases_still_count(gaz):
    assert surfaces(gaz, "Jersey, the Panama Canal and Mexico City") == [
        ("Jersey", "Jersey"), ("Panama", "Panama"), ("Mexico", "Mexico")]
    assert surfaces(gaz, "the Niger Delta") == [("Niger Delta", "Nigeria")]


# ----------------------------------------------------------------------------------------------------
# Codes


def test_bare_iso_codes_do_not_count(gaz):
    assert surfaces(gaz, "IT support, NO, IN, ME, TO, IS, AM, AT, BE") == []
    assert surfaces(gaz, "IND vs FRA; CAN you; PER day; ARE they") == []


def test_allowed_abbreviations_count_with_their_final_dot(gaz):
    assert surfaces(gaz, "the U.S. and U.S.A., USA, UK, U.K., UAE, DRC, PRC, DPRK") == [
        ("U.S.", "United States"), ("U.S.A.", "United States"), ("USA", "United States"),
        ("UK", "United Kingdom"), ("U.K.", "United Kingdom"), ("UAE", "United Arab Emirates"),
        ("DRC", "Democratic Republic of the Congo"), ("PRC", "China"), ("DPRK", "North Korea")]


def test_us_is_the_country_except_as_the_pronoun_in_capitals(gaz):
    assert surfaces(gaz, "Prices in US dollars") == [("US", "United States")]
    assert surfaces(gaz, "US and UK officials") == [("US", "United States"), ("UK", "United Kingdom")]
    assert surfaces(gaz, "Questions? CONTACT US today") == []
    assert surfaces(gaz, "PLEASE HELP US FIND OUR DOG") == []


# ----------------------------------------------------------------------------------------------------
# Demonyms


def test_demonyms_count_and_their_plurals(gaz):
    assert surfaces(gaz, "Nigerian food, Kenyans, a Filipino nurse") == [
        ("Nigerian", "Nigeria"), ("Kenyans", "Kenya"), ("Filipino", "Philippines")]
    assert surfaces(gaz, "South Korean and North Korean") == [
        ("South Korean", "South Korea"), ("North Korean", "North Korea")]


def test_indian_and_american_exclude_other_regions(gaz):
    assert surfaces(gaz, "Indian food near the Indian Ocean") == [("Indian", "India")]
    assert surfaces(gaz, "American Indian history") == []
    assert surfaces(gaz, "American, Latin American, South American") == [("American", "United States")]
    assert surfaces(gaz, "African American writers") == [("American", "United States")]


@pytest.mark.parametrize(("text", "expected"), [
    ("Translate this into French.", []),
    ("Translate to German and Spanish.", []),
    ("Translate it into French, Spanish, or German.", []),
    ("She speaks Spanish fluently.", []),
    ("Reply in English.", []),
    ("English food", []),  # "English" is never counted
    ("the German language", []),
    ("Chinese characters", []),
    ("French-speaking Africa", []),
    ("in Chinese culture", [("Chinese", "China")]),
    ("German cars", [("German", "Germany")]),
    ("a French chef", [("French", "France")]),
])
def test_language_names_do_not_count_as_countries(gaz, text, expected):
    assert surfaces(gaz, text) == expected


# ----------------------------------------------------------------------------------------------------
# Localised names: an example per study language, then the major ones


@pytest.mark.parametrize(("text", "expected"), [
    ("زرت مصر والهند", [("مصر", "Egypt"), ("والهند", "India")]),  # ar
    ("ভারতের রাজধানী, বাংলাদেশ", [("ভারতের", "India"), ("বাংলাদেশ", "Bangladesh")]),  # bn
    ("Kenya and Tanzania", [("Kenya", "Kenya"), ("Tanzania", "Tanzania")]),  # en
    ("Intiassa ja Suomessa", [("Intiassa", "India"), ("Suomessa", "Finland")]),  # fi
    ("Amerika Serikat dan Jepang", [("Amerika Serikat", "United States"), ("Jepang", "Japan")]),  # id
    ("대한민국과 북한", [("대한민국과", "South Korea"), ("북한", "North Korea")]),  # ko
    ("в России и Германии", [("России", "Russia"), ("Германии", "Germany")]),  # ru
    ("Kenya na Tanzania, Marekani", [("Kenya", "Kenya"), ("Tanzania", "Tanzania"),
                                     ("Marekani", "United States")]),  # sw
    ("భారతదేశంలో", [("భారతదేశంలో", "India")]),  # te
    ("中国和德国", [("中国", "China"), ("德国", "Germany")]),  # zh
    ("Alemania y México", [("Alemania", "Germany"), ("México", "Mexico")]),  # es
    ("les États-Unis et l'Inde", [("États-Unis", "United States"), ("Inde", "India")]),  # fr
    ("Deutschlands Nachbarn", [("Deutschlands", "Germany")]),  # de
    ("nước Anh và Ấn Độ", [("nước Anh", "United Kingdom"), ("Ấn Độ", "India")]),  # vi
    ("Hindistan'da", [("Hindistan", "India")]),  # tr
    ("በኢትዮጵያ", [("በኢትዮጵያ", "Ethiopia")]),  # am
])
def test_localised_names(gaz, text, expected):
    assert surfaces(gaz, text) == expected
    assert all(m.kind in ("name", "localised", "alias") for m in gaz.find(text))


def test_russian_case_forms(gaz):
    assert gaz.countries("в Китае, из Франции, с Японией, про Канаду, в Южной Корее, в США") == {
        "China", "France", "Japan", "Canada", "South Korea", "United States"}


def test_finnish_case_forms(gaz):
    assert gaz.countries("Iso-Britanniassa, Turkista, Yhdysvaltoihin, Kiinan") == {
        "United Kingdom", "Türkiye", "United States", "China"}


def test_localised_names_that_are_common_words_are_dropped(gaz):
    assert surfaces(gaz, "Island life") == []  # German "Island" = Iceland
    assert surfaces(gaz, "Maurice Ravel") == []  # French "Maurice" = Mauritius
    assert surfaces(gaz, "l'île Maurice") == [("île Maurice", "Mauritius")]


def test_an_english_only_build_is_smaller_and_ignores_other_scripts(gaz):
    english = Gazetteer(locales=("en",))
    assert len(english.term_table()) < len(gaz.term_table()) / 5
    assert english.countries("Nigeria and 中国") == {"Nigeria"}


# ----------------------------------------------------------------------------------------------------
# The Latin fast path and the general path agree


@pytest.mark.parametrize("text", [
    "My cousin moved from Nigeria to the United Kingdom; Indian food in the US; a French speaker.",
    "Polish the text. Polish food. Jordan said hi; I flew to Jordan. Georgia Tech. eSwatini.",
    "U.S.A. and U.K. and Côte d'Ivoire, Guinea-Bissau; in Chinese culture; Translate into French.",
])
def test_fast_path_agrees_with_the_general_path(gaz, text):
    fast = gaz.find(text)
    general = gaz.find(text + " Ω")  # a Greek letter sends the text down the general path
    assert fast == general and fast
    accented = gaz.find(text + " é")  # Latin but not ASCII
    assert accented == fast


def test_every_latin_term_is_found_the_same_way_on_both_paths(gaz):
    latin = [s for s, a3, _, _ in gaz.term_table() if a3 and not gaz._pat.non_latin.search(s)]
    assert len(latin) > 9000
    differ = [s for s in latin if gaz.find(s) != gaz.find(s + " ω")]
    assert differ == []
    lost = [s for s in latin if not gaz.find(s)]
    assert lost == ["Chad", "Jordan", "US"]  # alone they lack context; a lone "US" is all capitals
