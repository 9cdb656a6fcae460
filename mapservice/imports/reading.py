"""Reading an import file as a stream: size, encoding, separator and header are checked before any row is
used, and every refusal is one French sentence naming the line (and the column when there is one).

Rows are yielded one at a time with their line number; the file is never read whole, and its SHA-256 and the
bytes read so far (for a progress bar) are kept as it goes."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

from ..errors import ImportRefused

csv.field_size_limit(1 << 20)  # a field over 1 MB is not a catalogue value: the row is refused, not the file
SEPARATORS = {";": "point-virgule", ",": "virgule", "\t": "tabulation", "|": "barre verticale"}


@dataclass
class ImportFile:
    """A file about to be imported: its name as the user knows it, and its bytes as a stream."""

    name: str
    stream: BinaryIO
    size: int | None = None  # known for a file on disk, not for an upload in progress
    sha256: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    bytes_read: int = 0

    @classmethod
    def open(cls, path: Path, name: str | None = None) -> ImportFile:
        return cls(name=name or path.name, stream=path.open("rb"), size=path.stat().st_size)

    @property
    def checksum(self) -> str:
        return self.sha256.hexdigest()

    def close(self) -> None:
        self.stream.close()

    def blocks(self, max_bytes: int, block: int = 1 << 20) -> Iterator[bytes]:
        """The raw bytes, hashed and counted a block at a time, each block ending with a whole line; refused
        as soon as the file proves bigger than `max_bytes` (before reading anything when its size is known)."""
        if self.size is not None and self.size > max_bytes:
            raise ImportRefused(f"{self.name} : {_mb(self.size)} Mo, au-delà de la limite de {_mb(max_bytes)} Mo "
                                "(refusé avant la ligne 1) : découpez le fichier par département, ou relevez "
                                "MAPSERVICE_IMPORT_MAX_MB.")
        rest = b""
        while chunk := self.stream.read(block):
            self.bytes_read += len(chunk)
            if self.bytes_read > max_bytes:
                raise ImportRefused(f"{self.name} : plus de {_mb(max_bytes)} Mo, au-delà de la limite "
                                    "(MAPSERVICE_IMPORT_MAX_MB) : découpez le fichier par département.")
            self.sha256.update(chunk)
            data = rest + chunk
            end = data.rfind(b"\n") + 1
            rest = data[end:]
            if end:
                yield data[:end]
        if rest:
            yield rest



def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f}".replace(",", "\u202f")


# File types people export by mistake instead of CSV, by their first bytes.
MAGIC = {b"\x89PNG": "une image PNG", b"%PDF": "un PDF", b"PK\x03\x04": "un classeur Excel ou une archive ZIP",
         b"\x1f\x8b": "une archive gzip", b"\xd0\xcf\x11\xe0": "un classeur Excel (.xls)", b"\xff\xd8\xff": "une image JPEG"}
CONTROL_BYTES = set(range(0, 9)) | set(range(14, 32))


def not_text(first_line: bytes) -> str | None:
    """What a file is when its first line shows it is not text (a spreadsheet, a PDF, an image...), or None."""
    for magic, what in MAGIC.items():
        if first_line.startswith(magic):
            return what
    if CONTROL_BYTES & set(first_line[:4096]):
        return "un fichier binaire"
    return None


class CsvRow:
    """One row: its line number, and its values by column name (`row["Nom"]`, `row.get("Nom")`)."""

    __slots__ = ("line", "values", "columns")

    def __init__(self, line: int, values: list[str], columns: dict[str, int]):
        self.line, self.values, self.columns = line, values, columns

    @classmethod
    def from_dict(cls, line: int, values: dict[str, str]) -> CsvRow:
        return cls(line, list(values.values()), {name: i for i, name in enumerate(values)})

    def __getitem__(self, name: str) -> str:
        return self.values[self.columns[name]]

    def get(self, name: str, default: str = "") -> str:
        index = self.columns.get(name)
        return default if index is None else self.values[index]


class CsvReader:
    """The rows of a CSV import file as dicts, after checking its header holds `required` columns.

    `separators`: the accepted ones, the first being the expected one of an official format."""

    def __init__(self, source: ImportFile, required: Sequence[str], separators: Sequence[str] = (";",),
                 max_bytes: int = 200_000_000, aliases: dict[str, str] | None = None):
        self.source = source
        self.aliases = aliases or {}  # another schema's name of a column -> the name used here
        self.required = list(required)
        self.separators = list(separators)
        self.max_bytes = max_bytes
        self.header: list[str] = []
        self.separator = separators[0]
        self.unreadable: list[tuple[int, str]] = []  # (line, reason): rows refused, the rest goes on

    def _decoded(self, blocks: Iterator[bytes], first_number: int) -> Iterator[str]:
        """Blocks of whole lines as text, decoded a block at a time (b"\\n" never occurs inside a UTF-8
        character); a refusal names the line of the first invalid byte."""
        number = first_number
        for data in blocks:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                start = data.rfind(b"\n", 0, exc.start) + 1  # of the line holding the invalid byte
                line = number + data.count(b"\n", 0, start)
                raise ImportRefused(
                    f"{self.source.name}, ligne {line}{self._column_at(data[start:exc.start], exc.start - start)} "
                    f": octet 0x{data[exc.start]:02x} invalide en UTF-8 "
                    "— le fichier est sans doute en Latin-1 (Windows) ; enregistrez-le en UTF-8 et recommencez."
                ) from None
            if "\x00" in text:
                line = number + text.count("\n", 0, text.index("\x00"))
                raise ImportRefused(f"{self.source.name}, ligne {line} : contenu binaire (octet nul) : ce n'est "
                                    "pas un fichier CSV texte.")
            number += data.count(b"\n")
            yield text

    def _column_at(self, raw: bytes, offset: int) -> str:
        """', colonne « X »' for the byte at `offset` of a raw line, when the header is known."""
        if not self.header:
            return ""
        index = raw[:offset].count(self.separator.encode())
        return f", colonne « {self.header[index]} »" if index < len(self.header) else ""

    def _names(self, first: str, sep: str) -> list[str]:
        names = [n.strip() for n in next(csv.reader([first], delimiter=sep))]
        return [self.aliases.get(n, n) for n in names]

    def _check_header(self, first: str) -> None:
        stripped = first.strip()
        if not stripped:
            raise ImportRefused(f"{self.source.name}, ligne 1 : la ligne d'en-tête est vide.")
        if stripped[0] in "{[<%" or stripped.startswith("PK"):
            raise ImportRefused(f"{self.source.name}, ligne 1 : ce n'est pas un fichier CSV (il commence par "
                                f"« {stripped[:20]} »).")
        best = None
        for sep in SEPARATORS:
            names = self._names(first, sep)
            found = [c for c in self.required if c in names]
            if best is None or len(found) > len(best[2]):
                best = (sep, names, found)
        sep, names, found = best
        if found and len(found) == len(self.required) and sep not in self.separators:
            expected = " ou ".join(f"« {s} » ({SEPARATORS[s]})" for s in self.separators)
            raise ImportRefused(f"{self.source.name}, ligne 1 : les colonnes sont séparées par « {sep} » "
                                f"({SEPARATORS[sep]}) ; ce format attend {expected}.")
        if sep not in self.separators:
            sep = self.separators[0]
            names = self._names(first, sep)
        missing = [c for c in self.required if c not in names]
        if len(missing) == len(self.required) and len(self.required) > 1:
            raise ImportRefused(f"{self.source.name}, ligne 1 : aucune des colonnes attendues (« "
                                f"{self.required[0]} », « {self.required[1]} »…) : ce n'est pas un fichier de ce "
                                "format, ou son en-tête manque.")
        if missing:
            raise ImportRefused(f"{self.source.name}, ligne 1 : colonne « {missing[0]} » absente de l'en-tête"
                                + (f" (et {len(missing) - 1} autre(s))" if len(missing) > 1 else "") + ".")
        self.separator, self.header = sep, names

    def rows(self) -> Iterator[CsvRow]:
        blocks = self.source.blocks(self.max_bytes)
        head = next(blocks, b"")
        end = head.find(b"\n") + 1 or len(head)
        first, rest = head[:end], head[end:]
        if not first.strip():
            raise ImportRefused(f"{self.source.name}, ligne 1 : le fichier est vide.")
        what = not_text(first)
        if what:
            raise ImportRefused(f"{self.source.name}, ligne 1 : ce n'est pas un fichier CSV mais {what} ; "
                                "enregistrez les données au format CSV (UTF-8).")
        self._check_header(next(self._decoded(iter([first]), 1)).lstrip("\ufeff"))
        columns = {name: i for i, name in enumerate(self.header)}
        # Lines of each decoded block as StringIO splits them (at "\n" only, as the csv module expects).
        lines = chain.from_iterable(map(io.StringIO, self._decoded(chain([rest], blocks), 2)))
        reader = csv.reader(lines, delimiter=self.separator)
        width = len(self.header)
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.unreadable.append((reader.line_num + 1, f"ligne illisible ({exc})"))
                continue
            line = reader.line_num + 1
            if len(values) != width:
                if len(values) > 1 or (values and values[0].strip()):
                    self.unreadable.append((line, f"{len(values)} champs au lieu de {width} (ligne illisible : "
                                                  "séparateur ou guillemet en trop ?)"))
                continue
            yield CsvRow(line, values, columns)


def progress_of(source: ImportFile, callback: Callable[[int, int | None], None] | None):
    """A function reporting the bytes read so far to `callback` (a progress bar), or a no-op."""
    if callback is None:
        return lambda: None
    return lambda: callback(source.bytes_read, source.size)
