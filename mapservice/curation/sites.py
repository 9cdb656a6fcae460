"""Sites: create and edit (the position checked against the claimed commune), status, the review of partners'
proposals. Each save carries the version it started from: a stale one is refused with what changed since."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import history
from ..accounts import permissions
from ..accounts.values import PARTNER, Action, Actor, Ref
from ..errors import GeocoderUnavailable, InvalidParameter, NotFound, StaleVersion
from ..geocoding import Geocoder
from ..values import Point
from .inputs import SITE_FIELDS, SiteInput

# A site within this distance with a similar name may be the same place entered twice.
DUPLICATE_METRES = 50
DUPLICATE_SIMILARITY = 0.4

SITE_COLUMNS = """site.id, site.name, site.kind, site.commune_code, site.address, site.postcode,
       ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat, site.phone, site.email, site.website, site.accessibility,
       site.opening_hours, site.status, site.version, site.position_precision, site.last_checked_at,
       site.review_requested_at, site.is_example, site.updated_at, site.updated_by,
       c.name AS commune_name, c.departement_code"""
SNAPSHOT_FIELDS = (*SITE_FIELDS, "position_precision", "status", "version")


@dataclass(frozen=True)
class Placed:
    """Where a site goes, and what the check found worth telling."""

    point: Point
    precision: str  # address or commune
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Saved:
    id: int
    version: int
    warnings: tuple[str, ...] = field(default=())


def site(conn: Connection, actor: Actor, site_id: int) -> dict:
    """One site of the actor's territory, with its solutions (any status)."""
    permissions.authorize(conn, actor, Action.READ, Ref("site", site_id))
    return site_row(conn, site_id)


def site_row(conn: Connection, site_id: int) -> dict:
    row = conn.execute(text(f"SELECT {SITE_COLUMNS} FROM site JOIN commune c ON c.code = site.commune_code "
                            "WHERE site.id = :id"), {"id": site_id}).mappings().first()
    if row is None:
        raise NotFound(f"Aucun lieu n'a l'identifiant {site_id}.", parameter="id")
    found = dict(row)
    found["solutions"] = [dict(r) for r in conn.execute(text("""
        SELECT id, type, title, status, vacant_places, capacity, version, last_checked_at FROM solution
        WHERE site_id = :id ORDER BY status = 'archived', title, id"""), {"id": site_id}).mappings()]
    return found


def snapshot(row: dict) -> dict:
    return {k: row[k] for k in SNAPSHOT_FIELDS}


def town_hall(conn: Connection, commune_code: str) -> Point:
    row = conn.execute(text("SELECT ST_X(town_hall) AS lon, ST_Y(town_hall) AS lat FROM commune WHERE code = :c"),
                       {"c": commune_code}).first()
    if row is None:
        raise InvalidParameter(f"Aucune commune n'a le code INSEE « {commune_code} ».", parameter="commune_code")
    return Point(lon=row.lon, lat=row.lat)


INSIDE = text("SELECT ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) FROM commune WHERE code = :c")
COMMUNE_NAME_AT = text("""SELECT c.code, c.name FROM commune c
WHERE ST_Intersects(c.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY c.kind = 'COM' DESC LIMIT 1""")


def place(conn: Connection, data: SiteInput, geocoder: Geocoder | None) -> Placed:
    """The site's position: the one given (checked inside the claimed commune), else the geocoded address
    when it falls in the commune, else the commune's town hall."""
    hall = town_hall(conn, data.commune_code)
    if data.lon is not None:
        point = Point(lon=data.lon, lat=data.lat)
        if not conn.scalar(INSIDE, {"lon": point.lon, "lat": point.lat, "c": data.commune_code}):
            name = conn.scalar(text("SELECT name FROM commune WHERE code = :c"), {"c": data.commune_code})
            if conn.scalar(INSIDE, {"lon": point.lat, "lat": point.lon, "c": data.commune_code}):
                raise InvalidParameter(
                    f"Cette position n'est pas à {name} ({data.commune_code}), mais la latitude et la longitude "
                    f"semblent inversées : essayez latitude {point.lon}, longitude {point.lat}.",
                    parameter="lat", suggestion={"lat": point.lon, "lon": point.lat})
            elsewhere = conn.execute(COMMUNE_NAME_AT, {"lon": point.lon, "lat": point.lat}).first()
            where = f"à {elsewhere.name} ({elsewhere.code})" if elsewhere else "hors de France"
            raise InvalidParameter(f"Cette position est {where}, pas à {name} ({data.commune_code}) : déplacez le "
                                   "repère dans la commune, ou corrigez la commune.", parameter="lat")
        same_as_hall = abs(point.lon - hall.lon) < 1e-7 and abs(point.lat - hall.lat) < 1e-7
        return Placed(point, "commune" if same_as_hall else "address")
    if geocoder is not None and data.address:
        try:
            found = geocoder.search(data.address, postcode=data.postcode, citycode=data.commune_code)
        except GeocoderUnavailable as exc:
            return Placed(hall, "commune", (exc.detail, "Position : la mairie de la commune en attendant."))
        if found is not None and found.is_address and conn.scalar(
                INSIDE, {"lon": found.point.lon, "lat": found.point.lat, "c": data.commune_code}):
            return Placed(found.point, "address", (f"Position trouvée pour l'adresse « {found.label} ».",))
    return Placed(hall, "commune", ("Position : la mairie de la commune ; déplacez le repère sur la carte pour "
                                    "placer le lieu exactement.",))


