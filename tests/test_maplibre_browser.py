"""MapLibre GL JS on a page of another origin, as an outside integrator uses the service: our style.json, our
TileJSON and tiles (CORS for the configured origin), our glyphs. Debian's Chromium (WebGL through SwiftShader)
renders it; the features drawn are counted per zoom, and nothing goes wrong in the console.
MapLibre GL JS 4.7.1 (npm) is vendored for this test only (tests/vendor/maplibre-gl/), never served by us."""
from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pytest
from flask import Flask, send_from_directory
from werkzeug.serving import make_server

from .conftest import dispose_app, make_test_app, serving
from .page_browser import CHROMIUM
from .street_archive import build_street_archive

VENDOR = Path(__file__).resolve().parent / "vendor"
# WebGL without a GPU: SwiftShader.
WEBGL_ARGS = ["--headless", "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
              "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update"]
LYON = [4.8357, 45.7640]

PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Intégrateur</title>
<link rel="stylesheet" href="/vendor/maplibre-gl/maplibre-gl.css">
<script src="/vendor/maplibre-gl/maplibre-gl.js"></script><script src="/vendor/pmtiles/pmtiles.js"></script>
</head><body style="margin:0"><div id="map" style="width:900px;height:700px"></div>
<script>
  const protocol = new pmtiles.Protocol();
  maplibregl.addProtocol("pmtiles", protocol.tile);
  window.map = new maplibregl.Map({container: "map", style: "%(style)s", center: [2.35, 46.6], zoom: 5});
</script></body></html>"""


def integrator_site(style_url: str) -> Flask:
    """Another origin: a page of an integrator, with MapLibre from its own files."""
    site = Flask("integrator")

    @site.get("/")
    def page():
        return PAGE % {"style": style_url}

    @site.get("/favicon.ico")
    def favicon():
        return "", 204

    @site.get("/vendor/<path:name>")
    def vendor(name):
        return send_from_directory(VENDOR, name)

    return site


@pytest.fixture(scope="module")
def webgl_browser(playwright_driver):
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=WEBGL_ARGS)
    yield chromium
    chromium.close()


def settle(page) -> None:
    page.wait_for_function("() => window.map && map.loaded() && map.areTilesLoaded()", timeout=30000,
                           polling=100)


def go(page, center: list[float], zoom: int) -> None:
    """Move the map and wait until it has drawn every tile of the new view."""
    page.evaluate(f"""() => new Promise(done => {{
        map.once('idle', () => done(true));
        map.jumpTo({{center: {center}, zoom: {zoom}}});
    }})""")


def rendered(page, layer: str) -> int:
    return page.evaluate(f"() => map.queryRenderedFeatures({{layers: ['{layer}']}}).length")


@contextlib.contextmanager
def integrator_and_service(database_url: str, **overrides):
    """The service (allowing the integrator's origin) and the integrator's page, each on its own port."""
    with socket.socket() as probe:  # the integrator's origin must be known before the service starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    app = make_test_app(database_url, api={"cors_origins": [origin]}, **overrides)
    with serving(app) as service:
        site_server = make_server("127.0.0.1", port, integrator_site(f"{service}/tiles/style.json"), threaded=True)
        thread = threading.Thread(target=site_server.serve_forever, daemon=True)
        thread.start()
        try:
            yield origin, service
        finally:
            site_server.shutdown()
            thread.join(timeout=10)
    dispose_app(app)


@contextlib.contextmanager
def integrator_page(browser, origin: str):
    """The integrator's page in a fresh context, with every request, response and console error recorded."""
    context = browser.new_context(viewport={"width": 900, "height": 700}, locale="fr-FR")
    page = context.new_page()
    page.requests, page.responses, page.errors = [], [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("response", lambda r: page.responses.append((r.url, r.status)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    try:
        page.goto(origin + "/")
        settle(page)
        yield page
    finally:
        context.close()


def test_maplibre_on_another_origin_draws_the_catalogue_and_its_labels(webgl_browser, database_url):
    with integrator_and_service(database_url) as (origin, service), integrator_page(webgl_browser, origin) as page:
        assert "streets" not in page.evaluate("() => map.getStyle().sources")  # none configured
        national = rendered(page, "clusters")
        assert national > 10  # z5: France as clusters
        assert rendered(page, "area-labels") > 0  # région names, drawn with our glyphs

        go(page, LYON, 11)
        assert rendered(page, "clusters") + rendered(page, "sites") > 5  # z11: Lyon, still clustered

        go(page, LYON, 14)
        assert rendered(page, "sites") > 5 and rendered(page, "clusters") == 0  # z14: one symbol per site
        assert rendered(page, "site-names") > 0

    assert page.errors == []
    assert all(url.startswith((origin + "/", service + "/", "blob:", "data:")) for url in page.requests), page.requests
    glyphs = [(url, status) for url, status in page.responses if "/tiles/glyphs/" in url]
    assert glyphs and all(status == 200 for _, status in glyphs)
    tiles = [(url, status) for url, status in page.responses if url.endswith(".mvt")]
    assert tiles and all(status in (200, 204) for _, status in tiles)


def test_maplibre_draws_the_operators_street_basemap_under_the_catalogue(webgl_browser, database_url, engine,
                                                                         tmp_path):
    archive = build_street_archive(engine, tmp_path / "rues.pmtiles")
    with integrator_and_service(database_url, appdata={"street_basemap": str(archive)}) as (origin, service), \
            integrator_page(webgl_browser, origin) as page:
        go(page, LYON, 9)
        assert rendered(page, "streets-earth") > 0
        assert rendered(page, "streets-places") > 0  # commune names, French labels from our glyphs
        assert rendered(page, "clusters") > 0  # the catalogue over it
        assert page.evaluate("() => map.getLayer('regions') === undefined")  # our filled régions give way
    assert page.errors == []
    ranges = [status for url, status in page.responses if url.endswith("/tiles/archives/street-basemap.pmtiles")]
    assert ranges and set(ranges) == {206}
