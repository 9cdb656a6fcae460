"""What a source's parser makes of each row: a site with its solutions, a row skipped (not a reception site)
or a row rejected with its reason. Values are text (None when empty), as they are compared with the
catalogue's."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


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
    row_digest: str | None = None  # the source row's digest, remembered to skip the same row next time


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    column: str | None = None
    key: str | None = None
    fix: str | None = None  # what to change in the file for the row to be taken (None: see FIXES_BY_COLUMN)

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "key": self.key, "reason": self.reason,
                "fix": self.fix or FIXES_BY_COLUMN.get(self.column or "")}


# The usual correction of a row refused on a column, when the check itself proposes none.
FIXES_BY_COLUMN = {
    "identifiant": "donnez à chaque ligne un identifiant stable (le même d'un import à l'autre)",
    "Identifiant_de_l_etablissement": "renseignez l'UAI de l'établissement",
    "type": "mettez un des types du modèle : mission_locale, service_civique, e2c, epide, formation_regionale",
    "nom": "renseignez le nom du lieu", "Nom_etablissement": "renseignez le nom de l'établissement",
    "formule": "pour un service civique, mettez plein_temps ou combinee ; sinon laissez vide",
    "site_web": "mettez une adresse qui commence par https://, http://, tel: ou mailto:, ou laissez vide",
    "Web": "mettez une adresse qui commence par https:// ou http://, ou laissez vide",
    "commune": "vérifiez le code postal et le nom de la commune, ou donnez code_commune (code INSEE)",
    "Code_commune": "vérifiez le code INSEE de la commune (pas le code postal)",
    "places_libres": "un nombre entier positif, ou vide si vous ne savez pas",
    "age_min": "un âge en années (nombre entier), ou vide", "age_max": "un âge en années (nombre entier), ou vide",
}


@dataclass(frozen=True)
class ImportTerritory:
    """Where an import may write: départements, and communes (a PSAD platform's perimeter). A row is taken when
    its commune lies in one of the départements or is one of the communes."""

    departements: frozenset[str] = frozenset()
    communes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, codes: Iterable[str]) -> ImportTerritory:
        """From codes as typed on the command line: départements (2 or 3 characters) and communes (5)."""
        codes = {c.strip().upper() for c in codes if c.strip()}
        return cls(frozenset(c.zfill(2) for c in codes if len(c) <= 3), frozenset(c for c in codes if len(c) == 5))

    def holds(self, departement: str | None, commune: str | None) -> bool:
        return departement in self.departements or commune in self.communes

    def codes(self) -> list[str]:
        return sorted(self.departements) + sorted(self.communes)

    def describe(self) -> str:
        parts = []
        if self.departements:
            parts.append(("département " if len(self.departements) == 1 else "départements ")
                         + ", ".join(sorted(self.departements)))
        if self.communes:
            parts.append(f"{len(self.communes)} commune{'s' if len(self.communes) > 1 else ''} de votre plateforme")
        return " et ".join(parts) or "aucun territoire"


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
