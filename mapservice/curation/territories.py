"""Territories: the PSAD platforms and their FOQUALE network, edited by the académie administrators — name,
contacts, and the perimeter as a set of communes (a list, a CSV of INSEE codes, or picked on the map). "Who covers
my area" and the curators' scopes read the perimeter directly, so they follow at once."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import history
from ..accounts import permissions
from ..accounts.values import Action, Actor, Ref
from ..errors import InvalidParameter
from ..links import checked_link
from .sites import stale

INSEE = re.compile(r"^(\d[\dAB]\d{3})$")


@dataclass(frozen=True)
class PlatformInput:
    name: str
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    address: str | None = None
    network_name: str | None = None
    network_contact_name: str | None = None
    network_phone: str | None = None
    network_email: str | None = None
    communes: tuple[str, ...] | None = None  # None: the perimeter is left as it is


def commune_codes(value: str) -> tuple[str, ...]:
    """INSEE codes from a list (commas, spaces or new lines) or a CSV whose first column holds them (a header
    line is skipped)."""
    codes = []
    for number, line in enumerate(value.splitlines()):
        cells = next(csv.reader(io.StringIO(line.replace(";", ","))), [])
        tokens = [cells[0]] if len(cells) > 1 and not INSEE.match(cells[1].strip().upper()) else \
            [t for c in cells for t in c.split()]
        for token in (t.strip().upper() for t in tokens if t.strip()):
            if INSEE.match(token):
                codes.append(token)
            elif number > 0 or codes:
                raise InvalidParameter(f"« {token[:20]} » n'est pas un code INSEE de commune.", parameter="communes")
    return tuple(dict.fromkeys(codes))


PLATFORM = text("""
SELECT p.id, p.name, p.departement_code, p.contact_name, p.phone, p.email, p.website, p.address, p.version,
       p.is_example, f.id AS network_id, f.name AS network_name, f.contact_name AS network_contact_name,
       f.phone AS network_phone, f.email AS network_email,
       ARRAY(SELECT commune_code FROM psad_platform_commune WHERE platform_id = p.id ORDER BY commune_code) AS communes
FROM psad_platform p LEFT JOIN foquale_network f ON f.platform_id = p.id WHERE p.id = :id
""")
SNAPSHOT = ("name", "contact_name", "phone", "email", "website", "address", "network_name", "network_contact_name",
            "network_phone", "network_email", "communes", "version")


def platform(conn: Connection, actor: Actor, platform_id: int) -> dict:
    permissions.authorize(conn, actor, Action.EDIT_TERRITORY, Ref("platform", platform_id))
    return dict(conn.execute(PLATFORM, {"id": platform_id}).mappings().one())


def platforms(conn: Connection, actor: Actor) -> list[dict]:
    condition = "true" if actor.is_national else "d.academie_code = ANY(:academies)"
    if actor.role not in ("national_admin", "academie_admin"):
        return []
    return [dict(r) for r in conn.execute(text(f"""
        SELECT p.id, p.name, p.departement_code, d.name AS departement_name, p.is_example,
               (SELECT count(*) FROM psad_platform_commune pc WHERE pc.platform_id = p.id) AS communes
        FROM psad_platform p JOIN departement d ON d.code = p.departement_code
        WHERE {condition} ORDER BY p.departement_code, p.name"""), {"academies": list(actor.academies)}).mappings()]


def update_platform(conn: Connection, actor: Actor, platform_id: int, started_from: int, data: PlatformInput) -> int:
    before = platform(conn, actor, platform_id)
    if before["version"] != started_from:
        raise stale(conn, "psad_platform", platform_id, started_from, before)
    website = checked_link(data.website, "website")
    conn.execute(text("""UPDATE psad_platform SET name = :name, contact_name = :contact_name, phone = :phone,
                             email = :email, website = :website, address = :address, is_example = false,
                             version = version + 1, updated_at = now(), updated_by = :by WHERE id = :id"""),
                 {"name": data.name, "contact_name": data.contact_name, "phone": data.phone, "email": data.email,
                  "website": website, "address": data.address, "by": actor.email, "id": platform_id})
    if data.network_name:
        conn.execute(text("""
            INSERT INTO foquale_network (platform_id, name, contact_name, phone, email, status, source, updated_by)
            VALUES (:id, :name, :contact, :phone, :email, 'published', 'manual', :by)
            ON CONFLICT (platform_id) DO UPDATE SET name = :name, contact_name = :contact, phone = :phone,
                email = :email, is_example = false, version = foquale_network.version + 1, updated_at = now(),
                updated_by = :by"""),
            {"id": platform_id, "name": data.network_name, "contact": data.network_contact_name,
             "phone": data.network_phone, "email": data.network_email, "by": actor.email})
    if data.communes is not None:
        set_perimeter(conn, actor, platform_id, before["departement_code"], data.communes)
    after = dict(conn.execute(PLATFORM, {"id": platform_id}).mappings().one())
    history.record(conn, actor, "psad_platform", platform_id, "update", {k: before[k] for k in SNAPSHOT},
                   {k: after[k] for k in SNAPSHOT})
    return after["version"]


def set_perimeter(conn: Connection, actor: Actor, platform_id: int, departement: str, codes: tuple[str, ...]) -> None:
    """The platform covers exactly these communes of its département (taken from another platform if need be)."""
    if not codes:
        raise InvalidParameter("Une plateforme couvre au moins une commune : donnez les codes INSEE de son périmètre.",
                               parameter="communes")
    found = {r.code: r.departement_code for r in conn.execute(
        text("SELECT code, departement_code FROM commune WHERE code = ANY(:codes)"), {"codes": list(codes)})}
    for code in codes:
        if code not in found:
            raise InvalidParameter(f"Aucune commune n'a le code INSEE « {code} ».", parameter="communes")
        permissions.authorize(conn, actor, Action.EDIT_TERRITORY, Ref("commune", code))
        if found[code] != departement:
            raise InvalidParameter(f"La commune {code} n'est pas dans le département {departement} de la plateforme.",
                                   parameter="communes")
    conn.execute(text("DELETE FROM psad_platform_commune WHERE platform_id = :id OR commune_code = ANY(:codes)"),
                 {"id": platform_id, "codes": list(codes)})
    conn.execute(text("INSERT INTO psad_platform_commune (platform_id, commune_code) SELECT :id, unnest(CAST(:codes AS text[]))"),
                 {"id": platform_id, "codes": list(codes)})
