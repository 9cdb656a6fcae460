"""Actors of the workspace (mapservice.accounts) for the report's tests: a role and a territory."""
from __future__ import annotations

from mapservice.accounts.values import ACADEMIE_ADMIN, CURATOR, NATIONAL_ADMIN, PARTNER, Actor

NATIONAL = Actor(account_id=None, email="nationale@exemple.invalid", role=NATIONAL_ADMIN)


def academie_admin(*codes: str) -> Actor:
    return Actor(account_id=None, email="academie@exemple.invalid", role=ACADEMIE_ADMIN, academies=frozenset(codes))


def curator(departements=(), platforms=()) -> Actor:
    return Actor(account_id=None, email="referent@exemple.invalid", role=CURATOR,
                 departements=frozenset(departements), platforms=frozenset(platforms))


def partner(*sites: int) -> Actor:
    return Actor(account_id=None, email="partenaire@exemple.invalid", role=PARTNER, sites=frozenset(sites))
