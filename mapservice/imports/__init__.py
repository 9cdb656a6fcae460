"""Imports into the catalogue from the official sources and partners' files.

`import_file()` is the one entry point (the command line and the workspace call it): it reads the file as a
stream, checks and compares every row, and returns the report; with `apply=True` it also writes exactly what
the report says, within the caller's transaction (which commits it; a dry run is rolled back by the caller).
`revert_run()` undoes an applied import as a whole.

Sources: `annuaire` (annuaire de l'éducation), `cfa` (SIFA list, GRETA and MFR networks), `partners` (the
template's columns, CSV or GeoJSON). See annuaire.py, cfa.py, partners.py; pipeline.py for the common part."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..accounts import audit
from ..accounts.values import ACADEMIE_ADMIN, CURATOR, Actor
from ..errors import Forbidden, ImportRefused
from ..geocoding import Geocoder
from . import annuaire, cfa, partners
from .pipeline import ImportJob, apply_plan, plan
from .reading import CsvReader, CsvRow, ImportFile, progress_of
from .records import ImportTerritory, Rejection, SiteCandidate, Skipped
from .report import ImportReport
from .revert import revert_run

KINDS = ("annuaire", "cfa", "partners")
PARTNER_SOURCE_PREFIX = "partenaire:"

__all__ = ["KINDS", "ImportFile", "ImportReport", "ImportTerritory", "check_file", "import_file",
           "import_territory", "importable_kinds", "revert_run"]

# The official files (national or académie-wide lists) are for administrators; a territory's team (a
# département's or a PSAD platform's curator) imports its partners' lists.
KINDS_BY_ROLE = {ACADEMIE_ADMIN: KINDS, CURATOR: ("partners",)}
KIND_LABELS = {"annuaire": "annuaire de l'éducation", "cfa": "liste de CFA (SIFA, GRETA ou MFR)",
               "partners": "liste d'un partenaire"}


def importable_kinds(actor: Actor) -> tuple[str, ...]:
    """The kinds of import an account may run (none for a partner: its curator imports its lists)."""
    return KINDS if actor.is_national else KINDS_BY_ROLE.get(actor.role, ())


def import_territory(conn: Connection, actor: Actor, kind: str = "partners") -> ImportTerritory | None:
    """Where an account's import of `kind` may write (None: national), or Forbidden (logged in the audit log).
    A national administrator imports everywhere, an académie administrator in its académies, a curator in its
    départements and its PSAD platforms' communes. The workspace passes the result to `import_file`."""
    if kind not in importable_kinds(actor):
        audit.record(conn, "forbidden", account_id=actor.account_id, email=actor.email, address=actor.address,
                     detail=f"import {kind}")
        raise Forbidden(f"Votre compte ne permet pas d'importer une {KIND_LABELS.get(kind, kind)} : les fichiers "
                        "officiels sont importés par un administrateur, les listes des partenaires par le "
                        "curateur de leur territoire.")
    if actor.is_national:
        return None
    if actor.role == ACADEMIE_ADMIN:
        return ImportTerritory(frozenset(conn.execute(
            text("SELECT code FROM departement WHERE academie_code = ANY(:a)"),
            {"a": sorted(actor.academies)}).scalars()))
    # A platform's perimeter lists communes; a city listed whole covers its arrondissements.
    communes = frozenset(conn.execute(text("""
        SELECT c.code FROM psad_platform_commune pc JOIN commune c ON pc.commune_code IN (c.code, c.parent_code)
        WHERE pc.platform_id = ANY(:p)"""), {"p": sorted(actor.platforms)}).scalars())
    return ImportTerritory(frozenset(actor.departements), communes)


