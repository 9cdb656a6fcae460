"""What a map client of another origin relies on: CORS on the tiles and TileJSON (the tiles' caching left as
it is), absolute URLs naming the host the client asked (behind a proxy), the clusters' real last zoom, a typed
empty tile, the style document and its self-hosted glyphs."""
from __future__ import annotations

import pytest

from .conftest import dispose_app, make_test_app

ORIGIN = "https://integrateur.example.fr"


@pytest.fixture(scope="module")
def cors_client(database_url):
    app = make_test_app(database_url, api={"cors_origins": [ORIGIN]}, server={"proxies": 1})
    yield app.test_client()
    dispose_app(app)


@pytest.mark.parametrize("url", ["/tiles/solutions.json", "/tiles/basemap/5/16/11.mvt", "/tiles/solutions/5/16/11.mvt",
                                 "/tiles/style.json", "/tiles/glyphs/Noto%20Sans%20Regular/0-255.pbf"])
def test_tiles_tilejson_style_and_glyphs_allow_the_configured_origins_only(cors_client, client, url):
    allowed = cors_client.get(url, headers={"Origin": ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in cors_client.get(url, headers={"Origin": "https://autre.example"}).headers
    assert "Access-Control-Allow-Origin" not in client.get(url, headers={"Origin": ORIGIN}).headers  # off by default


def test_cors_leaves_the_tiles_caching_headers_alone(cors_client, client):
    url = "/tiles/solutions/5/16/11.mvt"
    with_cors = cors_client.get(url, headers={"Origin": ORIGIN, "Accept-Encoding": "gzip"})
    without = client.get(url, headers={"Accept-Encoding": "gzip"})
    for header in ("Cache-Control", "ETag", "Content-Encoding"):
        assert with_cors.headers[header] == without.headers[header]
    assert set(with_cors.headers["Vary"].replace(" ", "").split(",")) == {"Accept-Encoding", "Origin"}
    revalidated = cors_client.get(url, headers={"Origin": ORIGIN, "Accept-Encoding": "gzip",
                                                "If-None-Match": with_cors.headers["ETag"]})
    assert revalidated.status_code == 304 and revalidated.headers["Access-Control-Allow-Origin"] == ORIGIN
    preflight = cors_client.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_absolute_urls_name_the_forwarded_host_when_behind_a_proxy(cors_client, client):
    forwarded = {"X-Forwarded-Host": "cartes.masecondechance.fr", "X-Forwarded-Proto": "https"}
    tilejson = cors_client.get("/tiles/solutions.json", headers=forwarded).get_json()
    assert tilejson["tiles"][0].startswith("https://cartes.masecondechance.fr/tiles/solutions/{z}/{x}/{y}.mvt")
    style = cors_client.get("/tiles/style.json", headers=forwarded).get_json()
    assert style["glyphs"] == "https://cartes.masecondechance.fr/tiles/glyphs/{fontstack}/{range}.pbf"
    assert style["sources"]["solutions"]["url"] == "https://cartes.masecondechance.fr/tiles/solutions.json"
    # Without a proxy configured, the header is not trusted (anyone could send it).
    assert client.get("/tiles/solutions.json", headers=forwarded).get_json()["tiles"][0].startswith("http://localhost/")


def test_tilejson_gives_the_clusters_last_zoom_as_cut(client, database_url):
    layers = {layer["id"]: layer for layer in client.get("/tiles/solutions.json").get_json()["vector_layers"]}
    # every cell of 2 sites or more is a cluster up to z11, a dense cell up to z13 (city tiles)
    assert layers["clusters"]["maxzoom"] == 13 and layers["sites"]["maxzoom"] == 16
    app = make_test_app(database_url, tiles={"cluster_max_zoom": 14})
    try:
        layers = {layer["id"]: layer for layer in app.test_client().get("/tiles/solutions.json").get_json()["vector_layers"]}
        assert layers["clusters"]["maxzoom"] == 14
        style = app.test_client().get("/tiles/style.json").get_json()
        assert {layer["id"]: layer.get("maxzoom") for layer in style["layers"]}["clusters"] == 15  # exclusive
    finally:
        dispose_app(app)


def test_an_empty_tile_says_it_is_a_vector_tile(client):
    response = client.get("/tiles/solutions/14/0/0.mvt")
    assert response.status_code == 204 and response.data == b""
    assert response.mimetype == "application/vnd.mapbox-vector-tile"


def test_the_style_draws_our_basemap_and_catalogue_with_french_labels_from_our_glyphs(client):
    style = client.get("/tiles/style.json").get_json()
    assert style["version"] == 8
    assert set(style["sources"]) == {"basemap", "solutions"}  # no street basemap configured
    ids = [layer["id"] for layer in style["layers"]]
    assert ids.index("regions") < ids.index("clusters") < ids.index("sites")
    fonts = {font for layer in style["layers"] for font in layer.get("layout", {}).get("text-font", [])}
    assert fonts == {"Noto Sans Regular"}
    glyph = client.get(style["glyphs"].replace("http://localhost", "").replace("{fontstack}", "Noto Sans Regular")
                       .replace("{range}", "0-255"))
    assert glyph.status_code == 200 and glyph.mimetype == "application/x-protobuf" and len(glyph.data) > 10000
    # A font stack is answered with the first font we have.
    assert client.get("/tiles/glyphs/Open%20Sans,Noto%20Sans%20Regular/0-255.pbf").data == glyph.data


@pytest.mark.parametrize("url", ["/tiles/glyphs/Arial/0-255.pbf", "/tiles/glyphs/Noto%20Sans%20Regular/1-2.pbf",
                                 "/tiles/glyphs/..%2F..%2Fmapservice/0-255.pbf"])
def test_unknown_glyphs_are_404(client, url):
    response = client.get(url)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
