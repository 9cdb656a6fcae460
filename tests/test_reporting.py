"""The bimonthly report: its figures equal independent computations from the catalogue rows (counts in Python,
coverage with geopandas), a frozen period stays as it was, figures and objectives follow the workspace's
territories."""
from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import text

from mapservice.db import make_engine, transaction
from mapservice.errors import Conflict, Forbidden, InvalidParameter, StaleVersion
from mapservice.reporting import distances, figures, indicators, report
from mapservice.reporting.access import ReportScope, place_of, readable_scopes
from mapservice.reporting.periods import Period

from .conftest import throwaway_database
from .reporting_accounts import NATIONAL, academie_admin, curator

LYON, RHONE = "10", "69"
WGS84 = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def module_engine(server, template):
    """A copy of the demo database with a few edits of the period: a published and archived solution, a
    resolved error report, an unpublished site."""
    with throwaway_database(server, "mapservice_reporting", template=template) as url:
        engine = make_engine(url)
        with transaction(engine) as conn:
            conn.execute(text("""UPDATE solution SET status = 'archived' WHERE id IN (
                                   SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
                                   JOIN commune c ON c.code = site.commune_code
                                   WHERE c.departement_code = '69' ORDER BY s.id LIMIT 3)"""))
            conn.execute(text("""UPDATE site SET status = 'draft' WHERE id = (
                                   SELECT min(site.id) FROM site JOIN commune c ON c.code = site.commune_code
                                   WHERE c.departement_code = '38')"""))
            conn.execute(text("""INSERT INTO error_report (solution_id, reason, created_at)
                                 SELECT id, 'places', now() - interval '2 days' FROM solution
                                 WHERE status = 'published' ORDER BY id LIMIT 4"""))
            conn.execute(text("UPDATE error_report SET status = 'rejected' WHERE id = (SELECT min(id) FROM error_report)"))
            conn.execute(text("UPDATE solution SET last_checked_at = now() - interval '20 days' WHERE id % 7 = 0"))
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def current(module_engine):
    with transaction(module_engine) as conn:
        period = figures.today_period(conn)
        return period, report.live(conn, period)


def catalogue_rows(conn) -> list[dict]:
    return [dict(r) for r in conn.execute(text("""
        SELECT s.id, s.type, s.voie, s.status, site.status AS site_status, s.vacant_places, s.last_checked_at,
               s.published_at, s.archived_at, c.code, c.parent_code, c.academie_code, c.departement_code
        FROM solution s JOIN site ON site.id = s.site_id JOIN commune c ON c.code = site.commune_code""")).mappings()]


def test_counts_equal_those_computed_from_the_catalogue_rows(module_engine, current):
    period, live = current
    with module_engine.connect() as conn:
        rows = catalogue_rows(conn)
        perimeter = dict(conn.execute(text("SELECT commune_code, platform_id FROM psad_platform_commune")).all())
    start, end, now = live["start"], live["end"], dt.datetime.fromisoformat(live["computed_at"])
    in_period = lambda t: t is not None and start <= t.date().isoformat() <= end  # noqa: E731
    platform_of = lambda r: perimeter.get(r["code"], perimeter.get(r["parent_code"]))  # noqa: E731
    platform = next(p for r in rows if r["departement_code"] == RHONE and (p := platform_of(r)))
    for key, belongs in [("national", lambda r: True), (f"academie:{LYON}", lambda r: r["academie_code"] == LYON),
                         (f"departement:{RHONE}", lambda r: r["departement_code"] == RHONE),
                         (f"platform:{platform}", lambda r: platform_of(r) == platform)]:
        mine = [r for r in rows if belongs(r)]
        published = [r for r in mine if r["status"] == "published" and r["site_status"] == "published"]
        cat = live["scopes"][key]["catalogue"]
        assert cat["published"] == len(published) > 0, key
        assert {t: v["published"] for t, v in cat["by_type"].items() if v["published"]} == Counter(
            r["type"] for r in published)
        assert cat["by_voie"] == Counter(r["voie"] for r in published if r["voie"])
        assert cat["vacant_places"] == sum(r["vacant_places"] or 0 for r in published)
        assert cat["new"] == sum(in_period(r["published_at"]) for r in mine)
        assert cat["archived"] == sum(in_period(r["archived_at"]) for r in mine)
        checked = [r for r in published if r["last_checked_at"] is not None]
        assert cat["checked_share"] == round(
            sum(now - r["last_checked_at"] < dt.timedelta(days=180) for r in checked) / len(published), 4)
        assert cat["never_checked"] == len(published) - len(checked)
        if checked:
            assert cat["median_check_age_days"] == pytest.approx(statistics.median(
                (now - r["last_checked_at"]).total_seconds() / 86400 for r in checked), abs=0.06)
    assert live["scopes"][f"departement:{RHONE}"]["catalogue"]["archived"] == 3
    reports = live["scopes"]["national"]["catalogue"]["reports"]
    assert (reports["received"], reports["resolved"]) == (4, 1)


