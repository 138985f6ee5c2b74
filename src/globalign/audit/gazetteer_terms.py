"""The gazetteer's hand-written tables: canonical-name fixes, folded territories, English demonyms,
aliases and codes, blocking phrases, localised-name stoplists, inflection affixes, and the context
words of the ambiguity rules. Alpha-3 codes throughout; gazetteer.py checks them against the canonical
table when it builds. Data only: the rules that use these tables are documented in gazetteer.py."""

from __future__ import annotations

import re

CANONICAL = {  # where pycountry's (common) name is an inverted or formal form
    "COD": "Democratic Republic of the Congo", "COG": "Republic of the Congo", "PRK": "North Korea",
    "KOR": "South Korea", "RUS": "Russia", "BRN": "Brunei", "FSM": "Micronesia", "PSE": "Palestine",
    "VAT": "Vatican City", "FLK": "Falkland Islands", "VGB": "British Virgin Islands",
    "VIR": "U.S. Virgin Islands", "SHN": "Saint Helena", "MAF": "Saint Martin", "SXM": "Sint Maarten",
    "XKX": "Kosovo", "ATF": "French Southern and Antarctic Lands", "PCN": "Pitcairn Islands",
}
FOLDED = {"REU": "FRA", "GLP": "FRA", "MTQ": "FRA", "GUF": "FRA", "MYT": "FRA", "SJM": "NOR", "BVT": "NOR",
           "CXR": "AUS", "CCK": "AUS", "TKL": "NZL", "BES": "NLD"}
BABEL_EXTRA = {"XK": "XKX", "AC": "SHN", "TA": "SHN", "DG": "IOT", "EA": "ESP", "IC": "ESP", "CQ": "GGY"}
NOT_A_TERM = {"Congo", "Kongo", "Konga", "Reunion"}  # ambiguous, or an English word without its accent

