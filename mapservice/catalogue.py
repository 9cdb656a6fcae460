"""The public catalogue as the public sees it: the filters every reader shares, one solution, one site.
Only published solutions of published sites are ever read here."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .db import sql_literal
from .errors import NotFound
from .values import SolutionFilters


def solution_filter_sql(filters: SolutionFilters, alias: str = "s",
                        written_choices: bool = False) -> tuple[str, dict]:
    """SQL conditions (joined by AND, always valid) and their bind parameters for a solution table alias.
    Visibility is part of it: only published solutions are ever read by the public side.
    With `written_choices`, the types, voies and formulas chosen are written in the statement instead of bound
    (codes of the taxonomy, checked by mapservice.params, and quoted): a statement prepared for each set of
    choices is then planned once, for what they select (a rare type is found another way than a common one)."""
    conditions = [f"{alias}.status = 'published'"]
    binds: dict = {}
    for column, bind, chosen in (("type", "f_types", filters.types), ("voie", "f_voies", filters.voies),
                                 ("service_civique_formula", "f_formulas", filters.formulas)):
        if not chosen:
            continue
        if written_choices:
            conditions.append(f"{alias}.{column} = ANY(ARRAY[{', '.join(sql_literal(c) for c in chosen)}]::text[])")
        else:
            conditions.append(f"{alias}.{column} = ANY(:{bind})")
            binds[bind] = list(chosen)
    if filters.level:
        conditions.append(f"solution_text_key({alias}.level) = solution_text_key(:f_level)")
        binds["f_level"] = filters.level
    if filters.domain:
        conditions.append(f"solution_text_key({alias}.domain) ILIKE '%' || solution_text_key(:f_domain) || '%'")
        binds["f_domain"] = filters.domain.replace("%", r"\%").replace("_", r"\_")
    if filters.has_vacancy:
        conditions.append(f"{alias}.vacant_places > 0")
    if filters.open_to_minors:
        conditions.append(f"({alias}.min_age IS NULL OR {alias}.min_age < 18)")
    if filters.starts_before:
        conditions.append(f"({alias}.start_date IS NULL OR {alias}.start_date <= :f_starts_before)")
        binds["f_starts_before"] = filters.starts_before
    return " AND ".join(conditions), binds


# What describes an offer, in every list and detail (alias s: the solution).
OFFER_COLUMNS = """s.id, s.type, s.title, s.voie, s.level, s.domain, s.capacity, s.vacant_places, s.start_date,
       s.service_civique_formula, s.min_age, s.max_age, s.last_checked_at"""

SOLUTION_BY_ID = text(f"""
SELECT {OFFER_COLUMNS}, s.description, s.end_date, s.hours_per_week, s.school_hours_per_week,
       s.eligibility, s.how_to_apply, s.is_example,
       site.id AS site_id, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat
FROM solution s JOIN site ON site.id = s.site_id
WHERE s.id = :id AND s.status = 'published' AND site.status = 'published'
""")

SITE_BY_ID = text("""
SELECT site.id, site.name, site.kind, site.address, site.postcode, site.phone, site.email, site.website,
       site.opening_hours, site.accessibility, site.position_precision, site.is_example, site.last_checked_at,
       c.code AS commune_code, c.name AS commune_name, c.departement_code, c.academie_code,
       ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat
FROM site JOIN commune c ON c.code = site.commune_code
WHERE site.id = :id AND site.status = 'published'
""")

SOLUTIONS_OF_SITE = text(f"""
SELECT {OFFER_COLUMNS}
FROM solution s WHERE s.site_id = :id AND s.status = 'published' ORDER BY s.type, s.title, s.id
""")


def solution_by_id(conn: Connection, solution_id: int) -> dict:
    """One published solution with its published site, or NotFound."""
    row = conn.execute(SOLUTION_BY_ID, {"id": solution_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucune solution publiée n'a l'identifiant {solution_id}.", parameter="id")
    return {**row, "site": site_by_id(conn, row["site_id"], with_solutions=False)}


def site_by_id(conn: Connection, site_id: int, with_solutions: bool = True) -> dict:
    """One published site (with its published solutions), or NotFound."""
    row = conn.execute(SITE_BY_ID, {"id": site_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucun lieu publié n'a l'identifiant {site_id}.", parameter="id")
    site = dict(row)
    if with_solutions:
        site["solutions"] = [dict(r) for r in conn.execute(SOLUTIONS_OF_SITE, {"id": site_id}).mappings()]
    return site
