"""Partners' lists (missions locales, service civique missions, E2C, EPIDE, regional training): a CSV (`;` or
`,`) or a GeoJSON file of points, in the columns below — the template the app serves at
/imports/modele-partenaires.csv holds them. One row is one place and the solution offered there.

| column | required | what |
| --- | --- | --- |
| identifiant | yes | the partner's own id of the row, stable from one file to the next |
| type | yes | mission_locale, service_civique, e2c, epide or formation_regionale |
| nom | yes | the place's name |
| adresse, code_postal, commune | without a position | the postal address (the commune from postcode + name) |
| code_commune | no | INSEE code, when known (checked against the position) |
| latitude, longitude | without an address | WGS84 decimal degrees (GeoJSON: the point's coordinates) |
| telephone, email, site_web | no | contact (site_web: http(s) only) |
| titre, description | no | the solution's title (default: the type's label) and text |
| formule | service_civique | plein_temps or combinee |
| places_libres, age_min, age_max | no | whole numbers |
"""
from __future__ import annotations

import csv
import io
import json
from typing import Iterator

from ..communes import CommuneMatcher
from ..errors import ImportRefused, InvalidParameter
from ..links import checked_link
from ..taxonomy import SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES
from .cfa import LazyCommuneMatcher
from .reading import CsvReader, CsvRow, ImportFile
from .records import Rejection, SiteCandidate, SolutionCandidate, number_or_rejection, text_or_none

REQUIRED = ["identifiant", "type", "nom"]
COLUMNS = ["identifiant", "type", "nom", "adresse", "code_postal", "commune", "code_commune", "latitude",
           "longitude", "telephone", "email", "site_web", "titre", "description", "formule", "places_libres",
           "age_min", "age_max"]
# The site kind of each solution type a partner may import.
KINDS = {"mission_locale": "mission_locale", "service_civique": "service_civique", "e2c": "e2c",
         "epide": "epide", "formation_regionale": "organisme_formation"}

TEMPLATE_ROWS = [
    ["exemple-ml-1", "mission_locale", "Exemple — Mission locale du centre", "1 place de la Mairie", "35000",
     "Rennes", "", "", "", "02 99 00 00 00", "contact@exemple.invalid", "https://exemple.invalid/",
     "Être accompagné vers une formation ou un emploi", "", "", "", "16", "25"],
    ["exemple-sc-1", "service_civique", "Exemple — Association sportive", "", "", "", "35238", "48.1119",
     "-1.6809", "", "", "", "Service civique combiné — animation sportive", "21 h de mission + 10 h au lycée",
     "combinee", "2", "16", "25"],
]


def template_csv() -> str:
    """The template file partners fill in (both rows are examples, to be replaced)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return out.getvalue()


def reader(source: ImportFile, max_bytes: int) -> CsvReader:
    return CsvReader(source, REQUIRED, (";", ","), max_bytes=max_bytes)


def geojson_rows(source: ImportFile, max_bytes: int) -> Iterator[CsvRow]:
    """The features of a GeoJSON FeatureCollection as rows (line = the feature's number, from 1): properties
    named like the CSV columns, the point's coordinates as latitude/longitude."""
    data = b"".join(source.blocks(max_bytes))
    if not data.strip():
        raise ImportRefused(f"{source.name}, ligne 1 : le fichier est vide.")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise ImportRefused(f"{source.name}, ligne {line} : ce n'est pas du GeoJSON lisible ({exc}).") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportRefused(f"{source.name}, ligne 1 : il faut une FeatureCollection GeoJSON.")
    for number, feature in enumerate(document.get("features") or [], start=1):
        props = dict((feature or {}).get("properties") or {})
        geometry = (feature or {}).get("geometry") or {}
        values = {c: "" if props.get(c) is None else str(props.get(c)) for c in COLUMNS}
        if geometry.get("type") == "Point" and len(geometry.get("coordinates") or []) >= 2:
            values["longitude"], values["latitude"] = (str(c) for c in geometry["coordinates"][:2])
        yield CsvRow.from_dict(number, values)


def parse_row(row: CsvRow, matcher: CommuneMatcher | LazyCommuneMatcher) -> SiteCandidate | Rejection:
    v = {c: row.get(c) for c in COLUMNS}
    line, key = row.line, v["identifiant"].strip()
    if not key:
        return Rejection(line, "identifiant vide", "identifiant")
    solution_type = v["type"].strip()
    if solution_type not in KINDS:
        return Rejection(line, f"type « {solution_type} » inconnu ; attendu : {', '.join(KINDS)}", "type", key)
    name = text_or_none(v["nom"])
    if not name:
        return Rejection(line, "nom vide", "nom", key)
    formula = text_or_none(v["formule"])
    if (solution_type == "service_civique") != (formula is not None) or (
            formula and formula not in SERVICE_CIVIQUE_FORMULAS):
        return Rejection(line, "formule attendue pour le service civique seulement : plein_temps ou combinee",
                         "formule", key)
    numbers = {}
    for column, low, high in (("latitude", -90, 90), ("longitude", -180, 180), ("places_libres", 0, 100000),
                              ("age_min", 0, 99), ("age_max", 0, 99)):
        numbers[column], problem = number_or_rejection(v, column, line, key, low, high)
        if problem:
            return problem
    try:
        website = checked_link(v["site_web"], "site_web")
    except InvalidParameter as exc:
        return Rejection(line, exc.detail, "site_web", key)
    postcode, town = text_or_none(v["code_postal"]), text_or_none(v["commune"])
    commune_code = text_or_none(v["code_commune"])
    if commune_code is None and postcode and town:
        commune = matcher.match(postcode, town)
        if commune is None:
            return Rejection(line, f"commune inconnue : « {postcode} {town} »", "commune", key)
        commune_code = commune["code"]
    if commune_code is None and (numbers["latitude"] is None or numbers["longitude"] is None):
        return Rejection(line, "ni position (latitude, longitude) ni adresse (code_postal, commune)", "latitude",
                         key)
    as_int = {c: None if numbers[c] is None else int(numbers[c]) for c in ("places_libres", "age_min", "age_max")}
    site = SiteCandidate(
        line=line, key=key, name=name, kind=KINDS[solution_type], commune_code=commune_code,
        address=text_or_none(v["adresse"]), postcode=postcode, town=town, lat=numbers["latitude"],
        lon=numbers["longitude"], phone=text_or_none(v["telephone"]), email=text_or_none(v["email"]),
        website=website)
    site.solutions = [SolutionCandidate(
        f"{key}:{solution_type}", solution_type, text_or_none(v["titre"]) or SOLUTION_TYPES[solution_type],
        description=text_or_none(v["description"]), service_civique_formula=formula,
        vacant_places=as_int["places_libres"], min_age=as_int["age_min"], max_age=as_int["age_max"])]
    return site
