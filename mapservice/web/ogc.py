"""OGC API - Features Part 1 (Core, GeoJSON) over the published catalogue: landing page, conformance,
collections, items (bbox, limit, keyset 'next' links, properties) and one item. Mounted under /api/v1/ogc."""
from __future__ import annotations

from flask import Blueprint, current_app, request, url_for

from .. import ogc, params
from . import features
from .connection import read_db
from .http import with_written_array

bp = Blueprint("ogc", __name__)

JSON = "application/json"
GEOJSON = "application/geo+json"


def _link(endpoint: str, rel: str, media_type: str, title: str | None = None, **values) -> dict:
    link = {"href": url_for(endpoint, _external=True, **values), "rel": rel, "type": media_type}
    if title:
        link["title"] = title
    return link


def _collection(collection_id: str) -> dict:
    described = ogc.collection_or_404(collection_id)
    return {
        "id": collection_id,
        "title": described["title"],
        "description": described["description"],
        "itemType": "feature",
        "crs": [ogc.CRS84],
        "extent": {"spatial": {"bbox": [ogc.FRANCE_EXTENT], "crs": ogc.CRS84}},
        "links": [
            _link("api.ogc.collection", "self", JSON, collectionId=collection_id),
            _link("api.ogc.items", "items", GEOJSON, "Les solutions (GeoJSON)", collectionId=collection_id),
        ],
    }


@bp.get("/")
def landing():
    params.format_only(request.args)
    return {
        "title": "masecondechance — catalogue des solutions de raccrochage",
        "description": "Lieux et solutions pour reprendre une formation, en OGC API - Features (GeoJSON).",
        "links": [
            _link("api.ogc.landing", "self", JSON, "Cette page"),
            _link("api.openapi_document", "service-desc", "application/vnd.oai.openapi+json;version=3.0",
                  "Description OpenAPI"),
            _link("api.api_docs", "service-doc", "text/html", "Documentation"),
            _link("api.ogc.conformance", "conformance", JSON, "Classes de conformité"),
            _link("api.ogc.collections", "data", JSON, "Collections"),
        ],
    }


@bp.get("/conformance")
def conformance():
    params.format_only(request.args)
    return {"conformsTo": ogc.CONFORMANCE}


@bp.get("/collections")
def collections():
    params.format_only(request.args)
    return {"links": [_link("api.ogc.collections", "self", JSON)],
            "collections": [_collection(cid) for cid in ogc.COLLECTIONS]}


@bp.get("/collections/<collectionId>")
def collection(collectionId: str):
    params.format_only(request.args)
    return _collection(collectionId)


@bp.get("/collections/<collectionId>/items")
def items(collectionId: str):
    ogc.collection_or_404(collectionId)
    settings = current_app.config["SETTINGS"].api
    query = params.items(request.args, settings.items_default_limit, settings.items_max_limit,
                         features.SOLUTION_PROPERTY_NAMES)
    rows, more = ogc.items(read_db(), query)
    links = [{"href": request.url, "rel": "self", "type": GEOJSON},
             _link("api.ogc.collection", "collection", JSON, collectionId=collectionId)]
    if more:
        args = {k: v for k, v in request.args.items() if k != "after"}
        args["after"] = params.encode_cursor(rows[-1]["id"])
        links.append(_link("api.ogc.items", "next", GEOJSON, "Page suivante", collectionId=collectionId, **args))
    body = with_written_array("features", b",".join(r["feature"] for r in rows), {
        "type": "FeatureCollection",
        "numberReturned": len(rows),
        "links": links,
    })
    return body, 200, {"Content-Type": GEOJSON}


@bp.get("/collections/<collectionId>/items/<featureId>")
def item(collectionId: str, featureId: str):
    ogc.collection_or_404(collectionId)
    params.format_only(request.args)
    row = ogc.item(read_db(), params.identifier(featureId, "l'objet"))
    feature = features.solution_feature(row)
    feature["links"] = [
        _link("api.ogc.item", "self", GEOJSON, collectionId=collectionId, featureId=featureId),
        _link("api.ogc.collection", "collection", JSON, collectionId=collectionId),
    ]
    return feature, 200, {"Content-Type": GEOJSON}
