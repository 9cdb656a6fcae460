"""Imports into the catalogue from the official sources and partners' files.

`import_file()` is the one entry point (the command line and the workspace call it): it reads the file as a
stream, checks and compares every row, and returns the report; with `apply=True` it also writes exactly what
the report says, within the caller's transaction (which commits it; a dry run is rolled back by the caller).
`revert_run()` undoes an applied import as a whole.

Sources: `annuaire` (annuaire de l'éducation), `cfa` (SIFA list, GRETA and MFR networks), `partners` (the
template's columns, CSV or GeoJSON). See annuaire.py, cfa.py, partners.py; pipeline.py for the common part."""
from __future__ import annotations

from typing import Callable, Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..accounts.values import ACADEMIE_ADMIN, CURATOR, Actor
from ..errors import Forbidden, ImportRefused
from ..geocoding import Geocoder
from . import annuaire, cfa, partners
from .pipeline import ImportJob, apply_plan, plan
from .reading import CsvReader, ImportFile, progress_of
from .records import Rejection
from .report import ImportReport
from .revert import revert_run

KINDS = ("annuaire", "cfa", "partners")
PARTNER_SOURCE_PREFIX = "partenaire:"

__all__ = ["KINDS", "ImportFile", "ImportReport", "import_file", "import_territory", "revert_run"]


def import_territory(conn: Connection, actor: Actor) -> frozenset[str] | None:
    """The départements an account's imports may write (None: national). A national administrator imports
    everywhere, an académie administrator in its académies, a curator in its départements; a partner's lists
    are imported by its curator. The workspace passes the result to `import_file`."""
    if actor.is_national:
        return None
    if actor.role == ACADEMIE_ADMIN and actor.academies:
        return frozenset(conn.execute(text("SELECT code FROM departement WHERE academie_code = ANY(:a)"),
                                      {"a": sorted(actor.academies)}).scalars())
    if actor.role == CURATOR and actor.departements:
        return frozenset(actor.departements)
    raise Forbidden("Les imports se font par un administrateur ou par un curateur d'un département : "
                    "demandez-le au curateur de votre territoire.")


def import_file(conn: Connection, kind: str, source_file: ImportFile, *, apply: bool,
                source: str | None = None, territory: Iterable[str] | None = None,
                imported_by: str = "system", geocoder: Geocoder | None = None, max_bytes: int = 200_000_000,
                expected_fingerprint: str | None = None,
                progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Import `source_file` as `kind`. `territory`: the département codes the importer may write (rows
    elsewhere are rejected), None for national. `source`: for `cfa`, which list (sifa, greta, mfr; guessed
    from the file name otherwise); for `partners`, the partner's name (required). Raises ImportRefused for a
    file that cannot be read as its format (nothing written)."""
    catalogue_source, adopts, csv_reader, rows = _rows(conn, kind, source_file, source, max_bytes)
    job = ImportJob(source=catalogue_source, rows=rows,
                    report=ImportReport(source=catalogue_source, file_name=source_file.name),
                    territory=frozenset(territory) if territory is not None else None, adopts=adopts,
                    geocoder=geocoder, progress=progress_of(source_file, progress),
                    extra_rejections=lambda: [Rejection(line, reason) for line, reason in
                                              (csv_reader.unreadable if csv_reader else [])])
    report = plan(conn, job)
    report.checksum = source_file.checksum  # the whole file has been read by now
    if apply:
        apply_plan(conn, job, imported_by=imported_by, expected_fingerprint=expected_fingerprint)
    return report


def _rows(conn: Connection, kind: str, source_file: ImportFile, source: str | None, max_bytes: int):
    """(catalogue source, source it adopts, the CSV reader if any, the parsed rows) for a kind of import."""
    if kind == "annuaire":
        csv_reader = annuaire.reader(source_file, max_bytes)
        return annuaire.SOURCE, annuaire.ADOPTS, csv_reader, annuaire.parse(csv_reader.rows())
    if kind == "cfa":
        which = source or cfa.which_list(source_file.name)
        if which not in cfa.LISTS:
            raise ImportRefused(f"{source_file.name} : quelle liste ? Précisez la source : sifa, greta ou mfr.")
        csv_reader = cfa.reader(which, source_file, max_bytes)
        return (cfa.LISTS[which].source, None, csv_reader,
                cfa.parse(which, csv_reader.rows(), cfa.commune_matcher(conn)))
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
        return (PARTNER_SOURCE_PREFIX + source.strip().lower(), None, csv_reader,
                partners.parse(raw_rows, cfa.commune_matcher(conn)))
    raise ImportRefused(f"Type d'import inconnu « {kind} » : {', '.join(KINDS)}.")
