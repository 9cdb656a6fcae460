"""Undo an applied import as a whole: records it created are deleted, fields it changed get their previous
values back, and the source's remembered values are those before it. Refused (nothing written) when a later
import of the same source is still applied, or when a team has edited one of its records since: reverting
would then destroy someone's work."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import ImportOutdated, InvalidParameter, NotFound
from .pipeline import FIELDS, _set_from


def revert_run(conn: Connection, run_id: int, reverted_by: str = "system") -> dict[str, int]:
    """Revert import `run_id` within the caller's transaction; returns how many records were deleted and
    restored."""
    run = conn.execute(text("SELECT id, source, status FROM import_run WHERE id = :id FOR UPDATE"),
                       {"id": run_id}).mappings().first()
    if run is None:
        raise NotFound(f"Import n° {run_id} introuvable.")
    if run["status"] != "applied":
        raise InvalidParameter(f"L'import n° {run_id} est déjà annulé.", parameter="run")
    later = conn.scalar(text("""SELECT min(id) FROM import_run WHERE source = :source AND id > :id
                                AND status = 'applied'"""), {"source": run["source"], "id": run_id})
    if later:
        raise ImportOutdated(f"L'import n° {later} de la même source est venu après : annulez-le d'abord.")
    edited = conn.execute(text("""
        SELECT ch.record_table || ' ' || ch.source_key FROM import_change ch
        LEFT JOIN site s ON ch.record_table = 'site' AND s.id = ch.record_id
        LEFT JOIN solution o ON ch.record_table = 'solution' AND o.id = ch.record_id
        WHERE ch.run_id = :id AND COALESCE(s.version, o.version) IS DISTINCT FROM ch.version_after
        ORDER BY ch.id LIMIT 6"""), {"id": run_id}).scalars().all()
    if edited:
        raise ImportOutdated(f"Des fiches de cet import ont été modifiées depuis ({', '.join(edited[:5])}"
                             f"{'…' if len(edited) > 5 else ''}) : l'annuler effacerait ce travail.")
    counts = {}
    for table in ("solution", "site"):
        counts[f"{table}_deleted"] = conn.execute(text(f"""
            DELETE FROM {table} t USING import_change ch
            WHERE ch.run_id = :id AND ch.record_table = '{table}' AND ch.action = 'insert'
              AND t.id = ch.record_id"""), {"id": run_id}).rowcount
        counts[f"{table}_restored"] = conn.execute(text(f"""
            UPDATE {table} t SET {_set_from(FIELDS[table], 'ch.before')},
                source = CASE WHEN ch.before ? 'source' THEN ch.before ->> 'source' ELSE t.source END,
                version = t.version + 1, updated_at = now(), updated_by = :who
            FROM import_change ch
            WHERE ch.run_id = :id AND ch.record_table = '{table}' AND ch.action = 'update'
              AND t.id = ch.record_id"""), {"id": run_id, "who": reverted_by}).rowcount
    # What the source gave before this import, for the next comparison.
    conn.execute(text("""
        DELETE FROM import_record r USING import_change ch
        WHERE ch.run_id = :id AND ch.record_before IS NULL AND r.record_table = ch.record_table
          AND r.source = :source AND r.source_key = ch.source_key"""), {"id": run_id, "source": run["source"]})
    conn.execute(text("""
        UPDATE import_record r SET fields = ch.record_before,
            run_id = COALESCE((SELECT max(id) FROM import_run WHERE source = :source AND id < :id), r.run_id)
        FROM import_change ch
        WHERE ch.run_id = :id AND ch.record_before IS NOT NULL AND r.record_table = ch.record_table
          AND r.source = :source AND r.source_key = ch.source_key"""), {"id": run_id, "source": run["source"]})
    conn.execute(text("""UPDATE import_run SET status = 'reverted', reverted_at = now(), reverted_by = :who
                         WHERE id = :id"""), {"id": run_id, "who": reverted_by})
    return counts