# English demonyms and adjectives. "*": also a language name (language rule). Words ending in -n/-i
# get their plural ("Nigerians", "Israelis") automatically.
DEMONYMS = """
AFG: Afghan | ALB: Albanian* | DZA: Algerian | AND: Andorran | AGO: Angolan | ATG: Antiguan, Barbudan
ARG: Argentine, Argentines, Argentinian, Argentinean | ARM: Armenian* | AUS: Australian, Aussie, Aussies
AUT: Austrian | AZE: Azerbaijani*, Azeri* | BHS: Bahamian | BHR: Bahraini | BGD: Bangladeshi
BRB: Barbadian, Bajan | BLR: Belarusian*, Belarussian | BEL: Belgian | BLZ: Belizean | BEN: Beninese
BTN: Bhutanese | BOL: Bolivian | BIH: Bosnian*, Herzegovinian | BWA: Botswanan, Motswana, Batswana
BRA: Brazilian | BRN: Bruneian | BGR: Bulgarian* | BFA: Burkinabe, Burkinabè | BDI: Burundian
KHM: Cambodian | CMR: Cameroonian | CAN: Canadian | CPV: Cape Verdean, Cabo Verdean | TCD: Chadian
CHL: Chilean | CHN: Chinese* | COL: Colombian | COM: Comorian | CRI: Costa Rican | CIV: Ivorian
HRV: Croatian*, Croat, Croats | CUB: Cuban | CYP: Cypriot, Cypriots | CZE: Czech*, Czechs
DNK: Danish*, Dane, Danes | DJI: Djiboutian | DOM: Dominican | ECU: Ecuadorian, Ecuadorean
SLV: Salvadoran, Salvadorean | GNQ: Equatorial Guinean, Equatoguinean | ERI: Eritrean | EST: Estonian*
SWZ: Swazi, Swazis | ETH: Ethiopian | FJI: Fijian* | FIN: Finnish*, Finns
FRA: French*, Frenchman, Frenchmen, Frenchwoman, Frenchwomen | GAB: Gabonese | GMB: Gambian
GEO: Georgian* | DEU: German* | GHA: Ghanaian | GRC: Greek*, Greeks | GRD: Grenadian | GTM: Guatemalan
GIN: Guinean | GNB: Bissau-Guinean | GUY: Guyanese | HTI: Haitian | HND: Honduran | HUN: Hungarian*
ISL: Icelandic*, Icelander, Icelanders | IND: Indian | IDN: Indonesian* | IRN: Iranian, Persian*
IRQ: Iraqi | IRL: Irish*, Irishman, Irishmen, Irishwoman | ISR: Israeli | ITA: Italian* | JAM: Jamaican
JPN: Japanese* | JOR: Jordanian | KAZ: Kazakh*, Kazakhs, Kazakhstani | KEN: Kenyan | PRK: North Korean
KOR: South Korean, Korean* | XKX: Kosovar, Kosovars, Kosovan | KWT: Kuwaiti | KGZ: Kyrgyz*, Kyrgyzstani
LAO: Laotian, Lao* | LVA: Latvian* | LBN: Lebanese | LSO: Basotho, Mosotho | LBR: Liberian | LBY: Libyan
LIE: Liechtensteiner | LTU: Lithuanian* | LUX: Luxembourger, Luxembourgish* | MDG: Malagasy*
MWI: Malawian | MYS: Malaysian | MDV: Maldivian | MLI: Malian | MLT: Maltese* | MHL: Marshallese*
MRT: Mauritanian | MUS: Mauritian | MEX: Mexican | MDA: Moldovan | MCO: Monegasque, Monacan
MNG: Mongolian* | MNE: Montenegrin | MAR: Moroccan | MOZ: Mozambican | MMR: Burmese* | NAM: Namibian
NRU: Nauruan | NPL: Nepali*, Nepalese | NLD: Dutch*, Dutchman, Dutchmen, Dutchwoman
NZL: New Zealander, New Zealanders | NIC: Nicaraguan | NER: Nigerien | NGA: Nigerian | MKD: Macedonian*
NOR: Norwegian* | OMN: Omani | PAK: Pakistani | PLW: Palauan | PSE: Palestinian | PAN: Panamanian
PNG: Papua New Guinean | PRY: Paraguayan | PER: Peruvian
PHL: Filipino*, Filipinos, Filipina, Filipinas, Philippine | POL: Polish* | PRT: Portuguese*
QAT: Qatari | ROU: Romanian* | RUS: Russian* | RWA: Rwandan | KNA: Kittitian, Nevisian | LCA: Saint Lucian
VCT: Vincentian | WSM: Samoan* | SMR: Sammarinese | STP: Santomean | SAU: Saudi, Saudi Arabian
SEN: Senegalese | SRB: Serbian*, Serb, Serbs | SYC: Seychellois | SLE: Sierra Leonean | SGP: Singaporean
SVK: Slovak*, Slovaks, Slovakian | SVN: Slovenian*, Slovene* | SLB: Solomon Islander, Solomon Islanders
SOM: Somali*, Somalian | ZAF: South African | SSD: South Sudanese | ESP: Spanish*, Spaniard, Spaniards
LKA: Sri Lankan | SDN: Sudanese | SUR: Surinamese | SWE: Swedish*, Swede, Swedes | CHE: Swiss
SYR: Syrian | TWN: Taiwanese | TJK: Tajik*, Tajiks, Tajikistani | TZA: Tanzanian | THA: Thai*
TLS: Timorese, East Timorese | TGO: Togolese | TON: Tongan* | TTO: Trinidadian, Tobagonian
TUN: Tunisian | TUR: Turkish*, Turk, Turks | TKM: Turkmen* | TUV: Tuvaluan | UGA: Ugandan
UKR: Ukrainian* | ARE: Emirati | GBR: British, Briton, Britons, Brit, Brits, Scottish, Scots*, Welsh*,
GBR: Northern Irish | USA: American | URY: Uruguayan | UZB: Uzbek*, Uzbeks, Uzbekistani | VUT: Ni-Vanuatu
VEN: Venezuelan | VNM: Vietnamese* | YEM: Yemeni | ZMB: Zambian | ZWE: Zimbabwean | HKG: Hongkonger, Hong Konger
MAC: Macanese | PRI: Puerto Rican | GRL: Greenlandic*, Greenlander | FRO: Faroese* | BMU: Bermudian
CYM: Caymanian | GIB: Gibraltarian | ABW: Aruban | CUW: Curaçaoan | GUM: Guamanian | ASM: American Samoan
IMN: Manx* | NCL: New Caledonian
"""

