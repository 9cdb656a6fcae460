"""The domain's values: what a request, a command or a file asks of the core, once validated. Every module of
the core takes these (never a request), so the HTTP layer, the command line and the importers speak one
language. Plain frozen dataclasses: no behaviour but what makes them comparable and hashable (cache keys)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """A WGS84 position, decimal degrees."""

    lon: float
    lat: float


@dataclass(frozen=True)
class Area:
    """A commune (INSEE code, arrondissements included), a postcode, a département or a région."""

    kind: str
    code: str


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


@dataclass(frozen=True)
class DistanceCursor:
    """Where a page of nearest results ended: the last distance (metres, exact) and id."""

    distance_m: float
    id: int


@dataclass(frozen=True)
class NearestQuery:
    origin: Point | Area
    limit: int
    filters: SolutionFilters = SolutionFilters()
    radius_km: float | None = None  # None: widen step by step until `limit` solutions are found
    in_area: bool = False  # only solutions inside the origin area
    after: DistanceCursor | None = None


@dataclass(frozen=True)
class PlaceQuery:
    text: str
    limit: int
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True)
class ItemsQuery:
    limit: int
    bbox: BBox | None = None
    after_id: int | None = None
    properties: tuple[str, ...] | None = None  # None: all
    filters: SolutionFilters = SolutionFilters()


@dataclass(frozen=True)
class ErrorReport:
    solution_id: int
    reason: str
    message: str | None
    contact: str | None


@dataclass(frozen=True)
class TileCoordinates:
    z: int
    x: int
    y: int


@dataclass(frozen=True, order=True)
class FeedCursor:
    """A position in the change feed: a transaction, a row of the change log, a position in the row's ids."""

    txid: int
    change_id: int
    position: int


@dataclass(frozen=True)
class ChangeQuery:
    """A page of the change feed after `since`, for the whole catalogue, an area (département, région) or a
    box."""

    since: FeedCursor
    limit: int
    area: Area | None = None
    bbox: BBox | None = None
