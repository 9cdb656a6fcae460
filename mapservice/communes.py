"""Communes: which one holds a point (an arrondissement before its city), and which one a postal address
(postcode + town name, CEDEX included) designates. Shared by the search, who-covers, the loaders and the
importers."""
from __future__ import annotations

import re
import unicodedata

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .values import Point

# The commune holding the point (:lon, :lat); an arrondissement is finer than its city, hence first.
# Select the columns you need from `c`, e.g. COMMUNE_AT.format(columns="c.code").
COMMUNE_AT = """
SELECT {columns} FROM commune c
WHERE ST_Intersects(c.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY c.kind = 'ARM' DESC LIMIT 1"""

COMMUNE_COLUMNS = "c.code, c.name, c.kind, c.departement_code, c.academie_code"


def commune_at(conn: Connection, point: Point) -> dict | None:
    """The commune (or arrondissement) holding `point`, or None outside France."""
    row = conn.execute(text(COMMUNE_AT.format(columns=COMMUNE_COLUMNS)),
                       {"lon": point.lon, "lat": point.lat}).mappings().first()
    return dict(row) if row else None


def normalise(name: str) -> str:
    """Upper case, no accents, no punctuation, 'ST' for 'SAINT', no CEDEX: how town names are compared."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()
    name = re.sub(r"[^A-Z0-9]+", " ", name)
    name = re.sub(r"\bCEDEX\b.*$", "", name)
    name = re.sub(r"\bSAINTE\b", "STE", name)
    name = re.sub(r"\bSAINT\b", "ST", name)
    return " ".join(name.split())



class CommuneMatcher:
    """Find the commune (or arrondissement) of a postal address given as postcode + town name."""

    def __init__(self, communes: list[dict], former_names: list[tuple[str, str]] = ()):
        self.by_postcode: dict[str, list[dict]] = {}
        self.by_dep_name: dict[tuple[str, str], list[dict]] = {}
        self.arrondissements: dict[tuple[str, int], dict] = {}  # ("PARIS", 6) -> Paris 6e Arrondissement
        by_code = {}
        for c in communes:
            c["norm"] = normalise(c["name"])
            c["parent_norm"] = normalise(c["parent_name"]) if c["parent_name"] else None
            c["former_norms"] = set()
            by_code[c["code"]] = c
            for pc in c["postcodes"]:
                self.by_postcode.setdefault(pc, []).append(c)
            self.by_dep_name.setdefault((c["departement_code"], c["norm"]), []).append(c)
            number = re.match(r".* (\d+)ER? ARRONDISSEMENT$", c["norm"])
            if c["kind"] == "ARM" and number:
                self.arrondissements[(c["parent_norm"], int(number.group(1)))] = c
        for name, code in former_names:
            if code in by_code:
                commune = by_code[code]
                commune["former_norms"].add(normalise(name))
                self.by_dep_name.setdefault((commune["departement_code"], normalise(name)), []).append(commune)

    @staticmethod
    def _departements(postcode: str) -> list[str]:
        if postcode.startswith("97"):
            return [postcode[:3]]
        if postcode.startswith("20"):
            return ["2A", "2B"]
        return [postcode[:2]]

    def match(self, postcode: str, town: str) -> dict | None:
        postcode = postcode.zfill(5)
        cedex = re.search(r"CEDEX\s*0*(\d+)", town.upper())
        town = normalise(town)
        # "PARIS CEDEX 06": in Paris, Lyon and Marseille the CEDEX number is the arrondissement's.
        if cedex and (town, int(cedex.group(1))) in self.arrondissements:
            return self.arrondissements[(town, int(cedex.group(1)))]
        candidates = self.by_postcode.get(postcode, [])
        named = [c for c in candidates if town in (c["norm"], c["parent_norm"]) or town in c["former_norms"]]
        # An arrondissement is finer than its city: prefer it when the postcode designates one.
        named.sort(key=lambda c: c["kind"] != "ARM")
        if named:
            return named[0]
        if len(candidates) == 1:
            return candidates[0]
        # CEDEX and other special postcodes: fall back to the town name within the département.
        deps = self._departements(postcode)
        found = {c["code"]: c for dep in deps for c in self.by_dep_name.get((dep, town), [])}
        if len(found) == 1:
            return next(iter(found.values()))
        # A commune nouvelle that kept the old name as its first words ("Herblay" -> "Herblay-sur-Seine").
        prefixed = {c["code"]: c for (dep, norm), cs in self.by_dep_name.items() if dep in deps
                    and norm.startswith(town + " ") for c in cs if c["kind"] == "COM"}
        return next(iter(prefixed.values())) if len(prefixed) == 1 else None
