"""The map page in a real browser (Debian's headless Chromium): what a young person does with it."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

from playwright.sync_api import expect

from .page_browser import DESKTOP, PHONE, screenshot, serious_accessibility_violations

VILLEURBANNE = {"latitude": 45.7719, "longitude": 4.8902}


def listed(page) -> list[dict]:
    """The list as shown, once the search in progress (if any) has answered."""
    expect(page.locator("#resultats")).not_to_have_attribute("aria-busy", "true")
    return page.eval_on_selector_all("#liste > li", """items => items.map(li => ({
        id: li.dataset.id, title: li.querySelector('h3').textContent,
        type: li.querySelector('.type').textContent,
        distance: li.querySelector('.distance .visually-hidden').textContent,
        shown: li.querySelector('.distance [aria-hidden]').textContent}))""")


def km(text: str) -> float | None:
    """The distance said ("à 1,5 km", "à environ 800 m"); None for a site said to be in the commune."""
    if text == "dans la commune":
        return None
    value, unit = re.match(r"à\s*(?:environ\s*)?([\d\s,]+)\s*(km|m)", text).groups()
    number = float(value.replace(",", ".").replace("\u202f", "").replace(" ", ""))
    return number if unit == "km" else number / 1000


def said_as_the_api_measures(item: dict, feature: dict, origin_commune: str) -> bool:
    """The list says how far a solution is as the API measures it: to the metre where its site is located, and
    only roughly for a site standing at its commune's centre (its address not located), which is simply "in the
    commune" when it is the commune searched from."""
    p = feature["properties"]
    if p["position_precision"] != "commune":
        return item["distance"].startswith("à ") and abs(km(item["distance"]) - p["distance_km"]) <= 0.06
    if p["commune_code"] == origin_commune:
        return item["distance"] == item["shown"] == "dans la commune"
    return (item["distance"].startswith("à environ ") and item["shown"].startswith("≈ ")
            and abs(km(item["distance"]) - p["distance_km"]) <= 0.06)


def ordered(items: list[dict]) -> bool:
    """The distances said go from the nearest to the farthest (a site in the commune has no distance said)."""
    distances = [km(item["distance"]) for item in items if km(item["distance"]) is not None]
    return distances == sorted(distances)


def test_around_me_lists_the_nearest_solutions_in_km_and_the_map_follows(visit, client):
    found = visit("/", geolocation=VILLEURBANNE, permissions=["geolocation"])
    page = found.page
    page.get_by_role("button", name="Autour de moi").click()
    expect(page.locator("#liste > li").first).to_be_visible()
    query = parse_qs(urlparse(page.url).query)
    assert query["lat"] == ["45.772"] and query["lon"] == ["4.89"]  # rounded: a shared link is not an address
    expect(page.locator("#titre-resultats")).to_contain_text("Villeurbanne")

    items = listed(page)
    api = client.get("/api/v1/solutions/nearest?lat=45.772&lon=4.89&limit=20").get_json()
    assert [item["id"] for item in items] == [str(f["id"]) for f in api["features"]]
    assert ordered(items)
    for item, feature in zip(items, api["features"]):
        assert said_as_the_api_measures(item, feature, api["origin"]["commune"]["code"]), (item, feature)
    assert page.locator(".result-marker").count() == len(items)
    screenshot(page, "results-desktop")

    page.get_by_role("button", name="Voir plus de solutions").click()  # the next page, numbered on
    expect(page.locator("#liste > li")).to_have_count(40)
    more = listed(page)
    assert more[:20] == items and ordered(more)
    api = client.get("/api/v1/solutions/nearest?lat=45.772&lon=4.89&limit=40").get_json()
    for item, feature in zip(more, api["features"], strict=True):
        assert said_as_the_api_measures(item, feature, api["origin"]["commune"]["code"]), (item, feature)
    # Lyon's lycées, at the centre of their arrondissement, are only roughly that far
    assert any(item["shown"].startswith("≈ ") for item in more)
    expect(page.locator("#liste > li").nth(20).locator("h3 a")).to_be_focused()
    assert page.locator(".result-marker").count() == 40


