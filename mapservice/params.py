"""Parse and validate request parameters in one place. Raises InvalidParameter with a message that says
what to fix; returns plain values the SQL layer can trust."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from .errors import InvalidParameter


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


@dataclass(frozen=True)
class NearestQuery:
    origin: Point
    limit: int


def nearest(args: Mapping[str, str], default_limit: int, max_limit: int) -> NearestQuery:
    return NearestQuery(origin=point(args), limit=integer(args, "limit", default_limit, 1, max_limit))