def geodesic_coverage(conn, academie: str, solution_type: str) -> tuple[dict, set]:
    """Shares of the académie's population within 10/30/60 km of a published solution of the type, and its
    communes farther than 60 km, computed with geopandas (Lambert-93 nearest, then the WGS84 geodesic)."""
    communes = gpd.read_postgis(text("""
        SELECT c.code, coalesce(c.population, 0) AS population, c.town_hall AS geom FROM commune c
        WHERE c.academie_code = :a AND c.code NOT IN (SELECT parent_code FROM commune WHERE parent_code IS NOT NULL)
    """), conn, params={"a": academie}, geom_col="geom")
    solutions = gpd.read_postgis(text("""
        SELECT s.position::geometry AS geom FROM solution s JOIN site ON site.id = s.site_id
        WHERE s.status = 'published' AND site.status = 'published' AND s.type = :t"""), conn,
        params={"t": solution_type}, geom_col="geom")
    near = gpd.sjoin_nearest(communes.to_crs(2154), solutions.to_crs(2154).assign(sx=solutions.geometry.x,
                             sy=solutions.geometry.y), how="left", max_distance=61_000)
    near = near[~near.index.duplicated()]
    lon, lat = communes.geometry.x, communes.geometry.y
    found = near["sx"].notna()
    distance = gpd.pd.Series(float("inf"), index=communes.index)
    distance[found] = WGS84.inv(lon[found].values, lat[found].values, near.loc[found, "sx"].values,
                                near.loc[found, "sy"].values)[2]
    total = communes["population"].sum()
    shares = {f"within_{km}km": communes.loc[distance <= km * 1000, "population"].sum() / total for km in (10, 30, 60)}
    return shares, set(communes.loc[distance > 30_000, "code"])


@pytest.mark.parametrize("academie", [LYON, "01", "20"])  # Lyon, Paris, Corse
def test_coverage_shares_equal_a_geopandas_computation(module_engine, current, academie):
    _, live = current
    with module_engine.connect() as conn:
        for solution_type in ("structure_innovante", "places_lycee", "apprentissage", "mission_locale"):
            expected, far = geodesic_coverage(conn, academie, solution_type)
            got = live["scopes"][f"academie:{academie}"]["coverage"]["by_type"][solution_type]
            for band, share in expected.items():
                assert got[band] == pytest.approx(share, abs=0.001), (academie, solution_type, band)


def test_zones_blanches_are_the_communes_far_from_all_three_kinds(module_engine, current):
    _, live = current
    with module_engine.connect() as conn:
        far = set.intersection(*(geodesic_coverage(conn, LYON, t)[1]
                                 for t in ("structure_innovante", "apprentissage", "mission_locale")))
    zones = [z for z in live["zones_blanches"] if z["academie"] == LYON]
    assert {z["code"] for z in zones} == far
    assert live["scopes"][f"academie:{LYON}"]["zones_blanches"] == {
        "communes": len(zones), "population": sum(z["population"] for z in zones)}
    assert all(z["population"] >= zones[i + 1]["population"] for i, z in enumerate(zones[:-1]))


@pytest.mark.parametrize("solution_type", ["structure_innovante", "mission_locale", "e2c", "epide"])
def test_each_communes_distance_is_to_its_nearest_solution_on_the_ellipsoid(module_engine, current, solution_type):
    """Every commune of Lyon's and Corsica's académies measured to every published solution of the type (the
    WGS84 geodesic, pyproj): the stored distance is the smallest of all, and a commune without a row has none
    within 60 km."""
    with module_engine.connect() as conn:
        communes = conn.execute(text(f"""
            SELECT c.code, ST_X(c.town_hall), ST_Y(c.town_hall), d.distance_m FROM commune c
            LEFT JOIN reporting_commune_distance d ON d.commune_code = c.code AND d.type = :t
            WHERE c.academie_code IN ('{LYON}', '20') AND {distances.UNITS}"""), {"t": solution_type}).all()
        solutions = np.array(conn.execute(text("""
            SELECT ST_X(s.position::geometry), ST_Y(s.position::geometry) FROM solution s
            JOIN site ON site.id = s.site_id AND site.status = 'published'
            WHERE s.status = 'published' AND s.type = :t"""), {"t": solution_type}).all())
    assert len(solutions) and len(communes) > 1_000
    for code, lon, lat, stored in communes:
        nearest = WGS84.inv(np.full(len(solutions), lon), np.full(len(solutions), lat),
                            solutions[:, 0], solutions[:, 1])[2].min()
        if nearest <= distances.REACH_M:
            assert stored == pytest.approx(nearest, abs=0.01), code
        else:
            assert stored is None, code


