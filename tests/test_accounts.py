"""Accounts, roles and scopes: who may do what where, invitations, passwords, throttled logins, sessions ended
everywhere, API tokens. Against a real PostGIS (a database of this module's own)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from mapservice.accounts import login, permissions, store
from mapservice.accounts.login import LoginLimits
from mapservice.accounts.store import AccountSpec
from mapservice.accounts.values import Action, Actor, Ref, Scope
from mapservice.db import make_engine, transaction
from mapservice.errors import Forbidden, InvalidParameter, TooManyAttempts, Unauthorized

from .conftest import throwaway_database
from .workspace_fixtures import PASSWORD, ROOT_ACTOR, team


@pytest.fixture(scope="module")
def db(server, template):
    with throwaway_database(server, "mapservice_accounts", template=template) as url:
        engine = make_engine(url)
        yield engine, team(engine)
        engine.dispose()


def actor(engine, account_id) -> Actor:
    with engine.connect() as conn:
        return store.load_actor(conn, account_id, "192.0.2.1")


def test_each_role_acts_only_inside_its_territory(db):
    engine, t = db
    site_35, site_69 = Ref("site", t["site_35"]), Ref("site", t["site_69"])
    with engine.connect() as conn:
        def may(who, action, target):
            try:
                permissions.authorize(conn, actor(engine, t[who]), action, target)
                return True
            except Forbidden:
                return False

        for who in ("national", "academie", "curator", "platform_curator", "partner"):
            assert may(who, Action.EDIT_SOLUTION, site_35), who
        assert may("national", Action.EDIT_SOLUTION, site_69)
        for who in ("academie", "curator", "platform_curator", "partner"):
            for action in Action:
                assert not may(who, action, site_69), (who, action)
        assert not may("partner", Action.PUBLISH_SITE, site_35)
        assert may("partner", Action.CREATE_SITE, Ref("commune", "35238"))  # Rennes: a partner proposes
        assert not may("partner", Action.CREATE_SITE, Ref("commune", "69123"))
        assert not may("curator", Action.EDIT_TERRITORY, Ref("platform", t["platform_35"]))
        assert may("academie", Action.EDIT_TERRITORY, Ref("platform", t["platform_35"]))
        assert not may("curator", Action.MANAGE_ACCOUNT, Ref("account", t["partner"]))
        assert may("academie", Action.MANAGE_ACCOUNT, Ref("account", t["partner"]))
        assert not may("academie", Action.MANAGE_ACCOUNT, Ref("account", t["national"]))
        assert not may("academie", Action.MANAGE_ACCOUNT, Ref("account", t["academie"]))
        conn.rollback()


def test_a_refusal_says_why_and_is_logged_even_though_the_request_is_rolled_back(db):
    engine, t = db
    curator = actor(engine, t["curator"])
    with pytest.raises(Forbidden, match="hors de votre territoire"):
        with transaction(engine) as conn:
            permissions.authorize(conn, curator, Action.EDIT_SITE, Ref("site", t["site_69"]))
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT event, email, address, detail FROM audit_event "
                                   "WHERE event = 'forbidden' ORDER BY id DESC LIMIT 1")).one()
    assert logged == ("forbidden", "referent.35@exemple.invalid", "192.0.2.1", f"edit_site lieu {t['site_69']}")


def test_the_workspace_lists_follow_the_same_rule_as_the_check(db):
    engine, t = db
    with engine.connect() as conn:
        for who in ("academie", "curator", "platform_curator", "partner"):
            someone = actor(engine, t[who])
            condition, binds = permissions.territory_filter(someone)
            listed = set(conn.scalars(text(f"""SELECT site.id FROM site JOIN commune c ON c.code = site.commune_code
                                              WHERE {condition}"""), binds))
            sample = set(conn.scalars(text("SELECT id FROM site ORDER BY id % 97, id LIMIT 300")))
            sample |= {t["site_35"], t["site_69"]}
            for site_id in sample:
                allowed = permissions.allows(someone, Action.EDIT_SITE,
                                             permissions.territory_of(conn, Ref("site", site_id)))
                assert allowed == (site_id in listed), (who, site_id)
        assert t["site_35"] in listed and t["site_69"] not in listed


def test_an_invitation_link_works_once_before_it_expires_and_is_kept_only_hashed(db):
    engine, t = db
    with transaction(engine) as conn:
        account_id, secret = store.invite(conn, ROOT_ACTOR, AccountSpec("Nouvelle@Exemple.invalid", "curator",
                                                                        (Scope(departement="35"),)),
                                          dt.timedelta(days=7))
        assert not conn.scalar(text("SELECT count(*) FROM account_token WHERE token_hash = :s"), {"s": secret})
    with transaction(engine) as conn:
        with pytest.raises(InvalidParameter, match="au moins 12"):
            store.set_password(conn, secret, "invitation", "court")
    with transaction(engine) as conn:
        assert store.set_password(conn, secret, "invitation", PASSWORD) == account_id
        stored = conn.scalar(text("SELECT password_hash FROM account WHERE id = :id"), {"id": account_id})
        assert stored.startswith("$argon2id$")
    with transaction(engine) as conn, pytest.raises(InvalidParameter, match="plus valable"):
        store.set_password(conn, secret, "invitation", PASSWORD)
    with transaction(engine) as conn:
        _, expired = store.issue_token(conn, account_id, "reset", dt.timedelta(seconds=-1))
    with transaction(engine) as conn, pytest.raises(InvalidParameter, match="plus valable"):
        store.set_password(conn, expired, "reset", PASSWORD)
    with engine.connect() as conn:
        found, generation = login.authenticate(conn, "nouvelle@exemple.invalid", PASSWORD, "192.0.2.9")
        assert found.account_id == account_id and found.departements == {"35"}


def test_failed_logins_are_throttled_per_account_and_per_address(db):
    engine, t = db
    limits = LoginLimits(per_account=3, per_address=5)
    with engine.connect() as conn:
        for _ in range(3):
            with pytest.raises(Unauthorized, match="incorrect"):
                login.authenticate(conn, "partenaire.35@exemple.invalid", "mauvais mot de passe", "198.51.100.1",
                                   limits)
        # The right password no longer gets in for that account, from anywhere, until the window passes.
        with pytest.raises(TooManyAttempts):
            login.authenticate(conn, "partenaire.35@exemple.invalid", PASSWORD, "198.51.100.2", limits)
        # One address trying many accounts is stopped too.
        for n in range(2):
            with pytest.raises(Unauthorized):
                login.authenticate(conn, f"inconnu{n}@exemple.invalid", "x" * 12, "198.51.100.1", limits)
        with pytest.raises(TooManyAttempts):
            login.authenticate(conn, "referent.35@exemple.invalid", PASSWORD, "198.51.100.1", limits)
        assert login.authenticate(conn, "referent.35@exemple.invalid", PASSWORD, "198.51.100.3", limits)
        events = conn.execute(text("SELECT event, count(*) FROM audit_event WHERE address LIKE '198.51.100.%' "
                                   "GROUP BY event")).all()
    assert dict(events) == {"login_failed": 5, "login_throttled": 2, "login": 1}


def test_logging_out_everywhere_ends_every_session_and_api_tokens_can_be_revoked(db):
    engine, t = db
    with transaction(engine) as conn:
        someone, generation = login.authenticate(conn, "plateforme.35@exemple.invalid", PASSWORD, None)
        assert login.session_actor(conn, someone.account_id, generation) == someone
        token_id, secret = login.create_api_token(conn, someone, "tableur de la plateforme")
        assert login.token_actor(conn, secret).platforms == {t["platform_35"]}
        login.logout_everywhere(conn, someone)
        assert login.session_actor(conn, someone.account_id, generation) is None
        login.revoke_api_token(conn, someone, token_id)
        assert login.token_actor(conn, secret) is None


def test_an_academie_admin_cannot_create_an_account_outside_its_academie(db):
    engine, t = db
    admin = actor(engine, t["academie"])
    with transaction(engine) as conn:
        store.create_account(conn, admin, AccountSpec("ok.35@exemple.invalid", "curator", (Scope(departement="35"),)))
    with pytest.raises(Forbidden):
        with transaction(engine) as conn:
            store.create_account(conn, admin, AccountSpec("x.69@exemple.invalid", "curator",
                                                          (Scope(departement="69"),)))
    with pytest.raises(Forbidden):
        with transaction(engine) as conn:
            store.create_account(conn, admin, AccountSpec("x@exemple.invalid", "academie_admin",
                                                          (Scope(academie=t["academie_35"]),)))
    with pytest.raises(InvalidParameter, match="territoire"):
        with transaction(engine) as conn:
            store.create_account(conn, admin, AccountSpec("y@exemple.invalid", "curator", ()))
