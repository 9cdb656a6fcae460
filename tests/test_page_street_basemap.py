"""The public page with the operator's street basemap: Leaflet draws it (protomaps-leaflet, vendored and served
by us) under our outlines and the catalogue, reading the archive with range requests from our own origin."""
from __future__ import annotations

import pytest

from .conftest import dispose_app, make_test_app, serving
from .page_browser import DESKTOP, browser  # noqa: F401 (the session's Chromium)
from .street_archive import build_street_archive

LYON_PAGE = "/?commune=69123"


@pytest.fixture(scope="module")
def street_server(database_url, engine, tmp_path_factory):
    archive = build_street_archive(engine, tmp_path_factory.mktemp("streets") / "rues.pmtiles", maxzoom=10)
    app = make_test_app(database_url, appdata={"street_basemap": str(archive)})
    with serving(app) as url:
        yield url
    dispose_app(app)


# Non-transparent pixels in the street basemap's canvases.
DRAWN_PIXELS = """() => Object.values(window.streetBasemap._tiles).reduce((sum, tile) => {
    const canvas = tile.el;
    if (!canvas.getContext) return sum;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return sum + n;
}, 0)"""


def test_the_page_draws_the_street_basemap_under_the_catalogue(browser, street_server):  # noqa: F811
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = context.new_page()
    responses, errors = [], []
    page.on("response", lambda r: responses.append((r.url, r.status)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(street_server + LYON_PAGE)
        page.wait_for_function("() => window.streetBasemap && window.streetBasemap._map", timeout=15000)
        # protomaps-leaflet paints a tile's canvas after the tile counts as loaded: wait for the paint itself.
        page.wait_for_function(f"() => ({DRAWN_PIXELS})() > 1000", timeout=15000, polling=100)
        # Our catalogue is drawn over it, and the régions are no longer filled.
        assert page.evaluate("() => window.map_carte.hasLayer(window.vector_grid_protobuf_solutions)")
        assert page.evaluate("() => window.mapStyles.basemap.regions.fill") is False
    finally:
        context.close()
    assert errors == []
    archive = [status for url, status in responses if url.endswith("/tiles/archives/street-basemap.pmtiles")]
    assert archive and set(archive) == {206}
    assert all(url.startswith((street_server + "/", "data:", "blob:")) for url, _ in responses)


def test_without_a_street_basemap_the_page_loads_no_street_code(client):
    html = client.get("/").get_data(as_text=True)
    assert "protomaps-leaflet" not in html and "data-street-basemap" not in html
    assert client.get("/tiles/").get_json()["street_basemap"] is None
