"""The API's GeoJSON properties as SQL expressions, for the answers PostgreSQL writes and the app passes on as the
bytes it received (the nearest search, the bundles, the change feed's stored features): shaping and encoding each
feature in Python costs more than the query that finds it. mapservice/web/features.py writes the same properties
from rows; the tests compare the two."""
from __future__ import annotations

from .db import sql_literal
from .taxonomy import SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES, VOIES


def label(column: str, labels: dict[str, str]) -> str:
    """SQL: the French label of a code, as the API gives it (NULL for an unknown or NULL code)."""
    return f"CASE {column} " + " ".join(f"WHEN {sql_literal(code)} THEN {sql_literal(name)}"
                                         for code, name in labels.items()) + " END"


def utc_iso(column: str) -> str:
    """A timestamp written as the API writes it (Python's isoformat in UTC: microseconds only when not zero, and
    all six digits), not as row_to_json does (trailing zeros dropped)."""
    return (f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
            f"to_char({column}, 'US') = '000000' THEN '' ELSE to_char({column}, '.US') END || '+00:00'")


def rounded(expression: str, decimals: int) -> str:
    """SQL: a float rounded as the API rounds it (web.features.rounded): its shortest decimal form (the one
    PostgreSQL and Python both print), half away from zero."""
    return f"round(({expression})::text::numeric, {decimals})::float8"


def point(geometry: str) -> str:
    """SQL: a GeoJSON Point's text, coordinates to 6 decimals (~10 cm) as the API gives them."""
    return (f"""'{{"type":"Point","coordinates":[' || {rounded(f"ST_X({geometry})", 6)} || ','"""
            f""" || {rounded(f"ST_Y({geometry})", 6)} || ']}}'""")


# A solution as the API's lists give it (web.features.solution_properties; alias s for the solution, site for
# its site, c for the site's commune), in that order.
SOLUTION_LIST_PROPERTIES = [
    ("id", "s.id"), ("type", "s.type"), ("type_label", label("s.type", SOLUTION_TYPES)), ("title", "s.title"),
    ("voie", "s.voie"), ("voie_label", label("s.voie", VOIES)), ("level", "s.level"), ("domain", "s.domain"),
    ("capacity", "s.capacity"), ("vacant_places", "s.vacant_places"), ("start_date", "s.start_date"),
    ("service_civique_formula", "s.service_civique_formula"),
    ("service_civique_formula_label", label("s.service_civique_formula", SERVICE_CIVIQUE_FORMULAS)),
    ("min_age", "s.min_age"), ("max_age", "s.max_age"), ("site_id", "site.id"), ("site_name", "site.name"),
    ("site_kind", "site.kind"), ("address", "site.address"), ("postcode", "site.postcode"),
    ("commune_code", "c.code"), ("commune_name", "c.name"), ("position_precision", "site.position_precision"),
    ("last_checked_at", utc_iso("s.last_checked_at")), ("is_example", "s.is_example"),
]
# What the detail adds to them (web.features.solution_detail_feature).
SOLUTION_DETAIL_PROPERTIES = [
    ("description", "s.description"),
    ("end_date", "s.end_date"), ("hours_per_week", "s.hours_per_week"),
    ("school_hours_per_week", "s.school_hours_per_week"), ("eligibility", "s.eligibility"),
    ("how_to_apply", "s.how_to_apply"),
]


def feature(row: str, properties: str) -> str:
    """SQL: a GeoJSON Feature's text, from a row `row` with the feature's id and `geometry_` (a geometry's text)
    and a row `properties` whose row_to_json is its properties object."""
    return (f"""'{{"type":"Feature","id":' || {row}.id || ',"geometry":' || {row}.geometry_ || ',"properties":' """
            f"""|| row_to_json({properties})::text || '}}'""")


def columns(properties: list[tuple[str, str]]) -> str:
    """SQL: the properties as a select list's columns, each named as the property."""
    return ", ".join(f'{expression} AS "{name}"' for name, expression in properties)


def picked(properties: list[tuple[str, str]], alias: str) -> str:
    """SQL: those columns read again from `alias` (a LATERAL row whose row_to_json is the properties object)."""
    return ", ".join(f'{alias}."{name}"' for name, _ in properties)


# A solution's feature as the lists give it, for a statement whose row `r` holds the list's properties
# (`columns`, from the aliases s, site and c) and its geometry (`point`, as geometry_), and whose LATERAL row `p`
# picks the properties written (`feature`): the nearest search's and the OGC pages'.
SOLUTION_LIST_FEATURE = {
    "columns": columns(SOLUTION_LIST_PROPERTIES),
    "point": point("site.geom"),
    "feature": feature("r", "p"),
}
