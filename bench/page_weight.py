"""Weight of the public map page, and how long it takes on an emulated slow mobile connection.

    python bench/page_weight.py          # the service's own database (./dev run or `mapservice setup` first)

Serves the app with gunicorn on loopback, opens the page in Debian's headless Chromium (cold cache, fresh
profile) and adds up what went over the wire (compressed bodies + headers; not the service worker's own
download of the shell, which reuses the browser's cache) for: the home page, then a search
(the list of the 20 nearest solutions, its map and who covers the area), at phone (360 px: the map is hidden,
so no tile is downloaded) and desktop widths. Then the same with the connection throttled like a slow 3G phone
(400 kbit/s down, 400 ms round trip): "ready" is when the map exists (home) or the list shows (search).
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import sync_playwright  # noqa: E402

import harness  # noqa: E402
from mapservice.db import resolve_database_url  # noqa: E402
from mapservice.settings import Settings  # noqa: E402
from tests.page_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SEARCH = "/?lat=45.772&lon=4.89"  # Villeurbanne
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400 * 1024 / 8, "uploadThroughput": 400 * 1024 / 8}


def kind(url: str, resource: str) -> str:
    if "/api/" in url:
        return "API (JSON)"
    if "/tiles/" in url:
        return "vector tiles"
    if "/vendor/" in url:
        return "vendored Leaflet (+ VectorGrid)"
    return {"document": "HTML", "script": "our JS", "stylesheet": "our CSS"}.get(resource, resource)


PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


def measure(browser, base: str, path: str, throttle: bool, viewport: dict) -> tuple[dict, float]:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    if throttle:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    sizes: dict[str, int] = defaultdict(int)
    done = []
    page.on("requestfinished", lambda request: done.append(request))
    started = time.perf_counter()
    page.goto(base + path)
    page.wait_for_selector("#liste > li" if "lat=" in path else "#map_carte.leaflet-container", state="attached",
                           timeout=120000)
    elapsed = time.perf_counter() - started
    page.wait_for_load_state("networkidle", timeout=120000)
    for request in done:
        s = request.sizes()
        sizes[kind(request.url, request.resource_type)] += s["responseBodySize"] + s["responseHeadersSize"]
    context.close()
    return dict(sizes), elapsed


def main() -> None:
    url = resolve_database_url(Settings(), start=True)
    with harness.gunicorn(url, workers=1, threads=4) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        measure(browser, base, SEARCH, False, DESKTOP)  # warm-up: the worker's first request opens its pool
        for label, path, viewport in (("home page, phone", "/", PHONE), ("search, phone", SEARCH, PHONE),
                                      ("home page, desktop", "/", DESKTOP), ("search, desktop", SEARCH, DESKTOP)):
            sizes, fast = measure(browser, base, path, False, viewport)
            _, slow = measure(browser, base, path, True, viewport)
            total = sum(sizes.values())
            print(f"\n{label} ({path}, {viewport['width']} px) — {total / 1024:.1f} KiB over the wire, cold cache")
            for name, size in sorted(sizes.items(), key=lambda item: -item[1]):
                print(f"  {name:<34} {size / 1024:8.1f} KiB")
            print(f"  ready in {fast * 1000:.0f} ms on loopback, {slow:.1f} s on emulated slow 3G")
        browser.close()


if __name__ == "__main__":
    main()
