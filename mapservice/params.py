"""Parse and validate request parameters in one place. Raises InvalidParameter with a message that says
what to fix; returns plain values the SQL layer can trust."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping

from .errors import InvalidParameter
from .taxonomy import ERROR_REPORT_REASONS, SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES, VOIES


def _number(args: Mapping[str, str], name: str, low: float, high: float, what: str) -> float:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        raise InvalidParameter(f"Le paramètre '{name}' est obligatoire ({what}).", parameter=name)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameter(f"'{name}' doit être un nombre décimal ({what}), reçu '{raw}'.",
                               parameter=name) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidParameter(f"'{name}' doit être compris entre {low:g} et {high:g} ({what}), reçu {raw}.",
                               parameter=name)
    return value


def integer(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"'{name}' doit être un nombre entier, reçu '{raw}'.", parameter=name) from None
    if not low <= value <= high:
        raise InvalidParameter(f"'{name}' doit être compris entre {low} et {high}, reçu {value}.", parameter=name)
    return value


@dataclass(frozen=True)
class Point:
    lon: float
    lat: float


def point(args: Mapping[str, str]) -> Point:
    """A WGS84 position given as ?lat=&lon= (decimal degrees)."""
    lat = _number(args, "lat", -90, 90, "latitude en degrés décimaux, par exemple 45.76")
    lon = _number(args, "lon", -180, 180, "longitude en degrés décimaux, par exemple 4.83")
    return Point(lon=lon, lat=lat)


def choices(args, name: str, allowed: Mapping[str, str]) -> tuple[str, ...]:
    """A list given as ?name=a,b or ?name=a&name=b, each value from `allowed`."""
    values = [v.strip() for raw in args.getlist(name) for v in raw.split(",") if v.strip()] \
        if hasattr(args, "getlist") else [v.strip() for v in (args.get(name) or "").split(",") if v.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidParameter(
            f"Valeur inconnue pour '{name}' : {', '.join(repr(v) for v in unknown)}. "
            f"Valeurs possibles : {', '.join(allowed)}.", parameter=name)
    return tuple(dict.fromkeys(values))


def boolean(args: Mapping[str, str], name: str) -> bool:
    raw = (args.get(name) or "").strip().lower()
    if raw in ("", "false", "0", "non", "no"):
        return False
    if raw in ("true", "1", "oui", "yes"):
        return True
    raise InvalidParameter(f"'{name}' vaut true ou false, reçu '{raw}'.", parameter=name)


def date(args: Mapping[str, str], name: str) -> dt.date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"'{name}' est une date AAAA-MM-JJ, reçu '{raw}'.", parameter=name) from None


def text_value(args: Mapping[str, str], name: str, max_length: int = 100) -> str | None:
    raw = (args.get(name) or "").strip()
    if len(raw) > max_length:
        raise InvalidParameter(f"'{name}' fait au plus {max_length} caractères.", parameter=name)
    return raw or None


@dataclass(frozen=True)
class SolutionFilters:
    """Filters shared by every way of reading the catalogue (nearest, items, tiles)."""

    types: tuple[str, ...] = ()
    voies: tuple[str, ...] = ()
    formulas: tuple[str, ...] = ()  # service civique: plein_temps, combinee
    level: str | None = None
    domain: str | None = None
    has_vacancy: bool = False
    open_to_minors: bool = False
    starts_before: dt.date | None = None


def solution_filters(args: Mapping[str, str]) -> SolutionFilters:
    return SolutionFilters(
        types=choices(args, "type", SOLUTION_TYPES),
        voies=choices(args, "voie", VOIES),
        formulas=choices(args, "formula", SERVICE_CIVIQUE_FORMULAS),
        level=text_value(args, "level"),
        domain=text_value(args, "domain"),
        has_vacancy=boolean(args, "has_vacancy"),
        open_to_minors=boolean(args, "open_to_minors"),
        starts_before=date(args, "starts_before"),
    )


@dataclass(frozen=True)
class NearestQuery:
    origin: Point
    limit: int
    filters: SolutionFilters = SolutionFilters()


def nearest(args: Mapping[str, str], default_limit: int, max_limit: int) -> NearestQuery:
    return NearestQuery(origin=point(args), limit=integer(args, "limit", default_limit, 1, max_limit),
                        filters=solution_filters(args))


@dataclass(frozen=True)
class ErrorReport:
    solution_id: int
    reason: str
    message: str | None
    contact: str | None


ERROR_REPORT_FIELDS = {"reason": 32, "message": 2000, "contact": 200}


def error_report(solution_id: str, body: Mapping | None) -> ErrorReport:
    """'Signaler une erreur': a JSON object (or a form) with reason, message, contact."""
    if not (solution_id.isascii() and solution_id.isdigit()) or len(solution_id) > 18:
        raise InvalidParameter(f"L'identifiant de la solution est un nombre entier positif, reçu '{solution_id}'.",
                               parameter="id")
    if body is None:
        raise InvalidParameter("Envoyez un objet JSON (ou un formulaire) avec les champs reason, message et "
                               "contact.", parameter="body")
    unknown = [name for name in body if name not in ERROR_REPORT_FIELDS]
    if unknown:
        raise InvalidParameter(f"Champ inconnu : {', '.join(repr(n) for n in unknown)}. "
                               f"Champs possibles : {', '.join(ERROR_REPORT_FIELDS)}.", parameter=unknown[0])
    values = {}
    for name, max_length in ERROR_REPORT_FIELDS.items():
        raw = body.get(name)
        if raw is not None and not isinstance(raw, str):
            raise InvalidParameter(f"'{name}' est un texte.", parameter=name)
        value = " ".join(raw.split()) if name != "message" and raw else (raw or "").strip()
        if len(value) > max_length:
            raise InvalidParameter(f"'{name}' fait au plus {max_length} caractères, reçu {len(value)}.",
                                   parameter=name)
        values[name] = value or None
    if values["reason"] not in ERROR_REPORT_REASONS:
        raise InvalidParameter(f"'reason' dit ce qui ne va pas, parmi : {', '.join(ERROR_REPORT_REASONS)}"
                               + (f" ; reçu '{values['reason']}'." if values["reason"] else "."), parameter="reason")
    if values["reason"] == "autre" and not values["message"]:
        raise InvalidParameter("Avec reason 'autre', 'message' est obligatoire : décrivez ce qui ne va pas.",
                               parameter="message")
    return ErrorReport(solution_id=int(solution_id), **values)