def test_filters_change_the_list_and_the_map_and_stay_in_the_url(visit, client):
    found = visit("/?lat=45.772&lon=4.89")
    page = found.page
    expect(page.locator("#liste > li").first).to_be_visible()
    everything = listed(page)
    # the map's clustered vector tiles are asked again with the same filter
    with page.expect_request(lambda r: re.search(r"/tiles/solutions/\d+/\d+/\d+\.mvt\?type=apprentissage$", r.url)):
        page.get_by_role("checkbox", name=re.compile("^Apprentissage")).check()
    apprenticeship = listed(page)
    assert len(apprenticeship) == 20
    assert apprenticeship != everything
    assert {item["type"] for item in apprenticeship} == {"Apprentissage (CFA, UFA)"}
    assert page.locator(".result-marker").count() == len(apprenticeship)
    assert parse_qs(urlparse(page.url).query)["type"] == ["apprentissage"]

    page.get_by_label("Seulement s'il reste des places libres").check()
    expect(page).to_have_url(re.compile(r"has_vacancy=true"))
    api = client.get("/api/v1/solutions/nearest?lat=45.772&lon=4.89&limit=20&type=apprentissage&has_vacancy=true")
    expected = [str(f["id"]) for f in api.get_json()["features"]]
    assert [item["id"] for item in listed(page)] == expected
    assert page.locator("#liste .places.open").count() == len(expected)  # each says how many places are left

    page.reload()  # the shared link gives the same page back
    expect(page.locator("#liste > li")).to_have_count(len(expected))
    assert [item["id"] for item in listed(page)] == expected
    expect(page.get_by_label("Seulement s'il reste des places libres")).to_be_checked()
    expect(page.locator('input[name="type"][value="apprentissage"]')).to_be_checked()


def test_examples_are_marked_as_examples(visit):
    page = visit("/?lat=45.772&lon=4.89").page
    expect(page.locator("#liste > li").first).to_be_visible()
    for item in page.locator("#liste > li").all():
        is_example = item.locator("h3").inner_text().startswith("Exemple —")
        assert item.locator(".badge.example").count() == (1 if is_example else 0)
    assert page.locator("#liste .badge.example").count() > 0


def test_refused_geolocation_says_what_to_do_instead(visit):
    page = visit("/", permissions=[]).page
    page.get_by_role("button", name="Autour de moi").click()
    expect(page.locator("#message")).to_contain_text("Tape plutôt le nom de ta ville")
    expect(page.locator("#liste > li")).to_have_count(0)


def test_when_the_api_does_not_answer_the_page_says_so_and_can_retry(visit):
    found = visit("/", geolocation=VILLEURBANNE, permissions=["geolocation"])
    page = found.page
    page.route("**/api/**", lambda route: route.abort("internetdisconnected"))
    page.get_by_role("button", name="Autour de moi").click()
    expect(page.locator("#message")).to_contain_text("Le service ne répond pas pour le moment")
    page.unroute("**/api/**")
    page.locator("#message").get_by_role("button", name="Réessayer").click()
    expect(page.locator("#liste > li").first).to_be_visible()
    expect(page.locator("#message")).to_be_hidden()


def test_once_visited_the_page_opens_without_network(visit):
    found = visit("/")
    page = found.page
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")  # installed, shell kept
    page.reload()  # now controlled by the service worker
    page.context.set_offline(True)
    page.goto(found.origin + "/?lat=45.772&lon=4.89")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reprendre une formation près de chez moi")
    expect(page.locator("#message")).to_contain_text("Le service ne répond pas pour le moment")
    page.context.set_offline(False)


def test_on_a_phone_the_list_comes_first_and_the_map_is_one_tap_away(visit):
    found = visit("/?lat=45.772&lon=4.89", viewport=PHONE)
    page = found.page
    expect(page.locator("#liste > li").first).to_be_visible()
    expect(page.locator("#carte-zone")).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert not [url for url in found.requests if "/tiles/" in url]  # no map tiles while the map is hidden
    screenshot(page, "results-phone")
    page.locator("#resultats").scroll_into_view_if_needed()
    screenshot(page, "results-phone-screen", full_page=False)
    with page.expect_request(re.compile(r"/tiles/solutions/14/")):
        page.get_by_role("button", name="Carte").click()
    expect(page.locator("#carte-zone")).to_be_visible()
    expect(page).to_have_url(re.compile(r"vue=carte"))
    page.locator(".result-marker").first.click()
    # the marker selects its solution: highlighted in the list, named in a popup that opens its detail
    expect(page.locator("#liste > li.is-selected")).to_have_count(1)
    expect(page.locator(".result-marker.is-selected")).to_have_count(1)
    popup = page.locator(".leaflet-popup")
    expect(popup).to_contain_text(page.locator("#liste > li.is-selected h3").inner_text())
    expect(page.locator(".leaflet-control-scale-line")).to_have_text(re.compile(r"^\d+ m$"))  # fitted, not the world
    page.wait_for_timeout(300)  # the popup's fade-in
    screenshot(page, "map-phone-selected")
    popup.get_by_role("button", name="Voir le détail").click()
    expect(page.locator("#titre-detail")).to_be_visible()
    expect(page.locator("#titre-detail")).to_be_focused()


