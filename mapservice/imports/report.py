"""What an import found and what it does (or did): the report a dry run prints and an application applies."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field, fields

from .records import Rejection

FIELD_LABELS = {
    "name": "nom", "kind": "type de lieu", "address": "adresse", "postcode": "code postal",
    "commune_code": "commune", "geom": "position", "position_precision": "précision de la position",
    "phone": "téléphone", "email": "e-mail", "website": "site web", "onisep_url": "fiche Onisep",
    "status": "statut", "source": "source", "type": "type de solution", "title": "intitulé", "voie": "voie",
    "description": "description", "service_civique_formula": "formule", "vacant_places": "places libres",
    "min_age": "âge minimum", "max_age": "âge maximum",
}


@dataclass
class ImportReport:
    source: str
    file_name: str
    checksum: str = ""
    territory: list[str] | None = None
    rows_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    new: list[dict] = field(default_factory=list)  # {table, key, name}
    changed: list[dict] = field(default_factory=list)  # {table, key, name, fields: [{field, before, after}]}
    archived: list[dict] = field(default_factory=list)  # {table, key, name}
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)  # {table, key, name, field, current, incoming}
    warnings: list[dict] = field(default_factory=list)  # {line, key, message}
    run_id: int | None = None
    applied: bool = False

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows_read, "skipped": sum(self.skipped.values()), "new": len(self.new),
                "changed": len(self.changed), "unchanged": self.unchanged, "archived": len(self.archived),
                "rejected": len(self.rejected), "conflicts": len(self.conflicts)}

    @property
    def changes_anything(self) -> bool:
        return bool(self.new or self.changed or self.archived)

    @property
    def fingerprint(self) -> str:
        """Identifies exactly what the import would do: an application checks it is the reviewed dry run's."""
        plan = {"checksum": self.checksum, "territory": self.territory, "new": self.new, "changed": self.changed,
                "archived": self.archived}
        return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        """The report as JSON-ready data. Its lists are shared, not copied (dataclasses.asdict deep-copied every
        entry: seconds for a national file)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["rejected"] = [r.as_dict() for r in self.rejected]
        data["skipped"] = dict(self.skipped)
        data["counts"] = self.counts()
        data["fingerprint"] = self.fingerprint
        return data

    @staticmethod
    def _sites(entries: list[dict]) -> int:
        return sum(1 for e in entries if e["table"] == "site")

    def render(self, limit: int = 20) -> str:
        """The report as plain French text, each list cut after `limit` lines."""
        c = self.counts()
        mode = f"appliqué (import n° {self.run_id})" if self.applied else "essai à blanc : rien n'est écrit"
        lines = [f"Import {self.source} — {self.file_name} ({mode})",
                 f"  {c['rows']} lignes lues : {c['new']} nouveaux, {c['changed']} modifiés, "
                 f"{c['unchanged']} inchangés, {c['archived']} archivés, {c['rejected']} rejetés, "
                 f"{c['conflicts']} conflits, {c['skipped']} ignorés",
                 "  dont lieux : " + ", ".join(f"{n} {label}" for label, n in (
                     ("nouveaux", self._sites(self.new)), ("modifiés", self._sites(self.changed)),
                     ("archivés", self._sites(self.archived)))) + " ; le reste : leurs solutions"]
        if self.skipped:
            lines.append("  ignorés (pas des lieux d'accueil) : "
                         + ", ".join(f"{what} {n}" for what, n in self.skipped.most_common()))
        if not self.changes_anything:
            lines.append("  Rien à changer : le catalogue est déjà à jour avec ce fichier.")

        def section(title: str, items: list, show) -> None:
            if items:
                lines.append(f"{title} ({len(items)}) :")
                lines.extend("  " + show(item) for item in items[:limit])
                if len(items) > limit:
                    lines.append(f"  … et {len(items) - limit} autres (voir le rapport complet : --report)")

        section("Nouveaux", self.new, lambda n: f"{n['table']} {n['key']} {n['name']}")
        section("Modifiés", self.changed, lambda ch: f"{ch['table']} {ch['key']} {ch['name']} : " + "; ".join(
            f"{FIELD_LABELS.get(f['field'], f['field'])} « {f['before']} » → « {f['after']} »" for f in ch["fields"]))
        section("Archivés (fermés selon la source)", self.archived, lambda a: f"{a['table']} {a['key']} {a['name']}")
        section("Rejetés", self.rejected, lambda r: f"ligne {r.line}"
                + (f", colonne « {r.column} »" if r.column else "") + (f" ({r.key})" if r.key else "")
                + f" : {r.reason}")
        section("Conflits (modifié par une équipe depuis le dernier import : gardé)", self.conflicts,
                lambda k: f"{k['table']} {k['key']} {k['name']} : {FIELD_LABELS.get(k['field'], k['field'])} "
                          f"actuel « {k['current']} », source « {k['incoming']} »")
        section("Avertissements", self.warnings, lambda w: f"ligne {w['line']} ({w['key']}) : {w['message']}")
        lines.append(f"Empreinte du rapport : {self.fingerprint}")
        return "\n".join(lines)
