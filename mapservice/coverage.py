"""Who covers my area: for a commune, the académie, the PSAD platform and FOQUALE network responsible for it,
and the nearest reception places (CIO, MLDS) where a young person can walk in."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .communes import COMMUNE_AT, COMMUNE_COLUMNS
from .errors import NotFound
from .values import Area, Point

COMMUNE_BY_CODE = text(f"""
SELECT {COMMUNE_COLUMNS}, ST_X(c.town_hall) AS lon, ST_Y(c.town_hall) AS lat
FROM commune c WHERE c.code = :code
""")

COMMUNE_AT_ORIGIN = text(COMMUNE_AT.format(columns=f"{COMMUNE_COLUMNS}, :lon AS lon, :lat AS lat"))

# A city's platform may list the city itself, not its arrondissements: look at both.
RESPONSIBLE = text("""
SELECT d.code AS departement_code, d.name AS departement_name,
       a.code AS academie_code, a.name AS academie_name, r.code AS region_code, r.name AS region_name,
       p.id AS platform_id, p.name AS platform_name, p.contact_name AS platform_contact_name,
       p.phone AS platform_phone, p.email AS platform_email, p.website AS platform_website,
       p.address AS platform_address, p.is_example AS platform_is_example,
       p.last_checked_at AS platform_last_checked_at,
       f.id AS network_id, f.name AS network_name, f.contact_name AS network_contact_name,
       f.phone AS network_phone, f.email AS network_email, f.is_example AS network_is_example,
       f.last_checked_at AS network_last_checked_at
FROM commune c
JOIN departement d ON d.code = c.departement_code
JOIN academie a ON a.code = c.academie_code
JOIN region r ON r.code = a.region_code
LEFT JOIN LATERAL (
    SELECT p.* FROM psad_platform p JOIN psad_platform_commune pc ON pc.platform_id = p.id
    WHERE pc.commune_code IN (c.code, c.parent_code) AND p.status = 'published'
    ORDER BY pc.commune_code = c.code DESC LIMIT 1
) p ON true
LEFT JOIN foquale_network f ON f.platform_id = p.id AND f.status = 'published'
WHERE c.code = :code
""")

# Nearest published site of a kind, by true distance. The geometry index gives the nearest in degrees; no
# site can be nearer on the spheroid than that one's true distance, so a box of that radius (2 % margin)
# holds the answer, which is then ranked on the spheroid.
NEAREST_SITE_OF_KIND = text("""
WITH origin AS (
    SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt
), first AS (
    SELECT ST_Distance(site.geom::geography, origin.pt::geography) * 1.02 + 1 AS metres
    FROM site, origin WHERE site.kind = :kind AND site.status = 'published'
    ORDER BY site.geom <-> origin.pt LIMIT 1
)
SELECT site.id, site.name, site.kind, site.address, site.postcode, site.phone, site.email, site.website,
       site.opening_hours, site.position_precision, site.is_example, site.last_checked_at,
       c.code AS commune_code, c.name AS commune_name, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat,
       ST_Distance(site.geom::geography, origin.pt::geography) AS distance_m
FROM site JOIN commune c ON c.code = site.commune_code, origin, first
WHERE site.kind = :kind AND site.status = 'published'
  AND site.geom && ST_Envelope(ST_Buffer(origin.pt::geography, first.metres)::geometry)
ORDER BY distance_m, site.id
LIMIT 1
""")

RECEPTION_KINDS = ("cio", "mlds")


def who_covers(conn: Connection, origin: Point | Area) -> dict:
    """The commune at the origin and who is responsible for it, with the nearest reception places."""
    if isinstance(origin, Area):
        commune = conn.execute(COMMUNE_BY_CODE, {"code": origin.code}).mappings().first()
        if commune is None:
            raise NotFound(f"Aucune commune n'a le code INSEE '{origin.code}'. Cherchez-la avec "
                           "/api/v1/places?q=… pour obtenir son code.", parameter="commune")
    else:
        commune = conn.execute(COMMUNE_AT_ORIGIN, {"lon": origin.lon, "lat": origin.lat}).mappings().first()
        if commune is None:
            raise NotFound(f"Aucune commune française ne contient la position lat={origin.lat:g}, "
                           f"lon={origin.lon:g} : vérifiez que la latitude et la longitude ne sont pas inversées.",
                           parameter="lat")
    responsible = conn.execute(RESPONSIBLE, {"code": commune["code"]}).mappings().one()
    reception = []
    for kind in RECEPTION_KINDS:
        row = conn.execute(NEAREST_SITE_OF_KIND,
                           {"lon": commune["lon"], "lat": commune["lat"], "kind": kind}).mappings().first()
        if row is not None:
            reception.append(dict(row))
    return {"commune": dict(commune), "responsible": dict(responsible), "reception": reception}