DISTANCES = text("SELECT commune_code, type, round(distance_m) FROM reporting_commune_distance")


def test_distances_stay_correct_after_edits(fresh_engine):
    """A micro-lycée opened where there was none, a mission locale archived, a CFA moved, an E2C unpublished:
    the incremental refresh gives the very distances a full recomputation gives, and leaves the other types
    alone."""
    edited = ["structure_innovante", "mission_locale", "apprentissage", "e2c"]
    with fresh_engine.connect() as conn:
        before = set(conn.execute(DISTANCES).all())
    with transaction(fresh_engine) as conn:
        conn.execute(text("""
            WITH new_site AS (
                INSERT INTO site (name, kind, commune_code, geom, position_precision, status, source)
                SELECT 'Exemple — micro-lycée de test', 'micro_lycee', code, town_hall, 'address', 'published', 'manual'
                FROM commune WHERE code = '48095' RETURNING id)
            INSERT INTO solution (site_id, type, title, status, source, position)
            SELECT id, 'structure_innovante', 'Micro-lycée', 'published', 'manual', 'POINT(0 0)' FROM new_site"""))
        conn.execute(text("""UPDATE solution SET status = 'archived' WHERE id = (
                               SELECT min(id) FROM solution WHERE type = 'mission_locale')"""))
        conn.execute(text("""UPDATE site SET geom = ST_Translate(geom, 0.3, 0.2) WHERE id = (
                               SELECT min(site_id) FROM solution WHERE type = 'apprentissage')"""))
        conn.execute(text("""UPDATE site SET status = 'draft' WHERE id = (
                               SELECT min(site_id) FROM solution WHERE type = 'e2c')"""))
    with transaction(fresh_engine) as conn:
        refreshed = distances.refresh(conn)
        assert 0 < refreshed.recomputed < 10_000  # only around the edits, only the types edited
        incremental = set(conn.execute(DISTANCES).all())
        distances.recompute(conn, None, edited)  # every commune, from the rows
        full = set(conn.execute(DISTANCES).all())
    assert incremental == full
    assert ("48095", "structure_innovante", 0) in full and ("48095", "structure_innovante", 0) not in before
    assert {r for r in full if r[1] not in edited} == {r for r in before if r[1] not in edited}
    for solution_type in edited:
        assert {r for r in full if r[1] == solution_type} != {r for r in before if r[1] == solution_type}


def test_a_frozen_period_does_not_change_after_an_edit(fresh_engine):
    with transaction(fresh_engine) as conn:
        period = figures.today_period(conn)
        platform = conn.scalar(text("SELECT min(id) FROM psad_platform WHERE departement_code = '69'"))
        figures.enter(conn, NATIONAL, platform, period, figures.ActivityFigures(10, 8, 5, 2))
        figures.validate(conn, NATIONAL, platform, period, 1)
        assert report.freeze(conn, period)
        assert not report.freeze(conn, period)  # once only
    with transaction(fresh_engine) as conn:
        before = report.national(conn, period)
        conn.execute(text("UPDATE solution SET status = 'archived' WHERE type = 'structure_innovante'"))
        with pytest.raises(Conflict):
            figures.enter(conn, NATIONAL, platform, period, figures.ActivityFigures(99, 9, 9, 9), 2)
    with transaction(fresh_engine) as conn:
        after = report.national(conn, period)
        live = report.live(conn, period)
    assert after["frozen"] and after["scopes"] == before["scopes"]
    assert after["scopes"]["national"]["activity"]["contacted"] == 10
    assert live["scopes"]["national"]["catalogue"]["by_type"]["structure_innovante"]["published"] == 0
    assert after["scopes"]["national"]["catalogue"]["by_type"]["structure_innovante"]["published"] == 17


def test_an_old_period_never_frozen_has_no_report(engine):
    with engine.begin() as conn:
        with pytest.raises(Exception, match="pas été figée"):
            report.national(conn, figures.today_period(conn).previous().previous())


