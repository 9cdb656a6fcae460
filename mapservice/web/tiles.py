"""Vector tiles and their TileJSON 3.0 documents, for MapLibre GL, Leaflet.VectorGrid and the mobile app."""
from __future__ import annotations

import gzip
from urllib.parse import unquote

from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file, url_for

from .. import params, tiles
from ..appdata import archives, style
from .connection import read_db
from .http import allow_origins, revalidated
from ..errors import NotFound

bp = Blueprint("tiles", __name__)
# MapLibre or Leaflet on a page of a configured origin reads the TileJSON, the style and the tiles.
allow_origins(bp)

MVT = "application/vnd.mapbox-vector-tile"
ATTRIBUTION = tiles.ATTRIBUTION


@bp.record_once
def create_cache(state) -> None:
    settings = state.app.config["SETTINGS"]
    databases = state.app.extensions["mapservice.databases"]
    state.app.extensions["mapservice.tile_cache"] = tiles.TileCache(
        settings.tiles.cache_mb * 1024 * 1024, settings.tiles.cluster_max_zoom, databases.connect_for_reads,
        settings.tiles.cache_recheck_s, databases.primary.connect)


def tileset(name: str) -> tiles.Tileset:
    if name not in tiles.TILESETS:
        raise NotFound(f"Jeu de tuiles inconnu : '{name}'. Jeux disponibles : {', '.join(tiles.TILESETS)}.")
    return tiles.TILESETS[name]


def cache_control(response: Response) -> Response:
    max_age = current_app.config["SETTINGS"].tiles.max_age
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age > 0 else "public, no-cache"
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
        # Said explicitly: Flask would call an empty body text/html.
        response = Response(status=204, mimetype=MVT)
    elif request.accept_encodings["gzip"]:
        # The cache holds tiles gzipped once; Flask-Compress leaves a response already encoded alone.
        response = Response(found.gzipped, mimetype=MVT)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(gzip.decompress(found.gzipped), mimetype=MVT)
    # One ETag per representation, as Flask-Compress does ("<etag>:gzip").
    response.set_etag(found.etag + (":gzip" if response.headers.get("Content-Encoding") else ""))
    response.headers["Vary"] = "Accept-Encoding"  # a new response: nothing else varies yet
    response.headers["X-Tile-Cache"] = ("hit" if cache.verified else "stale") if found.cached else "miss"
    cache_control(response)
    return revalidated(response)


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
        "vector_layers": ts.layers_as_cut(current_app.config["SETTINGS"].tiles.cluster_max_zoom),
    }
    if not query:
        # The same tiles in one PMTiles archive per area, for clients that read it with range requests.
        body["pmtiles"] = archive_links(ts.name)
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
                      "tilejson": url_for("tiles.tilejson", name=ts.name, _external=True),
                      "pmtiles": archive_links(ts.name)}
                     for ts in tiles.TILESETS.values()],
        "style": url_for("tiles.style_document", _external=True),
        "street_basemap": street_basemap_url(),
        "raster_basemap": raster,
    }


# -- archives, style, glyphs -------------------------------------------------------------------------------

GLYPHS = Path(__file__).resolve().parent.parent.parent / "static" / "glyphs"
STREET_ARCHIVE = "street-basemap"


def archive_directory() -> Path:
    settings = current_app.config["SETTINGS"]
    return settings.appdata.resolved_archive_dir(settings.database.resolved_data_dir)


def archive_url(name: str) -> str:
    public = current_app.config["SETTINGS"].appdata.archive_public_url
    if public:
        return public.rstrip("/") + f"/{name}.pmtiles"
    return url_for("tiles.archive", name=name, _external=True)


def archive_links(tileset_name: str) -> list[dict]:
    return [{"area": {"kind": a.area.kind, "code": a.area.code}, "url": archive_url(a.name), "size": a.size,
             "built_at": a.built_at, "cursor": str(a.cursor), "maxzoom": a.maxzoom}
            for a in archives.built(archive_directory()) if a.tileset == tileset_name]


def street_basemap_url() -> str | None:
    """The operator's street basemap archive: its URL, or ours when it is a local file we serve."""
    configured = current_app.config["SETTINGS"].appdata.street_basemap
    if not configured:
        return None
    if configured.startswith(("http://", "https://")):
        return configured
    return url_for("tiles.archive", name=STREET_ARCHIVE, _external=True)


@bp.get("/archives/<name>.pmtiles")
def archive(name: str):
    """A PMTiles archive, with range requests (HTTP 206) as the pmtiles readers ask for them."""
    configured = current_app.config["SETTINGS"].appdata.street_basemap
    if name == STREET_ARCHIVE and configured and not configured.startswith(("http://", "https://")):
        path = Path(configured)
    else:
        found = archives.find(archive_directory(), name)
        if found is None:
            raise NotFound(f"Aucune archive de tuiles '{name}'. La liste est dans /tiles/ (clé « archives »).")
        path = found.path
    response = send_file(path, mimetype="application/vnd.pmtiles", conditional=True, etag=True, max_age=None)
    response.cache_control.public = True
    response.cache_control.no_cache = True  # rebuilt in place: clients revalidate (ETag)
    return response


@bp.get("/style.json")
def style_document():
    params.known_only(request.args, ())
    settings = current_app.config["SETTINGS"]
    glyphs = unquote(url_for("tiles.glyphs", fontstack="{fontstack}", glyph_range="{range}", _external=True))
    body = style.style({name: url_for("tiles.tilejson", name=name, _external=True) for name in tiles.TILESETS},
                       glyphs, settings.tiles.cluster_max_zoom, street_basemap_url(),
                       settings.appdata.street_basemap_attribution)
    response = current_app.json.response(body)
    response.add_etag()
    cache_control(response)
    return response.make_conditional(request)


@bp.get("/glyphs/<fontstack>/<glyph_range>.pbf")
def glyphs(fontstack: str, glyph_range: str):
    """Font ranges as signed-distance-field PBF (generated by static/glyphs/build.sh). A stack of several
    fonts is answered with the first we have: Noto Sans holds every character of French names."""
    for font in fontstack.split(","):
        path = GLYPHS / font.strip() / f"{glyph_range}.pbf"
        if font.strip() and "/" not in font and ".." not in font and path.resolve().parent.parent == GLYPHS \
                and path.is_file():
            response = send_file(path, mimetype="application/x-protobuf", conditional=True, etag=True, max_age=None)
            response.cache_control.public = True
            response.cache_control.max_age = 7 * 24 * 3600
            return response
    raise NotFound(f"Aucun glyphe pour « {fontstack} », plage {glyph_range}. Police disponible : Noto Sans Regular.")
