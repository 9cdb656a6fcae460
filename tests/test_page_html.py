"""The map page as served: every asset is ours, a strict Content-Security-Policy, French, the filters of the
catalogue, the help line from the settings, and cacheable assets."""
import re


from mapservice import create_app
from mapservice.taxonomy import SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES
from mapservice.web import leaflet_map, map_page

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


def external_urls(text: str) -> list[str]:
    return URL.findall(text)


def test_the_page_and_the_map_script_name_no_other_host(client):
    html = client.get("/").get_data(as_text=True)
    assert external_urls(html) == []
    script = client.get(re.search(r'src="(/carte\.js\?v=\w+)"', html).group(1))
    assert script.status_code == 200 and "L.map(" in script.get_data(as_text=True)
    assert external_urls(script.get_data(as_text=True)) == []
    assert external_urls(client.get("/sw.js").get_data(as_text=True)) == []


def test_folium_is_pointed_at_the_vendored_assets(app):
    """folium's own complete document (not only the parts the page uses) names no CDN."""
    with app.test_request_context():
        m = map_page.page_map()
        document = m.get_root().render()
        parts = leaflet_map.map_parts(m)
    assert "cdn" not in document and external_urls(document) == []
    assert parts.js and all(url.startswith("/static/vendor/") for url in parts.js + parts.css)
    assert "L.vectorGrid.protobuf(" in parts.script and "/tiles/solutions/{z}/{x}/{y}.mvt" in parts.script


def test_every_asset_the_page_names_is_served_with_a_licence_next_to_vendored_ones(client):
    html = client.get("/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(assets) >= 4
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.cache_control.max_age == 365 * 24 * 3600  # versioned: kept for a year
        if "/vendor/" in url:
            folder = url.split("?")[0].rsplit("/", 1)[0]
            assert client.get(folder + "/LICENSE").status_code == 200


def test_a_strict_content_security_policy_on_the_pages(client):
    for path in ("/", "/a-propos"):
        policy = client.get(path).headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
        assert directives["connect-src"] == "'self'"
        assert "unsafe" not in policy


def test_no_inline_script_or_style_that_the_policy_would_block(client):
    for path in ("/", "/a-propos"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html, path


def test_the_page_is_french_with_a_chip_for_every_type_of_solution(client):
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="fr">' in html
    for code in SOLUTION_TYPES:
        assert f'name="type" value="{code}"' in html
    for code in SERVICE_CIVIQUE_FORMULAS:
        assert f'name="formula" value="{code}"' in html
    assert "Autour de moi" in html and "Signaler une erreur" in html


def test_the_national_help_line_and_chat_come_from_the_settings(database_url):
    app = create_app({"database": {"url": database_url},
                      "page": {"help_line_phone": "0 800 12 34 56", "help_chat_url": "https://aide.example.invalid/chat"}})
    html = app.test_client().get("/").get_data(as_text=True)
    assert 'href="tel:0800123456"' in html and "https://aide.example.invalid/chat" in html
    app.extensions["mapservice.databases"].dispose()
    without = create_app({"database": {"url": database_url}})
    assert "tel:" not in without.test_client().get("/").get_data(as_text=True)
    without.extensions["mapservice.databases"].dispose()


def test_the_about_page_says_what_is_loaded_and_links_to_the_api(client):
    html = client.get("/a-propos").get_data(as_text=True)
    assert "34 8" in html  # 34 8xx communes
    assert "/api/v1/solutions/nearest?lat=" in html
    assert "exemples fictifs" in html
    assert 'href="/a-propos"' in client.get("/").get_data(as_text=True)


def test_the_service_worker_keeps_the_shell_and_is_always_revalidated(client):
    response = client.get("/sw.js")
    assert response.mimetype == "text/javascript"
    assert response.cache_control.no_cache
    body = response.get_data(as_text=True)
    html = client.get("/").get_data(as_text=True)
    for url in re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css)[^"]*|/carte\.js[^"]*)"', html):
        assert f'"{url}"' in body, url


def test_the_page_is_gzipped(client):
    response = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
