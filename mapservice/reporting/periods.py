"""Two-month reporting periods: January–February, March–April, … November–December. A period is named by its
first month, `2026-11` for November–December 2026."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..errors import InvalidParameter

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")
NAME = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    year: int
    first_month: int  # 1, 3, 5, 7, 9 or 11

    def __post_init__(self):
        if self.first_month not in (1, 3, 5, 7, 9, 11):
            raise ValueError("a period starts on an odd month")

    @classmethod
    def containing(cls, day: dt.date) -> Period:
        return cls(day.year, day.month - (day.month - 1) % 2)

    @classmethod
    def parse(cls, value: str, parameter: str = "period") -> Period:
        match = NAME.match(value or "")
        if match is None or not 2000 <= int(match[1]) <= 2100 or int(match[2]) not in (1, 3, 5, 7, 9, 11):
            raise InvalidParameter(
                f"« {value} » n'est pas une période : écrivez l'année et le premier mois, impair, de la période de "
                "deux mois, par exemple 2026-11 pour novembre–décembre 2026.", parameter=parameter)
        return cls(int(match[1]), int(match[2]))

    @property
    def name(self) -> str:
        return f"{self.year}-{self.first_month:02d}"

    @property
    def label(self) -> str:
        return f"{MONTHS[self.first_month - 1]}–{MONTHS[self.first_month]} {self.year}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.first_month, 1)

    @property
    def end(self) -> dt.date:
        """The first day after the period."""
        return self.next().start

    def next(self) -> Period:
        return Period(self.year + 1, 1) if self.first_month == 11 else Period(self.year, self.first_month + 2)

    def previous(self) -> Period:
        return Period(self.year - 1, 11) if self.first_month == 1 else Period(self.year, self.first_month - 2)

    def last(self, count: int) -> list[Period]:
        """The `count` periods ending with this one, oldest first."""
        periods = [self]
        while len(periods) < count:
            periods.append(periods[-1].previous())
        return periods[::-1]

    def is_closed(self, today: dt.date) -> bool:
        return today >= self.end
