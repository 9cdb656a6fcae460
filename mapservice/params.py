"""Parse and validate request parameters in one place: a request's arguments become the values of
mapservice.values, which the core can trust. Raises InvalidParameter with a message that says what to fix."""
from __future__ import annotations

import base64
import datetime as dt
import math
import re
from typing import Iterable, Mapping

from .errors import InvalidParameter
from .reporting.access import ReportScope
from .reporting.figures import FIGURES as ACTIVITY_FIGURES, LABELS as ACTIVITY_LABELS, ActivityFigures, Objectives
from .reporting.periods import Period
from .taxonomy import ERROR_REPORT_REASONS, PLACE_KINDS, SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES, VOIES
from .values import (Area, BBox, DistanceCursor, ErrorReport, ItemsQuery, NearestQuery, PlaceQuery, Point,
                     SolutionFilters, TileCoordinates)


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


def known_only(args: Mapping[str, str], allowed: Iterable[str]) -> None:
    """A misspelt parameter would be silently ignored and give a wrong answer: refuse it instead."""
    allowed = tuple(allowed)
    unknown = [name for name in args if name not in allowed]
    if unknown:
        raise InvalidParameter(
            f"Paramètre inconnu : {', '.join(repr(n) for n in unknown)}. "
            f"Paramètres possibles : {', '.join(allowed)}.", parameter=unknown[0])


FILTER_PARAMETERS = ("type", "voie", "formula", "level", "domain", "has_vacancy", "open_to_minors", "starts_before")


# -- Where a search starts: a position, or a named area ------------------------------------------------



AREA_CODES = {
    # kind: (pattern, example)
    "commune": (re.compile(r"^(\d{5}|2[AB]\d{3})$"), "code INSEE à 5 caractères, par exemple 69123 ou 2A004"),
    "postcode": (re.compile(r"^\d{5}$"), "code postal à 5 chiffres, par exemple 69001"),
    "departement": (re.compile(r"^(\d{2}|2[AB]|97\d)$"), "code de département, par exemple 69, 2A ou 974"),
    "region": (re.compile(r"^\d{2}$"), "code de région INSEE à 2 chiffres, par exemple 84"),
}
ORIGIN_PARAMETERS = ("lat", "lon", *AREA_CODES)


def origin(args: Mapping[str, str], kinds: Iterable[str] = tuple(AREA_CODES)) -> Point | Area:
    """Exactly one origin: ?lat=&lon=, or one of ?commune= ?postcode= ?departement= ?region=."""
    kinds = tuple(kinds)
    given = [k for k in kinds if (args.get(k) or "").strip()]
    has_point = any((args.get(k) or "").strip() for k in ("lat", "lon"))
    choices_text = "une position (lat et lon) ou " + " ou ".join(repr(k) for k in kinds)
    if len(given) + has_point == 0:
        raise InvalidParameter(f"Indiquez d'où chercher : {choices_text}.", parameter="lat")
    if len(given) + has_point > 1:
        raise InvalidParameter(f"Indiquez un seul point de départ : {choices_text}, pas plusieurs.",
                               parameter=given[0])
    if has_point:
        return point(args)
    kind = given[0]
    code = args[kind].strip().upper()
    pattern, example = AREA_CODES[kind]
    if not pattern.match(code):
        raise InvalidParameter(f"'{kind}' attend un {example}, reçu '{args[kind]}'.", parameter=kind)
    return Area(kind=kind, code=code)


# -- Nearest solutions --------------------------------------------------------------------------------



def encode_cursor(*values) -> str:
    return base64.urlsafe_b64encode(",".join(repr(v) for v in values).encode()).decode().rstrip("=")


def _decode_cursor(args: Mapping[str, str], name: str, parts: int) -> list[str] | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        values = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split(",")
    except (ValueError, UnicodeDecodeError):
        values = []
    if len(values) != parts:
        raise InvalidParameter(f"'{name}' n'est pas un curseur valide : reprenez le lien 'next' de la page "
                               "précédente tel quel.", parameter=name)
    return values


def distance_cursor(args: Mapping[str, str]) -> DistanceCursor | None:
    values = _decode_cursor(args, "after", 2)
    if values is None:
        return None
    try:
        cursor = DistanceCursor(distance_m=float(values[0]), id=int(values[1]))
    except ValueError:
        cursor = None
    if cursor is None or not math.isfinite(cursor.distance_m) or cursor.distance_m < 0:
        raise InvalidParameter("'after' n'est pas un curseur valide : reprenez le lien 'next' de la page "
                               "précédente tel quel.", parameter="after")
    return cursor