def import_file(conn: Connection, kind: str, source_file: ImportFile, *, apply: bool,
                source: str | None = None, territory: ImportTerritory | Iterable[str] | None = None,
                imported_by: str = "system", geocoder: Geocoder | None = None, max_bytes: int = 200_000_000,
                expected_fingerprint: str | None = None,
                progress: Callable[[int, int | None], None] | None = None,
                phase: Callable[[str], None] | None = None) -> ImportReport:
    """Import `source_file` as `kind`. `territory`: where the importer may write (rows elsewhere are
    rejected; département or commune codes, or an ImportTerritory), None for national. `source`: for `cfa`,
    which list (sifa, greta, mfr; guessed from the file name otherwise); for `partners`, the partner's name
    (required). Raises ImportRefused for a file that cannot be read as its format (nothing written)."""
    found = _source(conn, kind, source_file, source, max_bytes)
    job = ImportJob(source=found.name, rows=found.rows, parse=found.parse, skip=found.skip,
                    report=ImportReport(source=found.name, file_name=source_file.name),
                    territory=None if territory is None else (
                        territory if isinstance(territory, ImportTerritory) else ImportTerritory.of(territory)),
                    adopts=found.adopts, geocoder=geocoder, progress=progress_of(source_file, progress),
                    phase=phase or (lambda name: None),
                    extra_rejections=lambda: [Rejection(line, reason) for line, reason in
                                              (found.reader.unreadable if found.reader else [])])
    report = plan(conn, job)
    report.checksum = source_file.checksum  # the whole file has been read by now
    if apply:
        apply_plan(conn, job, imported_by=imported_by, expected_fingerprint=expected_fingerprint)
    return report


def check_file(conn: Connection, kind: str, source_file: ImportFile, source: str | None, max_bytes: int,
               rows: int = 10_000) -> None:
    """Raise ImportRefused when the file cannot be read as `kind` (size, encoding, separator, header, not a CSV,
    empty...), judging from its first `rows` rows: what the upload form says at once. Writes nothing."""
    found = _source(conn, kind, source_file, source, max_bytes)
    for number, row in enumerate(found.rows, start=1):
        found.parse(row)
        if number >= rows:
            break


@dataclass
class _Source:
    """A file read as one kind of source."""

    name: str  # the catalogue `source` of its records
    adopts: str | None  # another source whose records with the same keys it takes over
    reader: CsvReader | None  # None for GeoJSON
    rows: Iterator[CsvRow]
    parse: Callable[[CsvRow], SiteCandidate | Rejection | Skipped]
    skip: Callable[[CsvRow], Skipped | None] | None = None  # a cheap look telling rows that are not sites


def _source(conn: Connection, kind: str, source_file: ImportFile, source: str | None, max_bytes: int) -> _Source:
    if kind == "annuaire":
        csv_reader = annuaire.reader(source_file, max_bytes)
        return _Source(annuaire.SOURCE, annuaire.ADOPTS, csv_reader, csv_reader.rows(), annuaire.parse_row,
                       annuaire.skipped)
    if kind == "cfa":
        which = source or cfa.which_list(source_file.name)
        if which not in cfa.LISTS:
            raise ImportRefused(f"{source_file.name} : quelle liste ? Précisez la source : sifa, greta ou mfr.")
        csv_reader = cfa.reader(which, source_file, max_bytes)
        return _Source(cfa.LISTS[which].source, None, csv_reader, csv_reader.rows(),
                       cfa.row_parser(which, cfa.commune_matcher(conn)))
    if kind == "partners":
        if not source or not source.strip():
            raise ImportRefused(f"{source_file.name} : donnez le nom du partenaire (la source), par exemple "
                                "« mission-locale-rennes » : il distingue ses fiches de celles des autres.")
        csv_reader: CsvReader | None = None
        if source_file.name.lower().endswith((".geojson", ".json")):
            raw_rows = partners.geojson_rows(source_file, max_bytes)
        else:
            csv_reader = partners.reader(source_file, max_bytes)
            raw_rows = csv_reader.rows()
        matcher = cfa.LazyCommuneMatcher(conn)
        return _Source(PARTNER_SOURCE_PREFIX + source.strip().lower(), None, csv_reader, raw_rows,
                       lambda row: partners.parse_row(row, matcher))
    raise ImportRefused(f"Type d'import inconnu « {kind} » : {', '.join(KINDS)}.")