def test_no_serious_accessibility_violation_on_the_home_and_results_views(visit):
    for viewport, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page = visit("/", viewport=viewport).page
        if viewport is DESKTOP:
            expect(page.locator("#map_carte")).to_be_visible()
        page.wait_for_load_state("networkidle")  # the map's tiles drawn
        screenshot(page, f"home-{name}")
        assert serious_accessibility_violations(page) == []
    page.goto(page.url + "?lat=45.772&lon=4.89&type=service_civique")
    expect(page.locator("#liste > li").first).to_be_visible()
    assert serious_accessibility_violations(page) == []


def test_search_a_commune_by_name_with_suggestions_then_who_covers_it(visit):
    page = visit("/").page
    page.get_by_role("combobox", name="Ville, code postal, département ou région").fill("Villeurb")
    option = page.get_by_role("option", name=re.compile(r"^Villeurbanne"))
    expect(option).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#liste > li").first).to_be_visible()
    assert parse_qs(urlparse(page.url).query)["commune"] == ["69266"]
    expect(page.locator("#titre-resultats")).to_contain_text("Villeurbanne")
    items = listed(page)
    assert ordered(items) and km(items[-1]["distance"]) < 5
    # Villeurbanne's lycées stand at its town hall (the demo knows no address): in the commune, not at 10 m
    in_commune = [item for item in items if item["distance"] == "dans la commune"]
    assert in_commune and all(item["shown"] == "dans la commune" for item in in_commune)
    coverage = page.locator("#couverture")
    expect(coverage).to_contain_text("plateforme de suivi et d'appui aux décrocheurs")
    expect(coverage).to_contain_text("Exemple fictif")
    assert coverage.locator('a[href^="tel:"]').count() >= 1


def test_the_way_to_a_lycee_whose_address_is_not_located_is_looked_up_by_its_name_not_its_town_hall(visit, client):
    found = client.get("/api/v1/solutions/nearest?commune=69266&limit=20").get_json()["features"]
    lycee = next(f["properties"] for f in found if f["properties"]["position_precision"] == "commune")
    page = visit(f"/?commune=69266&solution={lycee['id']}").page
    detail = page.locator("#detail")
    expect(detail.locator("#titre-detail")).to_have_text(lycee["title"])
    expect(detail).to_contain_text("dans la commune")
    href = detail.get_by_role("link", name=re.compile("itinéraire")).get_attribute("href")
    assert href.startswith("geo:0,0?q=")
    looked_up = unquote(href.removeprefix("geo:0,0?q="))
    assert looked_up.startswith(f"{lycee['site_name']}, ") and "69100" in looked_up


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


def test_on_an_iphone_the_way_there_opens_apple_plans_which_knows_no_geo_link(visit, client):
    found = client.get("/api/v1/solutions/nearest?commune=69266&limit=20").get_json()["features"]
    located = next(f for f in found if f["properties"]["position_precision"] != "commune")
    lycee = next(f["properties"] for f in found if f["properties"]["position_precision"] == "commune")
    for feature, expected in ((located["properties"], "{lat},{lon}".format(lon=located["geometry"]["coordinates"][0],
                                                                         lat=located["geometry"]["coordinates"][1])),
                              (lycee, None)):
        page = visit(f"/?commune=69266&solution={feature['id']}", viewport=PHONE, user_agent=IPHONE).page
        detail = page.locator("#detail")
        expect(detail.locator("#titre-detail")).to_have_text(feature["title"])
        href = detail.get_by_role("link", name=re.compile("itinéraire")).get_attribute("href")
        assert href.startswith("https://maps.apple.com/?daddr=")
        destination = unquote(href.removeprefix("https://maps.apple.com/?daddr="))
        if expected:  # a located site: its position
            assert destination == expected
        else:  # a lycée at its commune's centre: looked up by name and address
            assert destination.startswith(f"{lycee['site_name']}, ") and "69100" in destination


def test_the_api_documentation_reads_on_a_phone_without_scrolling_sideways(visit):
    page = visit("/api/v1/docs", viewport=PHONE).page
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_place_that_does_not_exist_gets_a_plain_message(visit):
    page = visit("/").page
    page.get_by_role("combobox").fill("Zzyzxville")
    page.get_by_role("button", name="Chercher").click()
    expect(page.locator("#message")).to_contain_text("Aucun lieu ne correspond à « Zzyzxville »")


