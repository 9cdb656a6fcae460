"""The map page in a real browser (Debian's headless Chromium): what a young person does with it."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from .page_browser import (  # noqa: F401  (fixtures)
    DESKTOP, PHONE, browser, live_server, screenshot, serious_accessibility_violations, visit,
)

VILLEURBANNE = {"latitude": 45.7719, "longitude": 4.8902}


def listed(page) -> list[dict]:
    return page.eval_on_selector_all("#liste > li", """items => items.map(li => ({
        id: li.dataset.id, title: li.querySelector('h3').textContent,
        type: li.querySelector('.type').textContent, distance: li.querySelector('.distance').textContent}))""")


def km(text: str) -> float:
    value, unit = re.match(r"à\s*([\d\s,]+)\s*(km|m)", text).groups()
    number = float(value.replace(",", ".").replace("\u202f", "").replace(" ", ""))
    return number if unit == "km" else number / 1000


def test_around_me_lists_the_nearest_solutions_in_km_and_the_map_follows(visit, client):
    found = visit("/", geolocation=VILLEURBANNE, permissions=["geolocation"])
    page = found.page
    page.get_by_role("button", name="Autour de moi").click()
    expect(page.locator("#liste > li").first).to_be_visible()
    query = parse_qs(urlparse(page.url).query)
    assert query["lat"] == ["45.772"] and query["lon"] == ["4.89"]  # rounded: a shared link is not an address
    expect(page.locator("#titre-resultats")).to_contain_text("Villeurbanne")

    items = listed(page)
    api = client.get("/api/v1/solutions/nearest?lat=45.772&lon=4.89&limit=20").get_json()["features"]
    assert [item["id"] for item in items] == [str(f["id"]) for f in api]
    distances = [km(item["distance"]) for item in items]
    assert distances == sorted(distances)
    for item, feature in zip(items, api):
        assert abs(km(item["distance"]) - feature["properties"]["distance_km"]) <= 0.06
    assert page.locator(".result-marker").count() == len(items)
    screenshot(page, "results-desktop")