ALIASES = """
USA: United States of America, America, United States | GBR: Britain, Great Britain, England, Scotland, Wales,
GBR: Northern Ireland, United Kingdom | IRL: Republic of Ireland | KOR: South Korea, Republic of Korea, Korea | PRK: North Korea
RUS: Russia | IRN: Iran | VNM: Vietnam | CIV: Ivory Coast, Côte d'Ivoire | CZE: Czech Republic, Czechia
NLD: Holland | MMR: Burma | MKD: Macedonia | SWZ: Swaziland, Eswatini | CPV: Cape Verde
TLS: East Timor, Timor-Leste | VAT: Vatican, Vatican City, Holy See | PSE: Palestine, Gaza, Gaza Strip, West Bank
COD: Zaire, DR Congo, Democratic Republic of the Congo, Democratic Republic of Congo, Congo-Kinshasa
COG: Republic of the Congo, Republic of Congo, Congo-Brazzaville | BRN: Brunei | MAC: Macau, Macao
HKG: Hong Kong | FSM: Micronesia | BIH: Bosnia, Bosnia-Herzegovina | TTO: Trinidad, Tobago
KNA: Saint Kitts, Saint Kitts and Nevis | VCT: Saint Vincent | SHN: Saint Helena, Ascension Island,
SHN: Tristan da Cunha | FLK: Falkland Islands, Falklands | SGS: South Georgia | SOM: Somaliland
CYP: Northern Cyprus | CHN: Inner Mongolia | NGA: Niger Delta | TUR: Turkey, Türkiye | TWN: Republic of China
STP: São Tomé, São Tomé and Príncipe | GNB: Guinea Bissau | VIR: US Virgin Islands, U.S. Virgin Islands,
VIR: United States Virgin Islands | CAN: British Columbia | MAF: Saint Martin | XKX: Kosovo
"""

# Uppercase abbreviations that stand for a country (rule "us": see ``_accept``).
CODES = (("US", "USA"), ("USA", "USA"), ("U.S.", "USA"), ("U.S.A.", "USA"), ("UK", "GBR"), ("U.K.", "GBR"),
          ("UAE", "ARE"), ("U.A.E.", "ARE"), ("DRC", "COD"), ("PRC", "CHN"), ("DPRK", "PRK"), ("ROK", "KOR"),
          ("KSA", "SAU"))

# Phrases that name no country although they contain a country word: they consume their span.
BLOCKED = """
Indian Ocean | American Indian | American Indians | West Indian | West Indians | West Indies | Indian summer
India ink | Cleveland Indians | Latin America | Latin American | Latin Americans | South America
South American | South Americans | North America | North American | North Americans | Central America
Central American | Central Americans | Pan-American | Pan American | Captain America | New Mexico
New Mexican | New Mexicans | New Jersey | Jersey City | Jersey Shore | New England | New South Wales
New Guinea | Gulf of Guinea | Guinea pig | Guinea pigs | Guinea fowl | Guinea worm | Panama hat | Panama hats
Niger River | River Niger | East Indies | East India Company | Persian Gulf | British Isles | French fries | French fry | French toast
French press | French horn | French kiss | French braid | Dutch oven | German shepherd | German shepherds
Great Dane | Great Danes | Russian roulette | Chinese checkers | Swiss cheese | Swiss roll | Spanish flu
Mexican wave | Danish pastry | Turkey sandwich | Turkey breast | Turkey burger | Turkey bacon
Turkey dinner | Turkey Day | Turkey legs | Chile pepper | Chile peppers | Georgian era | Georgian architecture
Georgian period | Georgian style | Polish the | Polish this | Polish that | Polish these | Polish those
Polish my | Polish your | Polish our | Polish his | Polish her | Polish its | Polish their | Polish it
Polish up | Polish a | Polish an
"""

