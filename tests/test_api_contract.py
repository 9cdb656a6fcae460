"""The contract with app developers: the OpenAPI document is valid and every sampled answer matches it, errors are
clear problem+json 4xx, conditional GETs answer 304 (gzip too), caching and CORS headers are set."""
import json

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_spec_validator import validate

from mapservice import create_app

SAMPLES = [
    "/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&limit=20",
    "/api/v1/solutions/nearest?commune=69123&in_area=true&type=apprentissage,service_civique&has_vacancy=true",
    "/api/v1/solutions/nearest?postcode=75006&voie=professionnelle&radius=5",
    "/api/v1/solutions/nearest?departement=974&formula=combinee&open_to_minors=true&starts_before=2030-01-01",
    "/api/v1/solutions/nearest?region=53&level=CAP&domain=cuisine&limit=3",
    "/api/v1/solutions/nearest?lat=45&lon=-30&limit=2",
    "/api/v1/places?q=villeurbane",
    "/api/v1/places?q=69",
    "/api/v1/places?q=6900&kind=postcode",
    "/api/v1/places?q=bretagne&kind=region,departement",
    "/api/v1/coverage?commune=13213",
    "/api/v1/coverage?lat=48.3904&lon=-4.4861",
    "/api/v1/ogc/",
    "/api/v1/ogc/conformance",
    "/api/v1/ogc/collections",
    "/api/v1/ogc/collections/solutions",
    "/api/v1/ogc/collections/solutions/items?bbox=4.7,45.7,4.95,45.85&limit=5",
    "/api/v1/ogc/collections/solutions/items?properties=title,type&type=greta",
    "/api/v1/openapi.json",
    "/api/v1/docs",
]

BAD_REQUESTS = [
    # (url, status, parameter, words the message must contain)
    ("/api/v1/solutions/nearest", 400, "lat", "lat"),
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&commune=69123", 400, "commune", "un seul"),
    ("/api/v1/solutions/nearest?lat=145&lon=4.8", 400, "lat", "-90"),
    ("/api/v1/solutions/nearest?commune=6912", 400, "commune", "INSEE"),
    ("/api/v1/solutions/nearest?commune=99999", 404, "commune", "99999"),
    ("/api/v1/solutions/nearest?postcode=00000", 404, "postcode", "00000"),
    ("/api/v1/solutions/nearest?departement=6", 400, "departement", "2A"),
    ("/api/v1/solutions/nearest?departement=20", 404, "departement", "20"),
    ("/api/v1/solutions/nearest?departement=99", 404, "departement", "99"),
    ("/api/v1/solutions/nearest?region=1", 400, "region", "84"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&radius=500", 400, "radius", "200 km"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&radius=-3", 400, "radius", "positif"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&radius=abc", 400, "radius", "nombre"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&in_area=true", 400, "in_area", "commune"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&type=cfa", 400, "type", "apprentissage"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&voie=pro", 400, "voie", "professionnelle"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&formula=mi-temps", 400, "formula", "combinee"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&has_vacancy=peut-etre", 400, "has_vacancy", "true"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&starts_before=demain", 400, "starts_before", "AAAA-MM-JJ"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&after=xyz", 400, "after", "next"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&limit=101", 400, "limit", "100"),
    ("/api/v1/solutions/nearest?lat=45&lon=4&typ=e2c", 400, "typ", "Paramètre inconnu"),
    ("/api/v1/solutions/abc", 400, "id", "entier"),
    ("/api/v1/solutions/999999999", 404, "id", "999999999"),
    ("/api/v1/sites/999999999", 404, "id", "999999999"),
    ("/api/v1/places", 400, "q", "2 caractères"),
    ("/api/v1/places?q=a", 400, "q", "2 caractères"),
    ("/api/v1/places?q=" + "x" * 101, 400, "q", "100"),
    ("/api/v1/places?q=lyon&kind=ville", 400, "kind", "commune"),
    ("/api/v1/places?q=lyon&limit=50", 400, "limit", "20"),
    ("/api/v1/coverage", 400, "lat", "commune"),
    ("/api/v1/coverage?departement=69", 400, "departement", "Paramètre inconnu"),
    ("/api/v1/coverage?commune=00000", 404, "commune", "00000"),
    ("/api/v1/ogc/collections/solutions/items?bbox=1,2,3", 400, "bbox", "ouest,sud,est,nord"),
    ("/api/v1/ogc/collections/solutions/items?bbox=5,46,4,47", 400, "bbox", "antiméridien"),
    ("/api/v1/ogc/collections/solutions/items?bbox=4,47,5,46", 400, "bbox", "sud > nord"),
    ("/api/v1/ogc/collections/solutions/items?limit=5000", 400, "limit", "1000"),
    ("/api/v1/ogc/collections/solutions/items?properties=title,secret", 400, "properties", "'secret'"),
    ("/api/v1/ogc/collections/solutions/items?f=html", 400, "f", "json"),
    ("/api/v1/ogc/collections/solutions/items/abc", 400, "id", "entier"),
    ("/api/v1/ogc/collections/nope/items", 404, "collectionId", "solutions"),
]


@pytest.fixture(scope="module")
def openapi(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(spec)
    json_types = ("application/geo+json", "application/problem+json", "application/vnd.oai.openapi+json")
    return OpenAPI.from_dict(spec, config=Config(
        extra_media_type_deserializers={media_type: json.loads for media_type in json_types}))


def test_the_openapi_document_is_valid_openapi_3(openapi):
    assert openapi is not None


@pytest.mark.parametrize("url", SAMPLES)
def test_real_answers_match_the_openapi_document(client, openapi, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    openapi.validate_request(WerkzeugOpenAPIRequest(response.request))
    openapi.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))


@pytest.mark.parametrize("url, status, parameter, words", BAD_REQUESTS)
def test_bad_requests_get_a_clear_problem_json(client, openapi, url, status, parameter, words):
    response = client.get(url)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["parameter"] == parameter
    assert words in body["detail"], body["detail"]
    openapi.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))