NEAREST_PARAMETERS = (*ORIGIN_PARAMETERS, "radius", "in_area", "limit", "after", *FILTER_PARAMETERS)


def nearest(args: Mapping[str, str], default_limit: int, max_limit: int, max_radius_km: float = 200) -> NearestQuery:
    known_only(args, NEAREST_PARAMETERS)
    start = origin(args)
    radius = None
    raw = (args.get("radius") or "").strip()
    if raw:
        try:
            radius = float(raw)
        except ValueError:
            raise InvalidParameter(f"'radius' est un rayon en km (un nombre), reçu '{raw}'.",
                                   parameter="radius") from None
        if not math.isfinite(radius) or radius <= 0:
            raise InvalidParameter(f"'radius' est un rayon en km strictement positif, reçu '{raw}'.",
                                   parameter="radius")
        if radius > max_radius_km:
            raise InvalidParameter(
                f"'radius' est trop grand : {max_radius_km:g} km au plus, reçu {raw}. Sans 'radius', "
                "la recherche s'élargit d'elle-même jusqu'à trouver des résultats.", parameter="radius")
    # Searching "in a département" or "in a région" means inside it; around a commune or a postcode, not.
    in_area = isinstance(start, Area) and start.kind in ("departement", "region")
    if (args.get("in_area") or "").strip():
        in_area = boolean(args, "in_area")
        if in_area and not isinstance(start, Area):
            raise InvalidParameter("'in_area' ne s'applique qu'à une recherche depuis une commune, un code postal, "
                                   "un département ou une région.", parameter="in_area")
    return NearestQuery(origin=start, limit=integer(args, "limit", default_limit, 1, max_limit),
                        filters=solution_filters(args), radius_km=radius, in_area=in_area,
                        after=distance_cursor(args))


def identifier(value: str, what: str) -> int:
    """A catalogue id taken from the URL path."""
    if not value.isdigit() or len(value) > 18:
        raise InvalidParameter(f"L'identifiant de {what} est un nombre entier positif, reçu '{value}'.",
                               parameter="id")
    return int(value)


# -- Place search (the search box) -------------------------------------------------------------------





def place_search(args: Mapping[str, str], default_limit: int = 10, max_limit: int = 20) -> PlaceQuery:
    known_only(args, ("q", "kind", "limit"))
    text = " ".join((args.get("q") or "").split())
    if len(text) < 2:
        raise InvalidParameter("'q' est le texte cherché : au moins 2 caractères (nom de commune, code postal, "
                               "département ou région).", parameter="q")
    if len(text) > 100:
        raise InvalidParameter("'q' fait au plus 100 caractères.", parameter="q")
    return PlaceQuery(text=text, limit=integer(args, "limit", default_limit, 1, max_limit),
                      kinds=choices(args, "kind", PLACE_KINDS) or tuple(PLACE_KINDS))


# -- Who covers my area -------------------------------------------------------------------------------

def coverage(args: Mapping[str, str]) -> Point | Area:
    known_only(args, ("lat", "lon", "commune"))
    return origin(args, kinds=("commune",))


# -- OGC API Features items ---------------------------------------------------------------------------



def bbox(args: Mapping[str, str]) -> BBox | None:
    raw = (args.get("bbox") or "").strip()
    if not raw:
        return None
    what = "'bbox' vaut ouest,sud,est,nord en degrés WGS84 (longitudes puis latitudes), par exemple 4.7,45.7,4.9,45.8"
    try:
        west, south, east, north = (float(v) for v in raw.split(","))
    except ValueError:
        raise InvalidParameter(f"{what} ; reçu '{raw}'.", parameter="bbox") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)) \
            or not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidParameter(f"{what} ; reçu '{raw}' (hors limites ou sud > nord).", parameter="bbox")
    if west > east:
        raise InvalidParameter(f"{what} ; une boîte qui traverse l'antiméridien (ouest > est) n'est pas prise "
                               f"en charge, reçu '{raw}'.", parameter="bbox")
    return BBox(west, south, east, north)