NO_UPPER = {"Turkey", "Chad", "Jordan", "Polish"}
RULES = {"Chad": "person", "Jordan": "person", "Georgia": "georgia", "US": "us"}

# Localised names that are common words in their own or another language, and hand-added local forms.
LOCALISED_STOP = {
    "de": {"Island"}, "fr": {"Maurice", "Chili"}, "ko": {"가나", "수단", "오만", "말리", "저지", "건지", "피지", "부탄", "아이티"},
    "zh": {"黑山"}, "ru": {"Того"}, "ur": {"شام", "مالی"}, "ar": {"مالي", "قطر"}, "fa": {"مالی"},
    "hi": {"माली", "गिनी"}, "bn": {"মালি"}, "te": {"మాలి"}, "vi": {"Anh", "Nga", "Mỹ", "Đức"},
    "yo": {"Gene", "Kota", "Nepa"}, "ha": {"Sin", "Gini", "Rasha"},
}
LOCALISED_ALIASES = {
    "ru": {"США": "USA", "ЮАР": "ZAF", "Англия": "GBR", "Британия": "GBR", "Южная Африка": "ZAF", "Корея": "KOR",
           "Южная Корея": "KOR", "Северная Корея": "PRK"},
    "ko": {"한국": "KOR", "남한": "KOR"},
    "ja": {"アメリカ": "USA", "米国": "USA", "英国": "GBR"},
    "ar": {"أمريكا": "USA", "أميركا": "USA", "امريكا": "USA", "بريطانيا": "GBR", "دولة قطر": "QAT"},
    "fa": {"آمریکا": "USA", "امریکا": "USA"}, "ur": {"امریکہ": "USA", "امریکا": "USA"},
    "hi": {"अमेरिका": "USA", "अमरीका": "USA"}, "bn": {"আমেরিকা": "USA"}, "te": {"అమెరికా": "USA"},
    "am": {"አሜሪካ": "USA"}, "tr": {"ABD": "USA"}, "es": {"EE. UU.": "USA", "EE.UU.": "USA", "EEUU": "USA"},
    "fr": {"île Maurice": "MUS", "Île Maurice": "MUS"}, "id": {"Inggris": "GBR"}, "ha": {"ƙasar Sin": "CHN", "Najeriya": "NGA"}, "sw": {"Uingereza": "GBR"},
    "vi": {"nước Anh": "GBR", "người Anh": "GBR", "nước Mỹ": "USA", "người Mỹ": "USA", "nước Ý": "ITA",
           "người Ý": "ITA"},
    "zh": {"内蒙古": "CHN"}, "zh_Hant": {"內蒙古": "CHN"},
}
CJK_BLOCKED = ("アメリカ大陸", "南アメリカ", "北アメリカ", "中央アメリカ")

# Inflection data (see the module docstring).
KO_PARTICLES = ("은", "는", "이", "가", "을", "를", "의", "에", "에서", "에게", "에는", "에서는", "에도", "에서도",
                 "와", "과", "와의", "과의", "와는", "과는", "로", "으로", "로의", "으로의", "로는", "으로는", "도", "만",
                 "까지", "부터", "보다", "처럼", "하고", "이나", "나", "이랑", "랑", "인", "인들", "산", "이라는", "라는",
                 "이다", "다", "이며", "며", "에서의", "만의")
