"""Import files derived from the official extract, for the tests and the benchmark."""
from __future__ import annotations

from pathlib import Path

ANNUAIRE_35 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "annuaire-education-extrait-35" / \
    "fr-en-annuaire-education_dep035.csv"


def replicated_annuaire(path: Path, copies: int, source: Path = ANNUAIRE_35) -> Path:
    """The extract's rows `copies` times, each copy with its own keys (UAI + copy number) and its positions
    shifted by a metre per copy (so they stay in their commune): a national-size file from a real one."""
    lines = source.read_text(encoding="utf-8-sig").splitlines()
    header, rows = lines[0], lines[1:]
    columns = header.split(";")
    uai, lat, lon = (columns.index(c) for c in ("Identifiant_de_l_etablissement", "latitude", "longitude"))
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(header + "\r\n")
        for copy in range(copies):
            for row in rows:
                fields = row.split(";")
                if copy:
                    fields[uai] = f"{fields[uai]}-{copy:02d}"
                    for index in (lat, lon):
                        if fields[index]:
                            fields[index] = f"{float(fields[index]) + copy * 0.00001:.8f}"
                out.write(";".join(fields) + "\r\n")
    return path
