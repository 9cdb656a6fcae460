"""OGC API - Features over the published catalogue, read by the test client and by GDAL (ogrinfo/ogr2ogr over
a real HTTP server), as QGIS would."""
import json
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from .conftest import serving

OGC = "/api/v1/ogc"
LYON = (4.7, 45.7, 4.95, 45.85)


@pytest.fixture(scope="module")
def live_server(app):
    """The app on a free loopback port (GDAL needs real HTTP)."""
    with serving(app) as url:
        yield url


def published_in(engine, bbox):
    with engine.connect() as conn:
        return set(conn.scalars(text("""
            SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
            WHERE s.status = 'published' AND site.status = 'published'
              AND site.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)"""),
            dict(zip("wsen", bbox))))


def test_landing_conformance_and_collections(client):
    landing = client.get(f"{OGC}/").get_json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    conformance = client.get(urlsplit(rels["conformance"]).path).get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance
    collections = client.get(urlsplit(rels["data"]).path).get_json()["collections"]
    assert [c["id"] for c in collections] == ["solutions"]
    assert client.get(urlsplit(rels["service-desc"]).path).status_code == 200


def test_items_pages_through_a_bbox_exactly_once(client, engine):
    expected = published_in(engine, LYON)
    assert len(expected) > 120  # several pages
    url = f"{OGC}/collections/solutions/items?bbox={','.join(map(str, LYON))}&limit=50"
    seen = []
    while url:
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "application/geo+json"
        body = response.get_json()
        assert body["numberReturned"] == len(body["features"]) <= 50
        seen += [f["id"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = f"{urlsplit(nxt[0]).path}?{urlsplit(nxt[0]).query}" if nxt else None
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert seen == sorted(seen)


def test_items_honour_properties_and_filters(client):
    body = client.get(f"{OGC}/collections/solutions/items?properties=title,vacant_places&type=e2c&limit=5").get_json()
    assert len(body["features"]) == 5
    for feature in body["features"]:
        assert set(feature["properties"]) == {"title", "vacant_places"}
        assert "2e chance" in feature["properties"]["title"]


def test_a_page_gives_each_solution_as_its_own_item_does(client):
    """PostgreSQL writes a page's features; one item is shaped in Python: the same feature, and the properties
    asked for in the order asked."""
    bbox = ",".join(map(str, LYON))
    page = client.get(f"{OGC}/collections/solutions/items?bbox={bbox}&limit=40").get_json()
    assert len(page["features"]) == 40
    for feature in page["features"]:
        item = client.get(f"{OGC}/collections/solutions/items/{feature['id']}").get_json()
        assert (feature["type"], feature["id"], feature["geometry"], feature["properties"]) == \
            (item["type"], item["id"], item["geometry"], item["properties"])
    chosen = client.get(f"{OGC}/collections/solutions/items?bbox={bbox}&limit=5"
                        "&properties=vacant_places,title,commune_name").get_json()["features"]
    assert [list(f["properties"]) for f in chosen] == [["vacant_places", "title", "commune_name"]] * 5


def test_one_item_and_unknown_ones(client):
    first = client.get(f"{OGC}/collections/solutions/items?limit=1").get_json()["features"][0]
    item = client.get(f"{OGC}/collections/solutions/items/{first['id']}").get_json()
    assert item["properties"] == first["properties"] and item["geometry"] == first["geometry"]
    assert client.get(f"{OGC}/collections/solutions/items/999999999").status_code == 404
    assert client.get(f"{OGC}/collections/nope/items").status_code == 404
    assert client.get(f"{OGC}/collections/nope").status_code == 404


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL (Debian gdal-bin) is not installed")
def test_gdal_reads_the_catalogue_unchanged(live_server, engine, tmp_path):
    source = f"OAPIF:{live_server}{OGC}"
    listing = subprocess.run(["ogrinfo", "-ro", "-q", source], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "solutions" in listing.stdout
    # A bbox read, paged by GDAL through the 'next' links (page size 50), written to GeoJSON.
    out = tmp_path / "lyon.geojson"
    copy = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(out), source, "solutions", "-spat", *map(str, LYON),
         "-oo", "PAGE_SIZE=50"], capture_output=True, text=True, timeout=120)
    assert copy.returncode == 0, copy.stderr
    written = json.loads(out.read_text())["features"]
    assert {f["properties"]["id"] for f in written} == published_in(engine, LYON)
    sample = written[0]
    assert sample["geometry"]["type"] == "Point"
    assert {"title", "type", "vacant_places", "last_checked_at"} <= set(sample["properties"])