def test_figures_entered_by_the_platform_count_once_validated_by_the_academie(fresh_engine):
    with transaction(fresh_engine) as conn:
        period = figures.today_period(conn)
        platform = conn.scalar(text("SELECT min(id) FROM psad_platform WHERE departement_code = '69'"))
        team = curator(platforms=[platform])
        version = figures.enter(conn, team, platform, period, figures.ActivityFigures(40, 30, 20, 10))
        figures.set_objectives(conn, academie_admin(LYON), LYON, period.year, figures.Objectives(400, None, None, 50))
        pending = report.live(conn, period)["scopes"][f"academie:{LYON}"]
        assert pending["activity"]["contacted"] == 0 and pending["activity"]["platforms_pending"] == 1
        with pytest.raises(Forbidden):
            figures.validate(conn, team, platform, period, version)
        with pytest.raises(StaleVersion):
            figures.validate(conn, academie_admin(LYON), platform, period, version + 1)
        figures.validate(conn, academie_admin(LYON), platform, period, version)
        lyon = report.live(conn, period)["scopes"][f"academie:{LYON}"]
    assert lyon["activity"]["contacted"] == 40 and lyon["activity"]["platforms_validated"] == 1
    assert lyon["objectives"]["contacted"] == {"target": 400, "achieved": 40, "progress": 0.1}
    assert lyon["objectives"]["entered"]["progress"] == 0.2
    assert lyon["objectives"]["met"]["target"] is None


def test_figures_are_checked(engine):
    with pytest.raises(InvalidParameter, match="ne peut pas dépasser"):
        figures.ActivityFigures(10, 5, 6, 1)
    with pytest.raises(InvalidParameter) as refused:
        figures.ActivityFigures(-1, 0, 0, 0)
    assert refused.value.extra["parameter"] == "contacted"


def test_only_the_territory_enters_or_validates(fresh_engine):
    with transaction(fresh_engine) as conn:
        period = figures.today_period(conn)
        platform = conn.scalar(text("SELECT min(id) FROM psad_platform WHERE departement_code = '69'"))
        with pytest.raises(Forbidden):
            figures.enter(conn, curator(departements=["75"]), platform, period, figures.ActivityFigures(1, 1, 1, 1))
        with pytest.raises(Forbidden):
            figures.set_objectives(conn, academie_admin("01"), LYON, period.year, figures.Objectives(1, 1, 1, 1))
        figures.enter(conn, curator(departements=[RHONE]), platform, period, figures.ActivityFigures(1, 1, 1, 1))


def test_a_curator_sees_its_territory_and_national_sees_all(engine):
    with engine.connect() as conn:
        platform = conn.scalar(text("SELECT min(id) FROM psad_platform WHERE departement_code = '69'"))
        keys = lambda actor: {p.scope.key for p in readable_scopes(conn, actor)}  # noqa: E731
        total = conn.scalar(text("SELECT (SELECT count(*) FROM academie) + (SELECT count(*) FROM departement) + "
                                 "(SELECT count(*) FROM psad_platform WHERE status <> 'archived') + 1"))
        assert len(keys(NATIONAL)) == total
        rhone = keys(curator(departements=[RHONE]))
        assert f"departement:{RHONE}" in rhone and f"platform:{platform}" in rhone
        assert not {"national", f"academie:{LYON}", "departement:75"} & rhone
        lyon = keys(academie_admin(LYON))
        assert {f"academie:{LYON}", f"departement:{RHONE}", "departement:42", f"platform:{platform}"} <= lyon
        assert not {"national", "academie:01", "departement:75"} & lyon
        assert keys(curator(platforms=[platform])) == {f"platform:{platform}"}


def test_a_scope_report_lists_the_level_below_and_its_evolution(fresh_engine):
    with transaction(fresh_engine) as conn:
        period = figures.today_period(conn)
        report.freeze(conn, period.previous())
        view = report.for_scope(conn, place_of(conn, ReportScope("academie", LYON)), period)
    assert view["scope"]["name"] == "Lyon"
    assert {c["scope"]["kind"] for c in view["children"]} == {"departement", "platform"}
    assert {c["scope"]["code"] for c in view["children"] if c["scope"]["kind"] == "departement"} == {"01", "42", "69"}
    assert [e["period"] for e in view["evolution"]] == [period.previous().name, period.name]
    assert all(z["academie"] == LYON for z in view["zones_blanches_communes"])


@pytest.mark.parametrize("values", [[7], [1, 2], [5, 1, 1, 2], [0, 0, 0, 9], [3, 3, 8, 8, 8, 1, 40, 2, 2]])
def test_the_median_of_a_histogram_is_the_median_of_its_values(values):
    histogram = Counter(values)
    ages, counts = np.array(list(histogram)), np.array(list(histogram.values()))
    assert indicators.weighted_median(ages, counts) == statistics.median(values)
    assert indicators.weighted_median(np.array([4]), np.array([0])) is None


def test_periods_are_named_by_their_first_month():
    assert Period.parse("2026-11").label == "novembre–décembre 2026"
    assert Period.parse("2026-11").next() == Period(2027, 1)
    with pytest.raises(InvalidParameter) as refused:
        Period.parse("2026-12")
    assert refused.value.extra["parameter"] == "period"
