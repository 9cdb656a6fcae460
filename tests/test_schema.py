"""Migrations, models and indexes."""
import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from mapservice.db import alembic_config, current_revision, make_engine, upgrade
from mapservice.models import Base, include_object
from mapservice.reporting import distances
from mapservice.search import nearest_sql
from mapservice.taxonomy import SOLUTION_TYPES
from mapservice.values import Area, NearestQuery, Point, SolutionFilters


def test_migrations_run_up_from_an_empty_database_and_back(empty_database_url):
    engine = make_engine(empty_database_url)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head
    with engine.connect() as conn:
        tables = set(conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")))
    assert {"commune", "departement", "region", "academie", "site", "solution", "psad_platform",
            "psad_platform_commune", "foquale_network", "dataset_version", "error_report"} <= tables
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head
    engine.dispose()


def test_every_searched_geometry_has_a_gist_index(engine):
    with engine.connect() as conn:
        indexed = set(conn.execute(text("""
            SELECT t.relname || '.' || a.attname FROM pg_index i
            JOIN pg_class ix ON ix.oid = i.indexrelid JOIN pg_am am ON am.oid = ix.relam
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)
            WHERE am.amname = 'gist'""")).scalars())
        # The solutions are searched as Web Mercator points (expression indexes, migrations 0017, 0019).
        solution_indexes = set(conn.scalars(text("""
            SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class ix ON ix.oid = i.indexrelid
            JOIN pg_am am ON am.oid = ix.relam WHERE am.amname = 'spgist' AND i.indrelid = 'solution'::regclass""")))
    assert {"commune.geom", "departement.geom", "region.geom", "academie.geom", "site.geom"} <= indexed
    assert any("point(st_x(st_transform((\"position\")::geometry, 3857))" in d
               and "WHERE ((status)::text = 'published'::text)" in d for d in solution_indexes), solution_indexes


@pytest.mark.parametrize("origin, in_area", [(Point(4.83, 45.76), False), (Area("departement", "69"), True)])
def test_nearest_search_is_a_knn_index_scan(engine, origin, in_area):
    sql, binds = nearest_sql(NearestQuery(origin=origin, limit=10, in_area=in_area,
                                          filters=SolutionFilters(voies=("professionnelle",))))
    with engine.connect() as conn:
        plan = "\n".join(conn.execute(text("EXPLAIN " + sql), {"lon": 4.83, "lat": 45.76, **binds}).scalars())
    # The Web Mercator index itself yields rows in distance order (no sort of every solution), and also finds
    # the candidates ranked on the spheroid.
    assert "Index Scan using ix_solution_published_mercator" in plan
    assert 'Order By: (point(st_x(st_transform(("position")::geometry, 3857))' in plan


@pytest.mark.parametrize("solution_type", ["places_lycee", "epide"])
def test_the_reports_distances_walk_the_types_index_from_each_commune(engine, solution_type):
    with engine.connect() as conn:
        plan = "\n".join(conn.execute(text("EXPLAIN " + distances._nearest_sql(solution_type, False))).scalars())
    # Per commune: the nearest of the type in distance order, then the candidates of its box (no scan of the
    # type's solutions per commune).
    assert plan.count(f"Index Scan using ix_solution_published_{solution_type}_mercator on solution") == 2
    assert 'Order By: (point(st_x(st_transform(("position")::geometry, 3857))' in plan
    assert "Seq Scan on solution" not in plan


def test_a_solution_follows_its_site_when_the_site_moves(engine):
    with engine.connect() as conn:  # never committed: rolled back when the block ends
        site_id, solution_id = conn.execute(text(
            "SELECT site_id, id FROM solution WHERE is_example LIMIT 1")).one()
        conn.execute(text("UPDATE site SET geom = ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326) WHERE id = :id"),
                     {"id": site_id})
        moved = conn.execute(text("SELECT ST_AsText(position) FROM solution WHERE id = :id"),
                             {"id": solution_id}).scalar()
        assert moved == "POINT(2.35 48.85)"


def test_the_models_and_the_migrations_describe_the_same_schema(engine):
    """Alembic's autogenerate finds nothing to do: a column, index or constraint added on one side only fails
    here, the tile bookkeeping kept by triggers included."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_object": include_object, "compare_type": True, "compare_server_default": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_every_solution_type_has_its_count_in_the_cluster_pyramid(engine):
    """Tiles count the sites offering each type per cluster cell: a type added to the taxonomy needs its column
    (a migration), or tiles would fail at run time."""
    with engine.connect() as conn:
        columns = set(conn.scalars(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'site_cell'")))
        summary_view = conn.scalar(text("SELECT pg_get_viewdef('site_summary_source'::regclass)"))
    assert [t for t in SOLUTION_TYPES if f"n_{t}" not in columns] == []
    # A site's main type is the first of its types in the taxonomy's order.
    order = re.search(r"ARRAY\[(.*?)\]", summary_view).group(1)
    assert re.findall(r"'(\w+)'", order) == list(SOLUTION_TYPES)