def items(args: Mapping[str, str], default_limit: int, max_limit: int,
          property_names: Iterable[str]) -> ItemsQuery:
    known_only(args, ("bbox", "limit", "after", "properties", "f", *FILTER_PARAMETERS))
    if (args.get("f") or "json").strip().lower() not in ("json", "geojson"):
        raise InvalidParameter("'f' ne connaît que json (GeoJSON).", parameter="f")
    after = _decode_cursor(args, "after", 1)
    if after is not None and not after[0].isdigit():
        raise InvalidParameter("'after' n'est pas un curseur valide : reprenez le lien 'next' de la page "
                               "précédente tel quel.", parameter="after")
    properties = None
    if (args.get("properties") or "").strip():
        properties = choices(args, "properties", {name: name for name in property_names})
    return ItemsQuery(limit=integer(args, "limit", default_limit, 1, max_limit), bbox=bbox(args),
                      after_id=int(after[0]) if after else None, properties=properties,
                      filters=solution_filters(args))




ERROR_REPORT_FIELDS = {"reason": 32, "message": 2000, "contact": 200}


def error_report(solution_id: str, body: Mapping | None) -> ErrorReport:
    """'Signaler une erreur': a JSON object (or a form) with reason, message, contact."""
    solution = identifier(solution_id, "la solution")
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
    return ErrorReport(solution_id=solution, **values)




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


# -- The bimonthly report ------------------------------------------------------------------------------

REPORT_KINDS = {"national": "national", "academie": "academie", "departement": "departement",
                "plateforme": "platform"}


def report_scope(kind: str, code: str | None) -> ReportScope:
    """The URL's /national, /academie/10, /departement/69 or /plateforme/12 as a ReportScope."""
    if kind not in REPORT_KINDS:
        raise InvalidParameter(f"« {kind} » : le rapport porte sur national, academie, departement ou plateforme.",
                               parameter="scope")
    if kind == "national":
        return ReportScope("national")
    if not code or not re.fullmatch(r"[0-9A-Za-z]{1,10}", code):
        raise InvalidParameter(f"Le code « {code} » est invalide.", parameter="code")
    return ReportScope(REPORT_KINDS[kind], code.upper() if kind != "plateforme" else code)


def report_period(value: str) -> Period:
    return Period.parse(value)


def _count(body: Mapping, name: str, required: bool) -> int | None:
    """A whole number ≥ 0 of a JSON body or a form; messages name the figure in French (and the field)."""
    what = f"le nombre de {ACTIVITY_LABELS[name]}" if name in ACTIVITY_LABELS else f"le champ '{name}'"
    value = body.get(name)
    if isinstance(value, str):
        value = value.strip().replace(" ", "").replace("\u202f", "").replace("\xa0", "")  # « 1 200 » as typed
    if value is None or value == "":
        if required:
            raise InvalidParameter(f"Indiquez {what} (un nombre entier, 0 s'il n'y en a pas).", parameter=name)
        return None
    digits = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidParameter(f"{what[0].upper()}{what[1:]} doit être un nombre entier positif ou nul, reçu "
                               f"« {body.get(name)} ».", parameter=name)
    if len(digits) > 12:
        raise InvalidParameter(f"{what[0].upper()}{what[1:]} est bien trop grand : « {digits[:20]}… ».",
                               parameter=name)
    return int(digits)


def _body(body: Mapping | None, allowed: Iterable[str]) -> Mapping:
    if not isinstance(body, Mapping):
        raise InvalidParameter("Envoyez un objet JSON.", parameter="body")
    known_only(body, allowed)
    return body


def activity_figures(body: Mapping | None) -> tuple[ActivityFigures, int | None]:
    """{"contacted", "met", "proposed", "entered", "version"?} (a JSON body or a form) → (ActivityFigures,
    expected version)."""
    body = _body(body, (*ACTIVITY_FIGURES, "version"))
    return ActivityFigures(*(_count(body, f, True) for f in ACTIVITY_FIGURES)), _count(body, "version", False)


def objectives(body: Mapping | None) -> tuple[Objectives, int | None]:
    body = _body(body, (*ACTIVITY_FIGURES, "version"))
    return Objectives(*(_count(body, f, False) for f in ACTIVITY_FIGURES)), _count(body, "version", False)


def expected_version(body: Mapping | None) -> int:
    body = _body(body, ("version",))
    return _count(body, "version", True)
