"""Offline bundles, played as the mobile app uses them: read the manifest, download an area's bundle once,
then answer from it without network; and a bundle is rebuilt only when its own area changed."""
from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
from pyproj import Geod
from sqlalchemy import text

from mapservice.appdata import changelog
from mapservice.feature_sql import utc_iso

from .conftest import dispose_app, make_test_app, throwaway_database

VILLEURBANNE = "69266"
WGS84 = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def bundles_client(server, template):
    """The app on a copy of the catalogue of its own (bundles are written on first download)."""
    with throwaway_database(server, "mapservice_bundles", template=template) as url:
        app = make_test_app(url)
        yield app.test_client()
        dispose_app(app)


def download(client, kind: str, code: str) -> tuple[str, dict, object]:
    """What the app does: ask for the area's current bundle, follow to its immutable URL, unpack it."""
    pointer = client.get(f"/api/v1/bundles/{kind}/{code}")
    assert pointer.status_code == 303, pointer.data[:300]
    assert "no-cache" in pointer.headers["Cache-Control"]
    url = pointer.headers["Location"]
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/gzip"
    return url, json.loads(gzip.decompress(response.data)), response


def offline_nearest(bundle: dict, place_name: str, limit: int) -> tuple[dict, list[tuple[int, float]]]:
    """Nearest solutions computed on the phone from the bundle alone: find the commune in the bundle's search
    index, start from its town hall, rank every solution by distance on the WGS84 ellipsoid (to the millimetre,
    as the bundle's format says), ties by id."""
    wanted = place_name.lower()
    commune = next(c for c in bundle["places"]["communes"] if c["name_search"] == wanted)
    lon, lat = commune["town_hall"]
    ranked = []
    for feature in bundle["solutions"]["features"]:
        slon, slat = feature["geometry"]["coordinates"]
        ranked.append((round(WGS84.inv(lon, lat, slon, slat)[2], 3), feature["id"]))
    ranked.sort()
    return commune, [(solution_id, metres) for metres, solution_id in ranked[:limit]]


