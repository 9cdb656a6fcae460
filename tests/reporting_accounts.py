"""Accounts as the reporting core sees them: a role and a territory (the shape of the workspace's Actor)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    role: str
    email: str = "equipe@example.org"
    academies: frozenset[str] = frozenset()
    departements: frozenset[str] = frozenset()
    platforms: frozenset[int] = frozenset()
    sites: frozenset[int] = frozenset()

    @property
    def is_national(self) -> bool:
        return self.role == "national_admin"


NATIONAL = Account("national_admin", "national@example.org")


def academie_admin(*codes: str) -> Account:
    return Account("academie_admin", "academie@example.org", academies=frozenset(codes))


def curator(departements=(), platforms=()) -> Account:
    return Account("curator", "curateur@example.org", departements=frozenset(departements),
                   platforms=frozenset(platforms))
