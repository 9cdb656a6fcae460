"""Nearest solutions from a position or an area, with every filter, the automatic radius and the next pages:
each answer compared with a brute-force geodesic ranking (pyproj) of the same published rows."""
import datetime as dt
from urllib.parse import urlsplit

import pytest
from pyproj import Geod
from sqlalchemy import text

GEOD = Geod(ellps="WGS84")
STEPS_KM = (10, 30, 60, 100)


@pytest.fixture(scope="module")
def catalogue(engine):
    """Every published solution of a published site, with what the filters and areas look at."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("""
            SELECT s.id, ST_X(site.geom) AS lon, ST_Y(site.geom) AS lat, s.type, s.voie,
                   s.service_civique_formula AS formula, s.level, s.domain, s.vacant_places, s.min_age,
                   s.start_date, c.code AS commune_code, c.parent_code, c.departement_code, c.region_code,
                   c.postcodes
            FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code
            WHERE s.status = 'published' AND site.status = 'published'""")).mappings()]


def town_hall(engine, code):
    with engine.connect() as conn:
        return conn.execute(text("SELECT ST_X(town_hall), ST_Y(town_hall) FROM commune WHERE code = :c"),
                            {"c": code}).one()


def ranked(rows, lon, lat):
    if not rows:
        return []
    _, _, dist = GEOD.inv([lon] * len(rows), [lat] * len(rows), [r["lon"] for r in rows], [r["lat"] for r in rows])
    return sorted(zip(dist, (r["id"] for r in rows)))


def assert_same_ranking(features, expected):
    """Same distances in the same order (to the metre), same solutions up to ties at the last distance."""
    got = [f["properties"]["distance_km"] * 1000 for f in features]
    assert len(got) == len(expected)
    assert got == sorted(got)
    for mine, (theirs, _) in zip(got, expected):
        assert abs(mine - theirs) < 1.5
    if expected:
        cutoff = expected[-1][0]
        ids = {f["id"] for f in features}
        assert {i for d, i in expected if d < cutoff - 1} <= ids


def get(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("query, keep", [
    ("type=apprentissage,e2c", lambda r: r["type"] in ("apprentissage", "e2c")),
    ("voie=technologique", lambda r: r["voie"] == "technologique"),
    ("formula=plein_temps", lambda r: r["formula"] == "plein_temps"),
    ("level=cap", lambda r: (r["level"] or "").lower() == "cap"),
    ("domain=automobile", lambda r: "automobile" in (r["domain"] or "").lower()),
    ("has_vacancy=true", lambda r: (r["vacant_places"] or 0) > 0),
    ("open_to_minors=true", lambda r: r["min_age"] is None or r["min_age"] < 18),
    ("type=epide&open_to_minors=oui", lambda r: r["type"] == "epide" and (r["min_age"] is None or r["min_age"] < 18)),
    ("type=service_civique&has_vacancy=1&formula=combinee",
     lambda r: r["type"] == "service_civique" and (r["vacant_places"] or 0) > 0 and r["formula"] == "combinee"),
])
def test_every_filter_gives_the_brute_force_nearest_of_the_matching_rows(client, catalogue, query, keep):
    lon, lat = 1.4442, 43.6047  # Toulouse
    body = get(client, f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=15&{query}")
    expected = ranked([r for r in catalogue if keep(r)], lon, lat)[:15]
    assert expected, "the demo catalogue should hold matching rows"
    assert_same_ranking(body["features"], expected)


def test_starts_before_keeps_solutions_without_a_date_and_those_starting_in_time(fresh_client, fresh_engine):
    lon, lat = 4.8320, 45.7578
    first = get(fresh_client, f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=1")["features"][0]["id"]
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE solution SET start_date = '2031-09-01' WHERE id = :id"), {"id": first})
    before = get(fresh_client, f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=5&starts_before=2031-08-31")
    assert first not in [f["id"] for f in before["features"]]
    on_time = get(fresh_client, f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=5&starts_before=2031-09-01")
    assert on_time["features"][0]["id"] == first
    assert on_time["features"][0]["properties"]["start_date"] == "2031-09-01"


@pytest.mark.parametrize("lat, lon, query", [
    (45.7578, 4.8320, ""),  # Lyon: dense
    (44.5180, 3.5000, "type=apprentissage"),  # Lozère, a rare type: wider
    (48.3904, -4.4861, "type=e2c"),  # Brest
    (45.0, -30.0, ""),  # the Atlantic: nothing within 100 km
])
def test_without_a_radius_the_search_widens_until_it_has_enough_and_says_how_far(client, catalogue, lat, lon, query):
    keep = (lambda r: r["type"] == query.split("=")[1]) if query else (lambda r: True)
    expected = ranked([r for r in catalogue if keep(r)], lon, lat)[:10]
    body = get(client, f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=10&{query}")
    tenth_km = expected[-1][0] / 1000
    assert body["radius_automatic"] is True
    assert body["radius_km"] == next((s for s in STEPS_KM if tenth_km <= s), None)
    assert_same_ranking(body["features"], expected)


def test_an_explicit_radius_bounds_the_results(client, catalogue):
    lon, lat = 3.5000, 44.5180
    body = get(client, f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&radius=25&limit=100")
    expected = [(d, i) for d, i in ranked(catalogue, lon, lat) if d <= 25_000][:100]
    assert body["radius_km"] == 25 and body["radius_automatic"] is False
    assert 0 < len(expected) < 100
    assert_same_ranking(body["features"], expected)


def test_from_a_commune_distances_start_at_its_town_hall(client, engine, catalogue):
    lon, lat = town_hall(engine, "69266")
    body = get(client, "/api/v1/solutions/nearest?commune=69266&limit=12")
    assert body["origin"]["area"] == {"kind": "commune", "code": "69266", "name": "Villeurbanne"}
    assert (body["origin"]["lon"], body["origin"]["lat"]) == (lon, lat)
    assert body["origin"]["in_area"] is False
    assert_same_ranking(body["features"], ranked(catalogue, lon, lat)[:12])


def test_from_a_city_with_arrondissements_in_area_keeps_the_whole_city(client, catalogue):
    body = get(client, "/api/v1/solutions/nearest?commune=69123&in_area=true&limit=100&type=apprentissage")
    lon, lat = body["origin"]["lon"], body["origin"]["lat"]
    inside = [r for r in catalogue if r["type"] == "apprentissage" and "69123" in (r["commune_code"], r["parent_code"])]
    assert inside
    assert_same_ranking(body["features"], ranked(inside, lon, lat)[:100])


def test_from_a_postcode_starts_at_its_arrondissement(client, engine, catalogue):
    body = get(client, "/api/v1/solutions/nearest?postcode=75006&limit=5&in_area=true")
    assert body["origin"]["area"]["name"] == "Paris 6e Arrondissement"
    assert (body["origin"]["lon"], body["origin"]["lat"]) == town_hall(engine, "75106")
    inside = [r for r in catalogue if "75006" in r["postcodes"]]
    assert_same_ranking(body["features"], ranked(inside, body["origin"]["lon"], body["origin"]["lat"])[:5])


@pytest.mark.parametrize("query, column, code, seat", [
    ("departement=42", "departement_code", "42", "42218"),  # from Saint-Étienne, in the Loire only
    ("region=53&type=places_lycee", "region_code", "53", "35238"),  # from Rennes, in Bretagne only
    ("departement=2a", "departement_code", "2A", "2A004"),
])
def test_from_a_departement_or_region_results_stay_inside_by_default(client, engine, catalogue, query, column, code,
                                                                     seat):
    body = get(client, f"/api/v1/solutions/nearest?{query}&limit=30")
    assert body["origin"]["in_area"] is True
    assert (body["origin"]["lon"], body["origin"]["lat"]) == town_hall(engine, seat)
    inside = [r for r in catalogue if r[column] == code and ("type" not in query or r["type"] == "places_lycee")]
    assert_same_ranking(body["features"], ranked(inside, body["origin"]["lon"], body["origin"]["lat"])[:30])
    everywhere = get(client, f"/api/v1/solutions/nearest?{query}&limit=30&in_area=false")
    assert everywhere["origin"]["in_area"] is False


@pytest.mark.parametrize("query, inside_area", [
    ("departement=35&type=places_lycee", lambda r: r["departement_code"] == "35"),  # up to its borders
    ("region=94&type=places_lycee,mission_locale", lambda r: r["region_code"] == "94"),
    ("departement=35&type=epide,e2c", lambda r: r["departement_code"] == "35"),
    ("commune=69123&in_area=true&type=e2c,mission_locale", lambda r: "69123" in (r["commune_code"], r["parent_code"])),
    ("postcode=75006&in_area=true&type=accueil_orientation", lambda r: "75006" in r["postcodes"]),
])
def test_an_area_holding_fewer_matches_than_asked_gives_all_of_them_and_nothing_else(client, catalogue, query,
                                                                                     inside_area):
    types = query.split("type=")[1].split(",")
    body = get(client, f"/api/v1/solutions/nearest?{query}&limit=100")
    inside = [r for r in catalogue if inside_area(r) and r["type"] in types]
    assert len(inside) < 100
    assert_same_ranking(body["features"], ranked(inside, body["origin"]["lon"], body["origin"]["lat"]))


def test_next_links_walk_the_ranking_without_gaps_or_repeats(client, catalogue):
    lon, lat = 2.3522, 48.8566
    expected = ranked(catalogue, lon, lat)[:45]
    url, seen = f"/api/v1/solutions/nearest?lat={lat}&lon={lon}&limit=20", []
    for _ in range(3):
        body = get(client, url)
        seen += body["features"]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        assert nxt
        parts = urlsplit(nxt[0])
        url = f"{parts.path}?{parts.query}"
    assert len({f["id"] for f in seen}) == 60
    assert_same_ranking(seen[:45], expected)


def test_a_site_that_is_not_published_hides_its_solutions(fresh_client, fresh_engine):
    first = get(fresh_client, "/api/v1/solutions/nearest?lat=43.2965&lon=5.3698&limit=1")["features"][0]
    site_id = first["properties"]["site_id"]
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE site SET status = 'archived' WHERE id = :id"), {"id": site_id})
    ids = {f["properties"]["site_id"] for f in
           get(fresh_client, "/api/v1/solutions/nearest?lat=43.2965&lon=5.3698&limit=50")["features"]}
    assert site_id not in ids
    get(fresh_client, f"/api/v1/sites/{site_id}", status=404)
    get(fresh_client, f"/api/v1/solutions/{first['id']}", status=404)
    get(fresh_client, f"/api/v1/ogc/collections/solutions/items/{first['id']}", status=404)


def test_one_solution_has_everything_needed_to_apply(client, engine):
    with engine.connect() as conn:
        solution_id = conn.execute(text(
            "SELECT id FROM solution WHERE is_example AND service_civique_formula = 'combinee' LIMIT 1")).scalar()
    feature = get(client, f"/api/v1/solutions/{solution_id}")
    props = feature["properties"]
    assert props["service_civique_formula"] == "combinee"
    assert props["hours_per_week"] == 21 and props["school_hours_per_week"] == 10
    assert props["how_to_apply"] and props["eligibility"]
    assert props["vacant_places"] is not None
    assert dt.datetime.fromisoformat(props["last_checked_at"])
    site = props["site"]
    assert site["contact"]["phone"] and site["address"] and site["position_precision"] == "address"
    assert feature["geometry"]["coordinates"] == get(client, f"/api/v1/sites/{site['id']}")["geometry"]["coordinates"]


def test_one_site_lists_its_published_solutions(client, engine):
    with engine.connect() as conn:
        site_id, count = conn.execute(text("""
            SELECT site_id, count(*) FROM solution WHERE is_example AND status = 'published'
            GROUP BY site_id HAVING count(*) > 1 LIMIT 1""")).one()
    props = get(client, f"/api/v1/sites/{site_id}")["properties"]
    assert len(props["solutions"]) == count
    assert props["kind_label"] and props["opening_hours"]
