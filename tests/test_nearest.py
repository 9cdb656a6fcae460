"""Nearest solutions: exact against a brute-force geodesic computation on the same rows."""
import pytest
from pyproj import Geod
from sqlalchemy import text

from mapservice import mercator
from mapservice.search import mercator_box

GEOD = Geod(ellps="WGS84")


def brute_force_nearest(engine, lon, lat, k):
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT s.id, ST_X(site.geom), ST_Y(site.geom) FROM solution s JOIN site ON site.id = s.site_id
            WHERE s.status = 'published' AND site.status = 'published'""")).all()
    lons = [r[1] for r in rows]
    lats = [r[2] for r in rows]
    _, _, dist = GEOD.inv([lon] * len(rows), [lat] * len(rows), lons, lats)
    ranked = sorted(zip(dist, [r[0] for r in rows]))
    return ranked[:k], ranked


@pytest.mark.parametrize("place, lat, lon", [
    ("Lyon, place Bellecour", 45.7578, 4.8320),
    ("Villeurbanne", 45.7719, 4.8902),
    ("a village in Lozère", 44.5180, 3.5000),
    ("Brest", 48.3904, -4.4861),
    ("Saint-Denis de La Réunion", -20.8821, 55.4507),
    ("the middle of the Atlantic", 45.0, -30.0),
])
def test_nearest_ten_match_a_brute_force_geodesic_ranking(client, engine, place, lat, lon):
    response = client.get(f"/api/v1/solutions/nearest?lat={lat}&lon={lon}")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    features = response.get_json()["features"]
    expected, ranked = brute_force_nearest(engine, lon, lat, 10)
    got = [f["properties"]["distance_km"] * 1000 for f in features]
    assert len(features) == 10
    assert got == sorted(got)
    for mine, (theirs, _) in zip(got, expected):
        assert abs(mine - theirs) < 1.5, place  # metres; distance_km is rounded to the metre
    # Same solutions, up to ties at the 10th distance.
    cutoff = expected[-1][0]
    must_have = {sid for d, sid in ranked if d < cutoff - 1}
    may_have = {sid for d, sid in ranked if d <= cutoff + 1}
    ids = {f["id"] for f in features}
    assert must_have <= ids <= may_have


def test_features_are_rfc7946_points_with_what_a_young_person_needs(client):
    feature = client.get("/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&limit=1").get_json()["features"][0]
    lon, lat = feature["geometry"]["coordinates"]
    assert 4 < lon < 6 and 45 < lat < 46  # lon first
    props = feature["properties"]
    for key in ("type", "type_label", "title", "site_name", "commune_name", "distance_km", "vacant_places",
                "position_precision", "last_checked_at", "is_example"):
        assert key in props


def test_a_nearest_feature_is_the_solution_as_the_api_lists_it_with_its_distance(fresh_client, fresh_engine):
    """PostgreSQL writes the nearest search's features; the OGC collection shapes the same solutions in Python.
    Both give the same feature, down to labels, escaped text, timestamps and rounded coordinates."""
    near = "/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&limit=40"
    first, second = fresh_client.get(near).get_json()["features"][:2]
    with fresh_engine.begin() as conn:
        conn.execute(text("""UPDATE solution SET title = :title, voie = 'professionnelle', capacity = NULL,
                                 last_checked_at = '2026-03-04 05:06:07.000120+01', start_date = '2026-09-01'
                             WHERE id = :id"""), {"id": first["id"], "title": 'Bac pro « métiers » \\ "test" 🚀'})
        conn.execute(text("""UPDATE solution SET type = 'service_civique', service_civique_formula = 'combinee',
                                 last_checked_at = '2026-03-04 05:06:07+00' WHERE id = :id"""), {"id": second["id"]})
        conn.execute(text("""UPDATE site SET geom = ST_SetSRID(ST_MakePoint(4.8320005, 45.7578125), 4326)
                             WHERE id = :id"""), {"id": first["properties"]["site_id"]})
    body = fresh_client.get(near).get_json()
    expected, _ = brute_force_nearest(fresh_engine, 4.8320, 45.7578, 40)
    assert [f["id"] for f in body["features"]][:2] == [first["id"], second["id"]]
    for feature, (metres, solution_id) in zip(body["features"], expected):
        listed = fresh_client.get(f"/api/v1/ogc/collections/solutions/items/{feature['id']}").get_json()
        properties = dict(feature["properties"])
        assert abs(properties.pop("distance_km") * 1000 - metres) < 1.5
        assert (feature["type"], feature["id"], feature["geometry"], properties) == \
            (listed["type"], listed["id"], listed["geometry"], listed["properties"])
    assert body["features"][0]["properties"]["title"] == 'Bac pro « métiers » \\ "test" 🚀'
    assert body["features"][0]["properties"]["last_checked_at"] == "2026-03-04T04:06:07.000120+00:00"
    assert body["features"][0]["geometry"]["coordinates"] == [4.832001, 45.757813]  # halves away from zero


def test_the_origin_commune_is_reported(client):
    body = client.get("/api/v1/solutions/nearest?lat=48.8588&lon=2.3795").get_json()
    assert body["origin"]["commune"]["code"] == "75111"


def test_limit_is_honoured(client):
    assert len(client.get("/api/v1/solutions/nearest?lat=45.75&lon=4.83&limit=3").get_json()["features"]) == 3


def test_unpublished_solutions_are_never_returned(fresh_client, fresh_engine):
    first = fresh_client.get("/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&limit=1").get_json()["features"][0]
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE solution SET status = 'draft' WHERE id = :id"), {"id": first["id"]})
    ids = [f["id"] for f in
           fresh_client.get("/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&limit=20").get_json()["features"]]
    assert first["id"] not in ids


@pytest.mark.parametrize("query, parameter", [
    ("lon=4.8", "lat"),
    ("lat=45.7", "lon"),
    ("lat=abc&lon=4.8", "lat"),
    ("lat=95&lon=4.8", "lat"),
    ("lat=45&lon=200", "lon"),
    ("lat=nan&lon=4.8", "lat"),
    ("lat=45&lon=4.8&limit=0", "limit"),
    ("lat=45&lon=4.8&limit=1000", "limit"),
    ("lat=45&lon=4.8&limit=ten", "limit"),
])
def test_bad_parameters_get_a_clear_400(client, query, parameter):
    response = client.get(f"/api/v1/solutions/nearest?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["parameter"] == parameter
    assert f"'{parameter}'" in body["detail"]


def test_unknown_urls_answer_problem_json_404(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def nearest(client, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/api/v1/solutions/nearest?lat=45.7578&lon=4.8320&{query}")
    assert response.status_code == 200, response.get_json()
    return [f["properties"] for f in response.get_json()["features"]]


def test_filter_by_type_and_service_civique_formula(client):
    found = nearest(client, type="service_civique", formula="combinee", limit=5)
    assert found and all(p["type"] == "service_civique" and p["service_civique_formula"] == "combinee"
                         for p in found)
    both = nearest(client, type="apprentissage,structure_innovante", limit=20)
    assert {p["type"] for p in both} == {"apprentissage", "structure_innovante"}


def test_filter_has_vacancy_and_voie(client):
    found = nearest(client, has_vacancy="true", limit=20)
    assert found and all(p["vacant_places"] > 0 for p in found)
    pro = nearest(client, voie="professionnelle", limit=20)
    assert pro and all(p["voie"] == "professionnelle" for p in pro)


def test_filter_domain_ignores_accents_and_case(client):
    assert {p["domain"] for p in nearest(client, domain="solidarite")} == {"Solidarité"}


def test_filter_level_ignores_accents_and_case_and_a_level_nobody_offers_finds_nothing(client):
    assert {p["level"] for p in nearest(client, level="SECONDE A TERMINALE", limit=50)} == {"Seconde à terminale"}
    assert nearest(client, level="Licence professionnelle") == []
    assert nearest(client, level="cap", domain="cuisine") != []


def test_an_unknown_filter_value_is_a_clear_400(client):
    response = client.get("/api/v1/solutions/nearest?lat=45.75&lon=4.83&type=lycee,cfa")
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert "'lycee'" in detail and "places_lycee" in detail  # says what is allowed


def test_responses_are_gzipped_when_the_client_accepts_it(client):
    response = client.get("/api/v1/solutions/nearest?lat=45.75&lon=4.83&limit=20",
                          headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    import gzip
    import json
    assert len(json.loads(gzip.decompress(response.data))["features"]) == 20


@pytest.mark.parametrize("lat, lon", [(89.9, 0), (-89.9, 0), (-14.3, 179.9), (-14.3, -179.9)])
def test_origins_near_the_poles_or_the_antimeridian_still_get_the_nearest_solutions(client, engine, lat, lon):
    # Web Mercator (whose index finds the candidates) stops at ±85° and cuts the globe at ±180°: the answer must
    # stay exact across both.
    response = client.get(f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=3")
    assert response.status_code == 200
    got = [f["properties"]["distance_km"] * 1000 for f in response.get_json()["features"]]
    expected, _ = brute_force_nearest(engine, lon, lat, 3)
    assert len(got) == 3
    assert all(abs(a - b) < 1.5 for a, (b, _) in zip(got, expected))


@pytest.mark.parametrize("lat, lon", [(0, 4.83), (45.76, 4.83), (-21.1, 55.5), (60, 10), (80, 10), (84.99, 10),
                                      (-70, 4.83), (45.76, 179.99), (45.76, -179.99)])
def test_the_mercator_box_holds_every_point_within_reach_of_the_origin(engine, lat, lon):
    """The search's candidates are the solutions in this box: a point within reach left outside would be missing
    from the answer. Points all around the origin at several distances, on the WGS84 spheroid."""
    with engine.connect() as conn:
        outside = conn.execute(text(f"""
            SELECT r.metres, azimuth FROM (VALUES (10::float8), (2000), (50000), (400000), (3000000)) AS r(metres),
                 generate_series(0, 355, 5) AS azimuth,
                 LATERAL (SELECT ST_Project(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, r.metres,
                                            radians(azimuth))::geometry AS point) p
            WHERE abs(ST_Y(p.point)) < 85
              AND NOT {mercator.point("ST_X(p.point)", "ST_Y(p.point)")} <@ {mercator_box("r.metres")}"""),
                               {"lon": lon, "lat": lat}).all()
    assert outside == []
