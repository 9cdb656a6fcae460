"""The accounts' values: who is acting (Actor, with the scope of its role), and what an action is aimed at
(a catalogue Territory, or another account)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

NATIONAL_ADMIN = "national_admin"
ACADEMIE_ADMIN = "academie_admin"
CURATOR = "curator"
PARTNER = "partner"


class Action(str, Enum):
    """What an account may be allowed to do to a target."""

    READ = "read"  # open a site, solution, report or history in the workspace
    EDIT_SITE = "edit_site"  # change a site's fields (position included)
    CREATE_SITE = "create_site"  # add a site (a partner's waits for review)
    PUBLISH_SITE = "publish_site"  # change a site's status (draft -> published -> archived), review a proposal
    EDIT_SOLUTION = "edit_solution"  # create, change, publish or archive a solution; vacant places
    STAMP = "stamp"  # "toujours exact"
    HANDLE_REPORT = "handle_report"  # the error-report inbox
    EDIT_TERRITORY = "edit_territory"  # PSAD platforms and FOQUALE networks, their perimeter
    MANAGE_ACCOUNT = "manage_account"  # invite, change the role or scope of, deactivate an account


@dataclass(frozen=True)
class Scope:
    """One piece of a territory; exactly one of the fields is set."""

    academie: str | None = None
    departement: str | None = None
    platform: int | None = None
    site: int | None = None

    def __post_init__(self):
        if sum(v is not None for v in (self.academie, self.departement, self.platform, self.site)) != 1:
            raise ValueError("a scope is exactly one académie, département, platform or site")


@dataclass(frozen=True)
class Actor:
    """Who is acting, with its territory resolved. A partner's `departements` are those of its granted sites:
    where it may propose a new site."""

    account_id: int | None
    email: str
    role: str
    academies: frozenset[str] = frozenset()
    departements: frozenset[str] = frozenset()
    platforms: frozenset[int] = frozenset()
    sites: frozenset[int] = frozenset()
    address: str | None = None  # where the request came from, for the audit log

    @property
    def is_national(self) -> bool:
        return self.role == NATIONAL_ADMIN


@dataclass(frozen=True)
class Territory:
    """Where a catalogue record (or a proposed one) lies: its commune and what holds it."""

    commune: str
    departement: str
    academie: str
    platforms: frozenset[int] = frozenset()  # the PSAD platform(s) whose perimeter holds the commune
    site: int | None = None  # the site itself, when it exists


@dataclass(frozen=True)
class AccountTarget:
    """An account someone wants to create or change: its role and the académies its scopes lie in."""

    role: str
    academies: frozenset[str]
    account_id: int | None = None


@dataclass(frozen=True)
class Ref:
    """A record named by the request (kind: site, solution, report, platform, account, commune); `authorize`
    finds where it lies."""

    kind: str
    id: int | str
