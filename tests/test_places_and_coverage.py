"""The search box (communes, arrondissements, postcodes, départements, régions) and "who covers my area"."""
import pytest
from pyproj import Geod
from sqlalchemy import text

GEOD = Geod(ellps="WGS84")


def places(client, q, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/api/v1/places?q={q}&{query}")
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/geo+json"
    return [f["properties"] for f in response.get_json()["features"]]


@pytest.mark.parametrize("typed, kind, code", [
    ("villeurbane", "commune", "69266"),  # a letter missing
    ("VILLEURBANNE", "commune", "69266"),
    ("st etienne", "commune", "42218"),
    ("saint-étienne", "commune", "42218"),
    ("Saint Etienne", "commune", "42218"),
    ("st etiene", "commune", "42218"),
    ("ste foy les lyon", "commune", "69202"),
    ("paris", "commune", "75056"),  # the city before its arrondissements and its département
    ("paris 6", "commune", "75106"),
    ("Paris 6e", "commune", "75106"),
    ("paris 6eme arrondissement", "commune", "75106"),
    ("lyon 1er", "commune", "69381"),
    ("marseille 13", "commune", "13213"),
    ("lyon", "commune", "69123"),
    ("75006", "postcode", "75006"),
    ("69100", "postcode", "69100"),
    ("69", "departement", "69"),
    ("2a", "departement", "2A"),
    ("rhône", "departement", "69"),
    ("bretagne", "region", "53"),
    ("ile-de-france", "region", "11"),
])
def test_the_first_place_is_the_one_meant(client, typed, kind, code):
    first = places(client, typed)[0]
    assert (first["kind"], first["code"]) == (kind, code)
    assert first["nearest_query"] == f"{kind}={code}"


def test_a_commune_comes_with_its_postcodes_even_a_city_of_arrondissements(client):
    lyon = places(client, "lyon", kind="commune", limit=1)[0]
    assert lyon["postcodes"] == [f"6900{i}" for i in range(1, 10)]
    assert lyon["label"] == "Lyon (69)" and lyon["departement_name"] == "Rhône"
    sixth = places(client, "paris 6", limit=1)[0]
    assert sixth["is_arrondissement"] and sixth["postcodes"] == ["75006"]


def test_a_postcode_lists_the_communes_it_serves(client, engine):
    with engine.connect() as conn:
        expected = set(conn.scalars(text("SELECT code FROM commune WHERE postcodes @> ARRAY['01100'::varchar]")))
    place = places(client, "01100")[0]
    assert place["kind"] == "postcode" and {c["code"] for c in place["communes"]} == expected
    assert len(expected) > 1


def test_a_postcode_prefix_lists_postcodes_most_populous_first(client):
    found = places(client, "6900", kind="postcode", limit=9)
    assert {p["code"] for p in found} == {f"6900{i}" for i in range(1, 10)}
    populations = [p["population"] for p in found]
    assert populations == sorted(populations, reverse=True)


def test_kind_and_limit_are_honoured_and_places_have_a_point_and_a_bbox(client):
    response = client.get("/api/v1/places?q=saint&kind=commune&limit=5").get_json()
    assert len(response["features"]) == 5
    for feature in response["features"]:
        assert feature["properties"]["kind"] == "commune"
        west, south, east, north = feature["bbox"]
        lon, lat = feature["geometry"]["coordinates"]
        assert west <= lon <= east and south <= lat <= north


def test_an_unknown_place_gives_an_empty_list(client):
    assert places(client, "zzqxw") == []


def test_who_covers_a_commune(client, engine):
    body = client.get("/api/v1/coverage?commune=42218").get_json()
    assert body["commune"]["name"] == "Saint-Étienne"
    assert body["academie"] == {"code": "10", "name": "Lyon"}
    assert body["departement"]["code"] == "42"
    assert body["psad_platform"]["contact"]["email"] and "Loire" in body["psad_platform"]["name"]
    assert body["foquale_network"]["name"].endswith("Loire")
    kinds = [f["properties"]["kind"] for f in body["reception"]["features"]]
    assert kinds == ["cio", "mlds"]


def test_who_covers_a_position_in_an_arrondissement(client):
    body = client.get("/api/v1/coverage?lat=48.8462&lon=2.3371").get_json()  # Jardin du Luxembourg
    assert body["commune"] == {"code": "75106", "name": "Paris 6e Arrondissement", "is_arrondissement": True}
    assert body["academie"]["name"] == "Paris"
    assert body["psad_platform"] is not None


@pytest.mark.parametrize("commune", ["29019", "48095", "97411", "2A004"])
def test_the_reception_places_are_the_geodesically_nearest(client, engine, commune):
    body = client.get(f"/api/v1/coverage?commune={commune}").get_json()
    with engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(town_hall), ST_Y(town_hall) FROM commune WHERE code = :c"),
                                {"c": commune}).one()
        sites = conn.execute(text("SELECT id, kind, ST_X(geom), ST_Y(geom) FROM site "
                                  "WHERE kind IN ('cio', 'mlds') AND status = 'published'")).all()
    for feature in body["reception"]["features"]:
        kind = feature["properties"]["kind"]
        of_kind = [s for s in sites if s[1] == kind]
        _, _, dist = GEOD.inv([lon] * len(of_kind), [lat] * len(of_kind), [s[2] for s in of_kind],
                              [s[3] for s in of_kind])
        nearest = min(dist)
        assert abs(feature["properties"]["distance_km"] * 1000 - nearest) < 1.5


def test_a_position_outside_any_commune_says_so(client):
    response = client.get("/api/v1/coverage?lat=45&lon=-30")
    assert response.status_code == 404
    assert "inversées" in response.get_json()["detail"]
