"""Rows -> GeoJSON (RFC 7946: WGS84, [lon, lat]). The property names are a contract with the app developers:
they are documented in mapservice/openapi.yaml and checked against it by the tests."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from ..links import safe_link
from ..taxonomy import SERVICE_CIVIQUE_FORMULAS, SITE_KINDS, SOLUTION_TYPES, VOIES


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def rounded(value: float, decimals: int) -> float:
    """`value` to `decimals` decimals: its shortest decimal form (repr, as PostgreSQL prints it too), half away from
    zero. PostgreSQL rounds the same way where it writes the features (mapservice.feature_sql.rounded); Python's
    round() works on the binary value and would differ from it at some halves."""
    # + 0.0: no "-0.0" (PostgreSQL's numeric has no negative zero)
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)) + 0.0


def _point(row: dict) -> dict:
    return {"type": "Point", "coordinates": [rounded(row["lon"], 6), rounded(row["lat"], 6)]}


def _offer(row: dict) -> dict:
    """The fields that describe the offer itself, in lists and in the detail alike."""
    return {
        "id": row["id"],
        "type": row["type"],
        "type_label": SOLUTION_TYPES[row["type"]],
        "title": row["title"],
        "voie": row["voie"],
        "voie_label": VOIES.get(row["voie"]),
        "level": row["level"],
        "domain": row["domain"],
        "capacity": row["capacity"],
        "vacant_places": row["vacant_places"],
        "start_date": _iso(row["start_date"]),
        "service_civique_formula": row["service_civique_formula"],
        "service_civique_formula_label": SERVICE_CIVIQUE_FORMULAS.get(row["service_civique_formula"]),
        "min_age": row["min_age"],
        "max_age": row["max_age"],
    }


def solution_properties(row: dict) -> dict:
    """What a list of solutions shows (OGC items; PostgreSQL writes the same for the nearest search:
    mapservice.feature_sql)."""
    return {
        **_offer(row),
        "site_id": row["site_id"],
        "site_name": row["site_name"],
        "site_kind": row["site_kind"],
        "address": row["address"],
        "postcode": row["postcode"],
        "commune_code": row["commune_code"],
        "commune_name": row["commune_name"],
        "position_precision": row["position_precision"],
        "last_checked_at": _iso(row["last_checked_at"]),
        "is_example": row["is_example"],
    }


SOLUTION_PROPERTY_NAMES = (
    "id", "type", "type_label", "title", "voie", "voie_label", "level", "domain", "capacity", "vacant_places",
    "start_date", "service_civique_formula", "service_civique_formula_label", "min_age", "max_age", "site_id",
    "site_name", "site_kind", "address", "postcode", "commune_code", "commune_name", "position_precision",
    "last_checked_at", "is_example")


def solution_feature(row: dict) -> dict:
    return {"type": "Feature", "id": row["id"], "geometry": _point(row), "properties": solution_properties(row)}


def site_properties(site: dict) -> dict:
    return {
        "id": site["id"],
        "name": site["name"],
        "kind": site["kind"],
        "kind_label": SITE_KINDS[site["kind"]],
        "address": site["address"],
        "postcode": site["postcode"],
        "commune_code": site["commune_code"],
        "commune_name": site["commune_name"],
        "departement_code": site["departement_code"],
        "academie_code": site["academie_code"],
        "contact": {"phone": site["phone"], "email": site["email"], "website": safe_link(site["website"])},
        "opening_hours": site["opening_hours"],
        "accessibility": site["accessibility"],
        "position_precision": site["position_precision"],
        "last_checked_at": _iso(site["last_checked_at"]),
        "is_example": site["is_example"],
    }


def solution_detail_feature(row: dict) -> dict:
    """Everything a young person needs about one solution, its place included."""
    site = row["site"]
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": _point(row),
        "properties": {
            **_offer(row),
            "description": row["description"],
            "end_date": _iso(row["end_date"]),
            "hours_per_week": row["hours_per_week"],
            "school_hours_per_week": row["school_hours_per_week"],
            "eligibility": row["eligibility"],
            "how_to_apply": row["how_to_apply"],
            "last_checked_at": _iso(row["last_checked_at"]),
            "is_example": row["is_example"],
            "site": site_properties(site),
        },
    }


def site_feature(site: dict) -> dict:
    return {
        "type": "Feature",
        "id": site["id"],
        "geometry": _point(site),
        "properties": {
            **site_properties(site),
            "solutions": [{
                "id": s["id"], "type": s["type"], "type_label": SOLUTION_TYPES[s["type"]], "title": s["title"],
                "voie": s["voie"], "level": s["level"], "domain": s["domain"], "capacity": s["capacity"],
                "vacant_places": s["vacant_places"], "start_date": _iso(s["start_date"]),
                "service_civique_formula": s["service_civique_formula"], "min_age": s["min_age"],
                "max_age": s["max_age"], "last_checked_at": _iso(s["last_checked_at"]),
            } for s in site["solutions"]],
        },
    }


PLACE_LABELS = {"commune": "{name} ({departement_code})", "postcode": "{code} {name}",
                "departement": "{name} ({code})", "region": "{name} (région)"}


def place_feature(row: dict) -> dict:
    kind = row["kind"]
    feature = {
        "type": "Feature",
        "id": f"{kind}:{row['code']}",
        "geometry": _point(row),
        "properties": {
            "kind": kind,
            "is_arrondissement": row["commune_kind"] == "ARM",
            "code": row["code"],
            "name": row["name"],
            "label": PLACE_LABELS[kind].format(**row),
            "postcodes": row["postcodes"] or [],
            "departement_code": row["departement_code"],
            "departement_name": row["departement_name"],
            "population": row["population"],
            "communes": row["communes"],
            # The nearest search from this place, ready to call.
            "nearest_query": f"{kind}={row['code']}",
        },
    }
    if row["west"] is not None:
        feature["bbox"] = [round(row[k], 6) for k in ("west", "south", "east", "north")]
    return feature


def coverage_document(found: dict) -> dict:
    commune, resp = found["commune"], found["responsible"]
    platform = network = None
    if resp["platform_id"] is not None:
        platform = {
            "id": resp["platform_id"], "name": resp["platform_name"],
            "contact": {"name": resp["platform_contact_name"], "phone": resp["platform_phone"],
                        "email": resp["platform_email"], "website": safe_link(resp["platform_website"]),
                        "address": resp["platform_address"]},
            "last_checked_at": _iso(resp["platform_last_checked_at"]), "is_example": resp["platform_is_example"],
        }
    if resp["network_id"] is not None:
        network = {
            "id": resp["network_id"], "name": resp["network_name"],
            "contact": {"name": resp["network_contact_name"], "phone": resp["network_phone"],
                        "email": resp["network_email"]},
            "last_checked_at": _iso(resp["network_last_checked_at"]), "is_example": resp["network_is_example"],
        }
    return {
        "commune": {"code": commune["code"], "name": commune["name"], "is_arrondissement": commune["kind"] == "ARM"},
        "departement": {"code": resp["departement_code"], "name": resp["departement_name"]},
        "academie": {"code": resp["academie_code"], "name": resp["academie_name"]},
        "region": {"code": resp["region_code"], "name": resp["region_name"]},
        "psad_platform": platform,
        "foquale_network": network,
        "reception": {
            "type": "FeatureCollection",
            "features": [{
                "type": "Feature", "id": r["id"], "geometry": _point(r),
                "properties": {
                    "id": r["id"], "name": r["name"], "kind": r["kind"], "kind_label": SITE_KINDS[r["kind"]],
                    "address": r["address"], "postcode": r["postcode"], "commune_code": r["commune_code"],
                    "commune_name": r["commune_name"],
                    "contact": {"phone": r["phone"], "email": r["email"], "website": safe_link(r["website"])},
                    "opening_hours": r["opening_hours"], "position_precision": r["position_precision"],
                    "last_checked_at": _iso(r["last_checked_at"]), "is_example": r["is_example"],
                    "distance_km": round(r["distance_m"] / 1000, 3),
                },
            } for r in found["reception"]],
        },
    }