AR_PROCLITICS = ("و", "ف", "ب", "ل", "ك", "وب", "ول", "وك", "فب", "فل", "فك")
AM_PREFIXES = ("በ", "ከ", "ለ", "የ", "ወደ", "እንደ")
BN_SUFFIXES = ("ের", "র", "এর", "ে", "তে", "য়", "কে", "ও", "েও", "েই", "ই", "বাসী")
TE_SUFFIXES = ("లో", "లోని", "లోనూ", "లోకి", "కు", "కి", "ను", "తో", "నుండి", "నుంచి", "దే", "పై")
RU_EXCEPTIONS = {"Египет": ("Египта", "Египту", "Египтом", "Египте"),
                  "Соединенные Штаты": ("Соединенных Штатов", "Соединенным Штатам", "Соединенными Штатами",
                                        "Соединенных Штатах")}
FI_EXCEPTIONS = {"Suomi": tuple("Suome" + s for s in ("n", "ssa", "sta", "en", "lla", "lle", "lta", "na", "ksi", "a")),
                  "Yhdysvallat": ("Yhdysvaltain", "Yhdysvaltojen", "Yhdysvalloissa", "Yhdysvalloista",
                                  "Yhdysvaltoihin", "Yhdysvalloilla", "Yhdysvalloille", "Yhdysvaltoja")}
VI_PREFIXED = {"Anh", "Nga", "Mỹ", "Đức", "Ý", "Úc", "Bỉ", "Áo", "Pháp", "Lào", "Séc", "Síp"}

# Context words for the rules in ``_accept`` (compared lowercased).
LANG_VERBS = {"speak", "speaks", "spoke", "spoken", "speaking", "learn", "learns", "learning", "learned",
               "learnt", "translate", "translates", "translated", "translating", "fluent", "native",
               "understand", "understands", "study", "studying", "teach", "teaching"}
LANG_PREPS = {"in", "into", "to", "from"}
LANG_NOUNS = {"language", "languages", "speaker", "speakers", "speaking", "translation", "translations",
               "translator", "text", "texts", "word", "words", "version", "versions", "grammar", "vocabulary",
               "dictionary", "sentence", "sentences", "phrase", "phrases", "alphabet", "script", "characters",
               "letters", "lesson", "lessons", "course", "courses", "class", "classes", "teacher", "tutor",
               "subtitles", "keyboard", "idiom", "idioms", "proverb", "proverbs", "equivalent", "spelling",
               "pronunciation", "transliteration", "term", "terms", "expression", "expressions", "verb",
               "verbs", "noun", "nouns", "accent", "dialect", "dialects", "translate"}
FUNCTION_WORDS = {"and", "or", "but", "please", "as", "with", "for", "by", "so", "then", "too", "only",
                   "instead", "if", "is", "are", "was", "were", "the", "a", "an", "of", "that", "which",
                   "while", "when", "because", "first", "now", "here", "below", "above", "again", "also",
                   "not", "using", "without", "like"}
GEO_PREV = {"in", "to", "from", "of", "into", "across", "visit", "visited", "visiting", "near", "throughout",
             "within", "including", "neighbouring", "neighboring", "bordering", "between", "toward",
             "towards", "via", "than", "both"}
GEO_NEAR = {"country", "countries", "government", "capital", "border", "borders", "population", "economy",
             "president", "king", "kingdom", "republic", "ministry", "minister", "embassy", "army",
             "military", "refugee", "refugees", "territory", "desert", "citizens", "nation", "national",
             "independence", "province", "provinces", "region", "africa", "african", "middle", "east",
             "arab", "sahel"}
US_CUE = re.compile(r"\b(?:Atlanta|Savannah|Augusta|Macon|Alabama|Florida|Tennessee|Carolina|USA|US|"
                     r"United States|[Ss]tate of|Peach State)\b|U\.S\.")
