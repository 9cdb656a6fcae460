"""Parse and validate request parameters in one place. Raises InvalidParameter with a message that says
what to fix; returns plain values the SQL layer can trust."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping

from .errors import InvalidParameter
from .taxonomy import SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES, VOIES


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
class TileCoordinates:
    z: int
    x: int
    y: int


def tile_coordinates(z: str, x: str, y: str, minzoom: int, maxzoom: int) -> TileCoordinates:
    """A tile of the XYZ scheme (Web Mercator, y from the north), as found in /{z}/{x}/{y}.mvt."""
    values = {}
    for name, raw in (("z", z), ("x", x), ("y", y)):
        if not (raw.isascii() and raw.isdigit()):
            raise InvalidParameter(f"'{name}' doit être un nombre entier positif ou nul (tuile z/x/y), "
                                   f"reçu '{raw}'.", parameter=name)
        values[name] = int(raw)
    if not minzoom <= values["z"] <= maxzoom:
        raise InvalidParameter(f"'z' doit être compris entre {minzoom} et {maxzoom} pour ce jeu de tuiles, "
                               f"reçu {values['z']} (au-delà, agrandissez la tuile du zoom {maxzoom}).",
                               parameter="z")
    last = (1 << values["z"]) - 1
    for name in ("x", "y"):
        if values[name] > last:
            raise InvalidParameter(f"'{name}' doit être compris entre 0 et {last} au zoom {values['z']}, "
                                   f"reçu {values[name]}.", parameter=name)
    return TileCoordinates(**values)