DUPLICATES = text(f"""
SELECT site.id, site.name FROM site
WHERE site.id <> coalesce(:id, 0) AND site.status <> 'archived'
  AND ST_DWithin(site.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, {DUPLICATE_METRES})
  AND similarity(lower(unaccent(site.name)), lower(unaccent(:name))) >= {DUPLICATE_SIMILARITY}
ORDER BY site.id LIMIT 5
""")


def possible_duplicates(conn: Connection, name: str, point: Point, site_id: int | None = None) -> tuple[str, ...]:
    rows = conn.execute(DUPLICATES, {"id": site_id, "lon": point.lon, "lat": point.lat, "name": name}).all()
    return tuple(f"Doublon possible : « {r.name} » (lieu {r.id}) est à moins de {DUPLICATE_METRES} m avec un nom "
                 "proche." for r in rows)


def _values(data: SiteInput, placed: Placed) -> dict:
    values = asdict(data)
    values.update(lon=placed.point.lon, lat=placed.point.lat, position_precision=placed.precision)
    return values


def create_site(conn: Connection, actor: Actor, data: SiteInput, geocoder: Geocoder | None = None) -> Saved:
    """A new site as a draft. A partner's proposal waits for review, and the partner is granted the site."""
    permissions.authorize(conn, actor, Action.CREATE_SITE, Ref("commune", data.commune_code))
    placed = place(conn, data, geocoder)
    values = _values(data, placed)
    site_id = conn.execute(text("""
        INSERT INTO site (name, kind, commune_code, address, postcode, geom, position_precision, phone, email,
                          website, accessibility, opening_hours, status, source, created_by, updated_by,
                          review_requested_at)
        VALUES (:name, :kind, :commune_code, :address, :postcode, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                :position_precision, :phone, :email, :website, :accessibility, :opening_hours, 'draft', 'manual',
                :by, :by, CASE WHEN :proposal THEN now() END)
        RETURNING id"""), {**values, "by": actor.email, "proposal": actor.role == PARTNER}).scalar()
    if actor.role == PARTNER:
        conn.execute(text("INSERT INTO account_scope (account_id, site_id) VALUES (:a, :s)"),
                     {"a": actor.account_id, "s": site_id})
    history.record(conn, actor, "site", site_id, "create", None, snapshot(site_row(conn, site_id)))
    return Saved(site_id, 1, placed.warnings + possible_duplicates(conn, data.name, placed.point, site_id))


def stale(conn: Connection, entity: str, record_id: int, started_from: int, current: dict) -> StaleVersion:
    """The refusal of a save that started from an old version: which fields changed since, by whom."""
    since = history.changed_since(conn, entity, record_id, started_from)
    changed = list(dict.fromkeys(f for c in since for f in c["fields"]))
    who = ", ".join(dict.fromkeys(c["actor"] for c in since)) or "quelqu'un"
    return StaleVersion(
        f"Modifié entre-temps par {who} (champs : {', '.join(changed) or 'statut'}) : rien n'a été écrasé. "
        "Reprenez votre modification sur la version actuelle.",
        parameter="version", current_version=current["version"], changed_fields=changed,
        current={k: history.plain(current[k]) for k in changed if k in current})