def test_open_a_solution_call_go_there_report_an_error_and_share_it(visit, engine):
    found = visit("/?lat=45.772&lon=4.89")
    page = found.page
    first = page.locator("#liste > li").first
    title = first.locator("h3").inner_text()
    first.locator("h3 a").click()
    heading = page.locator("#titre-detail")
    expect(heading).to_have_text(title)
    expect(heading).to_be_focused()
    detail = page.locator("#detail")
    expect(detail.locator(".badge.example")).to_have_text("Exemple fictif")
    expect(detail.locator('a[href^="tel:"]')).to_have_count(1)
    geo = detail.get_by_role("link", name=re.compile("itinéraire"))
    assert re.match(r"geo:45\.\d+,4\.\d+\?q=", geo.get_attribute("href"))
    solution_id = parse_qs(urlparse(page.url).query)["solution"][0]
    expect(page.locator(f'#liste > li[data-id="{solution_id}"]')).to_have_class(re.compile("is-selected"))
    expect(page.locator(".result-marker.is-selected")).to_have_count(1)
    screenshot(page, "detail-desktop")
    assert serious_accessibility_violations(page) == []

    detail.get_by_text("Signaler une erreur").click()
    detail.get_by_role("button", name="Envoyer").click()
    expect(page.locator("#signaler-message")).to_contain_text("Choisis ce qui ne va pas")
    detail.get_by_label("Qu'est-ce qui ne va pas ?").select_option("places")
    detail.get_by_label("Précisions").fill("Il n'y a plus de place depuis lundi.")
    detail.get_by_role("button", name="Envoyer").click()
    expect(page.locator("#signaler-message")).to_contain_text("Merci")
    from sqlalchemy import text
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT reason, message FROM error_report WHERE solution_id = :id "
                                   "ORDER BY id DESC LIMIT 1"), {"id": int(solution_id)}).one()
    assert tuple(stored) == ("places", "Il n'y a plus de place depuis lundi.")

    page.reload()  # a shared link opens the same solution
    expect(page.locator("#titre-detail")).to_have_text(title)
    page.get_by_role("button", name="Retour à la liste").click()
    expect(page.locator("#liste > li").first.locator("h3 a")).to_be_focused()
    assert "solution=" not in page.url


def test_detail_on_a_phone(visit):
    page = visit("/?lat=45.772&lon=4.89", viewport=PHONE).page
    page.locator("#liste > li").first.locator("h3 a").click()
    expect(page.locator("#titre-detail")).to_be_visible()
    screenshot(page, "detail-phone")


VISIBLE_CATALOGUE_FEATURE = """(maxWidth) => {
    for (const path of vector_grid_protobuf_solutions.getContainer().querySelectorAll('path')) {
        const box = path.getBoundingClientRect();
        const x = box.left + box.width / 2, y = box.top + box.height / 2;
        if (box.width > 0 && box.width < maxWidth && document.elementFromPoint(x, y) === path) return [x, y];
    }
    return null;
}"""


def test_a_cluster_on_the_map_zooms_in(visit):
    page = visit("/").page
    page.locator("#map_carte").scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    zoom = page.evaluate("map_carte.getZoom()")
    assert zoom <= 6  # all of France
    page.mouse.click(*page.evaluate(VISIBLE_CATALOGUE_FEATURE, 100))
    page.wait_for_function("zoom => map_carte.getZoom() === zoom + 2", arg=zoom)


def test_a_site_on_the_map_that_is_not_in_the_list_offers_to_search_around_it(visit):
    page = visit("/?lat=45.772&lon=4.89").page
    expect(page.locator("#liste > li").first).to_be_visible()
    page.locator("#map_carte").scroll_into_view_if_needed()
    page.evaluate("map_carte.setView([45.75, 4.85], 13)")
    page.wait_for_load_state("networkidle")
    # a site drawn by the catalogue's vector tiles, not hidden under a marker of the list
    point = page.evaluate(VISIBLE_CATALOGUE_FEATURE, 20)
    assert point is not None
    page.mouse.click(*point)
    popup = page.locator(".leaflet-popup")
    expect(popup.get_by_role("button", name="Chercher autour de ce lieu")).to_be_visible()
    popup.get_by_role("button", name="Chercher autour de ce lieu").click()
    expect(page).to_have_url(re.compile(r"lat=45\.\d+&lon=4\.\d+"))
    expect(page.locator("#resultats")).not_to_have_attribute("aria-busy", "true")
    # the site itself comes first (the origin is rounded to ~100 m), or said in the commune when its address is
    # not located
    assert listed(page)[0]["distance"] == "dans la commune" or km(listed(page)[0]["distance"]) <= 0.1
