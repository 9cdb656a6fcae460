"""Curation in the core: sites placed by the geocoder (a real addok) or at the town hall, the review of partners'
proposals, what is overdue for a check and the bulk stamp, territories whose perimeter the curators' scopes and
"who covers my area" follow at once, the dashboard."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from mapservice import coverage
from mapservice.accounts import permissions, store
from mapservice.accounts.values import Action, Ref
from mapservice.curation import dashboard, freshness, sites, territories
from mapservice.curation.inputs import site_input
from mapservice.db import make_engine, transaction
from mapservice.errors import Forbidden
from mapservice.geocoding import Geocoder
from mapservice.values import Area

from .conftest import throwaway_database
from .workspace_fixtures import Scope, make_account, platform_of, team

BAULON = "35016"


@pytest.fixture(scope="module")
def db(server, template):
    with throwaway_database(server, "mapservice_cur", template=template) as url:
        engine = make_engine(url)
        yield engine, team(engine)
        engine.dispose()


def actor(engine, account_id):
    with engine.connect() as conn:
        return store.load_actor(conn, account_id)


def test_a_site_saved_with_an_address_is_placed_by_the_geocoder(db, addok_url):
    engine, t = db
    curator = actor(engine, t["curator"])
    with transaction(engine) as conn:
        commune = conn.scalar(text("SELECT code FROM commune WHERE name = 'Baulon' AND departement_code = '35'"))
        saved = sites.create_site(conn, curator, site_input({
            "name": "Antenne de Baulon", "kind": "mission_locale", "commune_code": commune,
            "address": "6 rue Philippe", "postcode": "35580"}), Geocoder(addok_url))
        row = sites.site_row(conn, saved.id)
    assert row["position_precision"] == "address"
    assert any("Position trouvée pour l'adresse" in w for w in saved.warnings)
    # The school's position in the annuaire (see test_geocoding), to a few metres.
    found = Geocoder(addok_url).search("6 rue Philippe", postcode="35580")
    assert abs(row["lon"] - found.point.lon) < 1e-6 and abs(row["lat"] - found.point.lat) < 1e-6


def test_without_an_answering_geocoder_the_site_goes_to_the_town_hall_and_says_so(db):
    engine, t = db
    with transaction(engine) as conn:
        saved = sites.create_site(conn, actor(engine, t["curator"]), site_input({
            "name": "Point d'accueil", "kind": "cio", "commune_code": "35238", "address": "1 place de la Mairie"}),
            Geocoder("http://127.0.0.1:9/"))
        row = sites.site_row(conn, saved.id)
        hall = conn.execute(text("SELECT ST_X(town_hall), ST_Y(town_hall) FROM commune WHERE code = '35238'")).one()
    assert row["position_precision"] == "commune" and (row["lon"], row["lat"]) == tuple(hall)
    assert any("ne répond pas" in w for w in saved.warnings)


def test_a_partner_proposal_waits_in_the_curators_review_queue_until_published(db):
    engine, t = db
    partner, curator = actor(engine, t["partner"]), actor(engine, t["curator"])
    with transaction(engine) as conn:
        proposal = sites.create_site(conn, partner, site_input({
            "name": "Nouvel atelier", "kind": "organisme_formation", "commune_code": "35238"}))
    with transaction(engine) as conn:
        queue = sites.review_queue(conn, curator)
        assert [q["id"] for q in queue if q["id"] == proposal.id] == [proposal.id]
        assert dashboard.dashboard(conn, curator)["review_queue"] >= 1
        with pytest.raises(Forbidden):
            sites.set_site_status(conn, partner, proposal.id, 1, "published")
    with transaction(engine) as conn:
        sites.set_site_status(conn, curator, proposal.id, 1, "published")
        assert proposal.id not in {q["id"] for q in sites.review_queue(conn, curator)}


def test_overdue_sites_come_oldest_first_and_a_bulk_stamp_clears_them(db):
    engine, t = db
    curator = actor(engine, t["curator"])
    with transaction(engine) as conn:
        conn.execute(text("""UPDATE site SET last_checked_at = now() - make_interval(days => (400 - id % 50)::int)
                             WHERE commune_code LIKE '35%'"""))
        due = freshness.overdue(conn, curator)
        dates = [d["last_checked_at"] for d in due]
        assert dates == sorted(dates) and len(due) > 10
        freshness.stamp(conn, curator, [d["id"] for d in due[:5]])
        left = {d["id"] for d in freshness.overdue(conn, curator)}
        assert not left & {d["id"] for d in due[:5]} and len(left) == len(due) - 5
        stamped = conn.execute(text("SELECT count(*) FROM solution WHERE site_id = ANY(:ids) AND status <> 'archived' "
                                    "AND last_checked_at < now() - interval '1 minute'"),
                               {"ids": [d["id"] for d in due[:5]]}).scalar()
        assert stamped == 0  # the sites' solutions were stamped with them
        with pytest.raises(Forbidden):
            freshness.stamp(conn, curator, [d["id"] for d in due[:2]] + [t["site_69"]])


def test_the_workspace_lists_exactly_the_sites_an_account_may_edit(db):
    engine, t = db
    with engine.connect() as conn:  # rolled back at the end
        lyon = conn.scalar(text("SELECT platform_id FROM psad_platform_commune WHERE commune_code = '69123'"))
        # A perimeter that names Lyon alone holds the sites of its arrondissements.
        conn.execute(text("DELETE FROM psad_platform_commune WHERE platform_id = :p AND commune_code LIKE '6938%'"),
                     {"p": lyon})
        lyon_curator = make_account(engine, "plateforme.lyon@exemple.invalid", "curator", [Scope(platform=lyon)])
        # Ille-et-Vilaine, the Rhône and a sample of the rest of the country.
        candidates = conn.scalars(text("SELECT id FROM site WHERE left(commune_code, 2) IN ('35', '69') "
                                       "UNION (SELECT id FROM site ORDER BY id LIMIT 150)")).all()
        territories_of = {i: permissions.territory_of(conn, Ref("site", i)) for i in candidates}
        for account in ("national", "academie", "curator", "platform_curator", "partner", lyon_curator):
            who = actor(engine, t[account] if isinstance(account, str) else account)
            listed = {r["id"] for r in sites.sites(conn, who, limit=100_000)}
            may_edit = {i for i, where in territories_of.items() if permissions.allows(who, Action.EDIT_SITE, where)}
            assert may_edit, account
            assert listed & set(candidates) == may_edit, account
            assert 0 < dashboard.dashboard(conn, who)["published_sites"] <= len(listed)
        assert any(territories_of[i].commune.startswith("6938") for i in may_edit)  # the Lyon curator's
        conn.rollback()


def test_a_perimeter_change_moves_who_covers_the_area_and_the_curators_scope_at_once(db):
    engine, t = db
    admin, platform_curator = actor(engine, t["academie"]), actor(engine, t["platform_curator"])
    with transaction(engine) as conn:
        platform = territories.platform(conn, admin, t["platform_35"])
        site_id = t["site_35"]
        assert coverage.who_covers(conn, Area("commune", "35238"))["responsible"]["platform_id"] == t["platform_35"]
        commune = conn.scalar(text("SELECT commune_code FROM site WHERE id = :i"), {"i": site_id})
        assert permissions.allows(platform_curator, Action.EDIT_SITE,
                                  permissions.territory_of(conn, Ref("site", site_id)))
        kept = [c for c in platform["communes"] if c != commune]
        csv = "code_insee;nom\n" + "\n".join(f"{c};x" for c in kept)
        territories.update_platform(conn, admin, t["platform_35"], platform["version"], territories.PlatformInput(
            name="Plateforme de Rennes", contact_name="Mme Exemple", network_name="Réseau FOQUALE de Rennes",
            communes=territories.commune_codes(csv)))
        assert coverage.who_covers(conn, Area("commune", commune))["responsible"]["platform_id"] is None
        neighbour = coverage.who_covers(conn, Area("commune", kept[0]))["responsible"]
        assert (neighbour["platform_name"], neighbour["network_name"]) == ("Plateforme de Rennes",
                                                                          "Réseau FOQUALE de Rennes")
        assert not permissions.allows(platform_curator, Action.EDIT_SITE,
                                      permissions.territory_of(conn, Ref("site", site_id)))
        with pytest.raises(Forbidden):
            territories.update_platform(conn, admin, platform_of(conn, "69"), 1, territories.PlatformInput(name="x"))