def update_site(conn: Connection, actor: Actor, site_id: int, started_from: int, data: SiteInput,
                geocoder: Geocoder | None = None, *, action: str = "update", reverts: int | None = None) -> Saved:
    """Saves every field; the actor must be allowed on the site where it is and where it goes."""
    permissions.authorize(conn, actor, Action.EDIT_SITE, Ref("site", site_id))
    before = site_row(conn, site_id)
    if before["commune_code"] != data.commune_code:
        permissions.authorize(conn, actor, Action.EDIT_SITE, Ref("commune", data.commune_code))
    if before["version"] != started_from:
        raise stale(conn, "site", site_id, started_from, before)
    placed = place(conn, data, geocoder) if data.lon is not None or data.commune_code != before["commune_code"] \
        else place(conn, SiteInput(**{**asdict(data), "lon": before["lon"], "lat": before["lat"]}), None)
    values = _values(data, placed)
    updated = conn.execute(text("""
        UPDATE site SET name = :name, kind = :kind, commune_code = :commune_code, address = :address,
               postcode = :postcode, geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
               position_precision = :position_precision, phone = :phone, email = :email, website = :website,
               accessibility = :accessibility, opening_hours = :opening_hours,
               version = version + 1, updated_at = now(), updated_by = :by
        WHERE id = :id AND version = :version RETURNING version"""),
        {**values, "id": site_id, "version": started_from, "by": actor.email}).scalar()
    if updated is None:  # saved by someone else between our read and our write
        raise stale(conn, "site", site_id, started_from, site_row(conn, site_id))
    history.record(conn, actor, "site", site_id, action, snapshot(before), snapshot(site_row(conn, site_id)),
                   reverts=reverts)
    return Saved(site_id, updated, placed.warnings + possible_duplicates(conn, data.name, placed.point, site_id))


def set_site_status(conn: Connection, actor: Actor, site_id: int, started_from: int, status: str) -> Saved:
    """Publish, archive or take back to draft; publishing a proposal takes it out of the review queue."""
    permissions.authorize(conn, actor, Action.PUBLISH_SITE, Ref("site", site_id))
    before = site_row(conn, site_id)
    updated = conn.execute(text("""
        UPDATE site SET status = :status, version = version + 1, updated_at = now(), updated_by = :by,
               review_requested_at = CASE WHEN :status = 'draft' THEN review_requested_at END
        WHERE id = :id AND version = :version RETURNING version"""),
        {"status": status, "id": site_id, "version": started_from, "by": actor.email}).scalar()
    if updated is None:
        raise stale(conn, "site", site_id, started_from, before)
    history.record(conn, actor, "site", site_id, "status", snapshot(before), snapshot(site_row(conn, site_id)))
    return Saved(site_id, updated)


def review_queue(conn: Connection, actor: Actor) -> list[dict]:
    """Partners' proposed sites of the actor's territory, oldest first."""
    condition, binds = permissions.territory_filter(actor)
    return [dict(r) for r in conn.execute(text(f"""
        SELECT site.id, site.name, c.name AS commune_name, site.created_by, site.review_requested_at, site.version
        FROM site JOIN commune c ON c.code = site.commune_code
        WHERE site.review_requested_at IS NOT NULL AND site.status = 'draft' AND {condition}
        ORDER BY site.review_requested_at"""), binds).mappings()]


def site_search(query: str | None) -> tuple[str, dict]:
    """SQL (to add to a WHERE on `site` and its commune `c`) and binds: the sites whose name or commune's name
    holds `query`, or in the commune of that INSEE code; every site without a query."""
    if not query:
        return "", {}
    return ("AND (site.name ILIKE :q OR c.name ILIKE :q OR site.commune_code = :code)",
            {"q": f"%{query}%", "code": query})


def sites(conn: Connection, actor: Actor, query: str | None = None, limit: int | None = None) -> list[dict]:
    """The actor's sites, by name: all of them, or the first `limit` (those `site_search` finds when `query` is
    given)."""
    condition, binds = permissions.territory_filter(actor)
    search, searched = site_search(query)
    binds = {**binds, **searched}
    return [dict(r) for r in conn.execute(text(f"""
        SELECT site.id, site.name, site.kind, site.status, c.name AS commune_name, site.commune_code,
               site.last_checked_at, site.is_example
        FROM site JOIN commune c ON c.code = site.commune_code
        WHERE {condition} {search} ORDER BY site.name, site.id LIMIT :limit"""),
        {**binds, "limit": limit}).mappings()]