def test_the_app_downloads_rhone_then_answers_nearest_to_villeurbanne_offline(bundles_client):
    live = bundles_client.get(f"/api/v1/solutions/nearest?commune={VILLEURBANNE}&limit=20").get_json()
    url, bundle, response = download(bundles_client, "departement", "69")

    # Content-addressed and immutable: the app (and any cache on the way) keeps it as long as it likes.
    assert response.headers["ETag"].strip('"') in url
    assert "immutable" in response.headers["Cache-Control"]
    assert bundles_client.get(url, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304

    # From here on, no network: the bundle alone answers.
    commune, nearest = offline_nearest(bundle, "villeurbanne", 20)
    assert commune["code"] == VILLEURBANNE and "69100" in commune["postcodes"]
    assert [solution_id for solution_id, _ in nearest] == [f["id"] for f in live["features"]]
    for (_, metres), feature in zip(nearest, live["features"]):
        assert metres / 1000 == pytest.approx(feature["properties"]["distance_km"], abs=0.002)
    # What the list shows comes from the bundle too, with the API's property names.
    by_id = {f["id"]: f for f in bundle["solutions"]["features"]}
    for feature in live["features"]:
        offline = by_id[feature["id"]]["properties"]
        for name, value in feature["properties"].items():
            if name != "distance_km":
                assert offline[name] == value, name


def test_a_bundle_holds_exactly_the_areas_published_catalogue_coverage_and_places(bundles_client, server):
    _, bundle, _ = download(bundles_client, "departement", "69")
    engine = bundles_client.application.extensions["mapservice.engine"]
    with engine.connect() as conn:
        published = set(conn.execute(text("""
            SELECT s.id FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
            WHERE s.status = 'published' AND site.status = 'published' AND c.departement_code = '69'""")).scalars())
        communes = conn.execute(text("SELECT count(*) FROM commune WHERE departement_code = '69'")).scalar()
        position = changelog.position(conn)
    assert {f["id"] for f in bundle["solutions"]["features"]} == published
    site_ids = {f["properties"]["site_id"] for f in bundle["solutions"]["features"]}
    assert {f["id"] for f in bundle["sites"]["features"]} == site_ids
    assert bundle["area"] == {"kind": "departement", "code": "69", "name": "Rhône", "bbox": bundle["area"]["bbox"]}
    # the feed's cursor, at most where the catalogue stands now (the bundle was written since)
    assert 0 < changelog.from_token(bundle["cursor"]).txid <= position
    assert len(bundle["places"]["communes"]) == communes
    assert VILLEURBANNE in bundle["places"]["postcodes"]["69100"]
    assert [a["code"] for a in bundle["coverage"]["academies"]] == ["10"]  # Lyon
    platforms = bundle["coverage"]["psad_platforms"]
    assert platforms and all(p["contact"] and p["communes"] for p in platforms)
    assert any(p["foquale_network"] for p in platforms)


@pytest.mark.parametrize("microsecond", [359870, 0, 5, 999999])
def test_a_bundle_writes_dates_as_the_api_does(engine, microsecond):
    checked = dt.datetime(2026, 8, 16, 1, 22, 50, microsecond, tzinfo=dt.timezone.utc)
    with engine.connect() as conn:
        written = conn.execute(text(f"SELECT {utc_iso('CAST(:checked AS timestamptz)')}"), {"checked": checked}).scalar()
    assert written == checked.isoformat()


def test_the_manifest_lists_every_area_with_sizes_and_dates(bundles_client):
    download(bundles_client, "departement", "69")
    manifest = bundles_client.get("/api/v1/bundles").get_json()["bundles"]
    areas = {(e["area"]["kind"], e["area"]["code"]) for e in manifest}
    assert ("france", "FR") in areas and ("region", "84") in areas and ("departement", "2A") in areas
    assert len([a for a in areas if a[0] == "departement"]) >= 101
    rhone = next(e for e in manifest if e["area"] == {"kind": "departement", "code": "69", "name": "Rhône"})
    assert rhone["size"] > 1000 and rhone["built_at"] and rhone["solutions"] > 100
    assert bundles_client.get(rhone["url"]).status_code == 200
    assert bundles_client.get(rhone["latest"]).headers["Location"] == rhone["url"]


def test_a_bundle_is_rebuilt_only_when_its_own_area_changed(fresh_database_url):
    app = make_test_app(fresh_database_url)
    client = app.test_client()
    engine = app.extensions["mapservice.engine"]
    try:
        first, bundle, _ = download(client, "departement", "69")
        assert download(client, "departement", "69")[0] == first  # no change: the same file
        with engine.begin() as conn:  # an edit in Brittany leaves Rhône's bundle as it is
            conn.execute(text("""UPDATE solution SET vacant_places = 7 WHERE id = (
                SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
                WHERE site.commune_code LIKE '35%' AND s.status = 'published' ORDER BY s.id LIMIT 1)"""))
        assert download(client, "departement", "69")[0] == first
        target = bundle["solutions"]["features"][0]["id"]
        with engine.begin() as conn:
            conn.execute(text("UPDATE solution SET vacant_places = 3 WHERE id = :id"), {"id": target})
        second, rebuilt, _ = download(client, "departement", "69")
        assert second != first
        assert next(f for f in rebuilt["solutions"]["features"] if f["id"] == target)["properties"][
            "vacant_places"] == 3
        assert changelog.from_token(rebuilt["cursor"]) > changelog.from_token(bundle["cursor"])
        assert client.get(first).status_code == 200  # an app that just read the old URL still gets it
        with engine.begin() as conn:  # coverage is part of the bundle too
            conn.execute(text("""UPDATE psad_platform SET phone = '04 00 00 00 00' WHERE id = (
                SELECT min(p.id) FROM psad_platform p WHERE p.departement_code = '69')"""))
        third, covered, _ = download(client, "departement", "69")
        assert third != second
        assert "04 00 00 00 00" in [p["contact"]["phone"] for p in covered["coverage"]["psad_platforms"]]
    finally:
        dispose_app(app)


@pytest.mark.parametrize("url, status, parameter", [
    ("/api/v1/bundles/departement/00", 404, "code"),
    ("/api/v1/bundles/commune/69266", 404, "kind"),
    ("/api/v1/bundles/departement/69/0123abcd.json.gz", 404, "digest"),
    ("/api/v1/bundles?foo=1", 400, "foo"),
])
def test_bad_bundle_requests_get_a_clear_4xx(bundles_client, url, status, parameter):
    response = bundles_client.get(url)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["parameter"] == parameter and problem["detail"]


def test_a_bundle_download_can_resume(bundles_client):
    url, _, whole = download(bundles_client, "departement", "69")
    part = bundles_client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]


def test_the_manifest_and_the_bundles_content_match_the_openapi_document(bundles_client):
    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from openapi_schema_validator import OAS30Validator

    spec = bundles_client.get("/api/v1/openapi.json").get_json()
    openapi = OpenAPI.from_dict(spec, config=Config(
        extra_media_type_deserializers={"application/problem+json": json.loads}))
    _, bundle, downloaded = download(bundles_client, "region", "94")
    for response in (bundles_client.get("/api/v1/bundles"), downloaded,
                     bundles_client.get("/api/v1/bundles/departement/00")):
        openapi.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))
    schemas = spec["components"]["schemas"]
    validator = OAS30Validator({**schemas["Bundle"], "components": {"schemas": schemas}})
    validator.validate(bundle)
    assert bundle["area"]["name"] == "Corse" and bundle["solutions"]["features"]