def test_the_documentation_page_is_served_locally_and_lists_every_operation(client, openapi):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    spec = client.get("/api/v1/openapi.json").get_json()
    for operation in (op for item in spec["paths"].values() for op in item.values()):
        assert f'id="{operation["operationId"]}"' in html
    assert "distance_km" in html and "how_to_apply" in html
    assert "http://" not in html.replace("http://www.opengis.net", "") and "https://" not in html  # no CDN


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_if_none_match_answers_304_with_or_without_gzip(client, encoding):
    url = "/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&limit=20"
    first = client.get(url, headers={"Accept-Encoding": encoding})
    etag = first.headers["ETag"]
    assert first.headers.get("Content-Encoding", "identity") == encoding
    assert "public" in first.headers["Cache-Control"] and "max-age=" in first.headers["Cache-Control"]
    again = client.get(url, headers={"Accept-Encoding": encoding, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    other = client.get(url.replace("limit=20", "limit=19"), headers={"If-None-Match": etag})
    assert other.status_code == 200


def test_errors_are_not_cached(client):
    response = client.get("/api/v1/solutions/nearest?lat=95&lon=4")
    assert "ETag" not in response.headers and "max-age" not in response.headers.get("Cache-Control", "")


def test_cors_only_for_configured_origins(client, database_url):
    assert "Access-Control-Allow-Origin" not in client.get(
        "/api/v1/places?q=lyon", headers={"Origin": "https://masecondechance.fr"}).headers
    app = create_app({"database": {"url": database_url}, "api": {"cors_origins": ["https://masecondechance.fr"]}})
    try:
        with app.test_client() as allowed:
            ok = allowed.get("/api/v1/places?q=lyon", headers={"Origin": "https://masecondechance.fr"})
            assert ok.headers["Access-Control-Allow-Origin"] == "https://masecondechance.fr"
            assert "ETag" in ok.headers.get("Access-Control-Expose-Headers", "")
            other = allowed.get("/api/v1/places?q=lyon", headers={"Origin": "https://evil.example"})
            assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        app.extensions["mapservice.databases"].dispose()
