"""What a source's parser makes of each row: a site with its solutions, a row skipped (not a reception site)
or a row rejected with its reason. Values are text (None when empty), as they are compared with the
catalogue's."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SolutionCandidate:
    key: str  # the solution's source key, e.g. "0350042W:professionnelle"
    type: str
    title: str
    voie: str | None = None
    description: str | None = None
    service_civique_formula: str | None = None
    vacant_places: int | None = None
    min_age: int | None = None
    max_age: int | None = None


@dataclass
class SiteCandidate:
    line: int
    key: str  # the site's source key (UAI, SIRET or the partner's id)
    name: str
    kind: str
    commune_code: str | None  # None when only an address is known and no commune matched
    address: str | None = None
    postcode: str | None = None
    town: str | None = None
    lat: float | None = None
    lon: float | None = None
    # Projected coordinates and their EPSG code, to cross-check lat/lon (annuaire: Lambert 93 in mainland).
    x: float | None = None
    y: float | None = None
    srid: int | None = None
    precision: str = "address"  # 'commune' when the source itself says the position is only the town's
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    onisep_url: str | None = None
    archived: bool = False  # closed according to the source
    solutions: list[SolutionCandidate] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    column: str | None = None
    key: str | None = None

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "key": self.key, "reason": self.reason}


@dataclass(frozen=True)
class Skipped:
    what: str  # e.g. "Ecole", "Collège": counted per kind in the report


def text_or_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def number_or_rejection(row: dict, column: str, line: int, key: str | None, low: float, high: float):
    """(value, None) for a number within [low, high] (decimal comma accepted), (None, None) when empty,
    (None, Rejection) otherwise."""
    raw = (row.get(column) or "").strip()
    if not raw:
        return None, None
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        return None, Rejection(line, f"« {raw[:40]} » n'est pas un nombre", column, key)
    if not low <= value <= high:
        return None, Rejection(line, f"{raw} hors de l'intervalle [{low:g}, {high:g}]", column, key)
    return value, None
