"""Parse and validate request parameters in one place: a request's arguments become the values of
mapservice.values, which the core can trust. Raises InvalidParameter with a message that says what to fix."""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from typing import Iterable, Mapping

from .appdata import changelog
from .errors import InvalidParameter
from .reporting.access import ReportScope
from .reporting.figures import FIGURES as ACTIVITY_FIGURES, LABELS as ACTIVITY_LABELS, ActivityFigures, Objectives
from .reporting.periods import Period
from .taxonomy import ERROR_REPORT_REASONS, PLACE_KINDS, SERVICE_CIVIQUE_FORMULAS, SOLUTION_TYPES, VOIES
from .values import (Area, BBox, ChangeQuery, DistanceCursor, ErrorReport, ItemsQuery, NearestQuery, PlaceQuery,
                     Point, SolutionFilters, TileCoordinates)


BIGINT_MAX = 2**63 - 1  # ids are PostgreSQL bigints
# Control characters (NUL is refused by PostgreSQL in text) never belong in a parameter; tab and line breaks
# only in free text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _ascii_digits(raw: str) -> bool:
    """Only 0-9: str.isdigit() also accepts '²' and Arabic-Indic digits, which int() would read or refuse."""
    return raw.isascii() and raw.isdigit()


def clean_text(raw: str, name: str, free_text: bool = False) -> str:
    """`raw` unless it holds a control character or a lone surrogate (neither can be stored as UTF-8)."""
    if (_CONTROL_IN_TEXT if free_text else _CONTROL).search(raw):
        raise InvalidParameter(f"'{name}' contient un caractère de contrôle (octet nul, échappement…) : "
                               "envoyez du texte simple.", parameter=name)
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter(f"'{name}' n'est pas du texte Unicode valide (UTF-8).", parameter=name) from None
    return raw


def _number(args: Mapping[str, str], name: str, low: float, high: float, what: str) -> float:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        raise InvalidParameter(f"Le paramètre '{name}' est obligatoire ({what}).", parameter=name)
    try:
        if not raw.isascii():
            raise ValueError(raw)
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
        if not raw.isascii():
            raise ValueError(raw)
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
    raws = args.getlist(name) if hasattr(args, "getlist") else [args[name]] if name in args else []
    values = [v.strip() for raw in raws for v in raw.split(",") if v.strip()]
    if raws and not values:
        raise InvalidParameter(f"'{name}' est vide : donnez au moins une valeur parmi {', '.join(allowed)}, "
                               "ou retirez le paramètre.", parameter=name)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidParameter(
            f"Valeur inconnue pour '{name}' : {', '.join(repr(v) for v in unknown)}. "
            f"Valeurs possibles : {', '.join(allowed)}.", parameter=name)
    return tuple(dict.fromkeys(values))


def boolean(args: Mapping[str, str], name: str) -> bool:
    if name not in args:
        return False
    raw = args[name].strip().lower()
    if raw in ("false", "0", "non", "no"):
        return False
    if raw in ("true", "1", "oui", "yes"):
        return True
    raise InvalidParameter(f"'{name}' vaut true ou false, reçu '{raw}'.", parameter=name)


def date(args: Mapping[str, str], name: str) -> dt.date | None:
    if name not in args:
        return None
    raw = args[name].strip()
    try:
        if not raw.isascii():
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"'{name}' est une date AAAA-MM-JJ, reçu '{raw}'.", parameter=name) from None


def text_value(args: Mapping[str, str], name: str, max_length: int = 100) -> str | None:
    raw = clean_text((args.get(name) or "").strip(), name)
    if len(raw) > max_length:
        raise InvalidParameter(f"'{name}' fait au plus {max_length} caractères.", parameter=name)
    return raw or None




def solution_filters(args: Mapping[str, str]) -> SolutionFilters:
    if not args:  # no filter (most map tiles): nothing to look up
        return SolutionFilters()
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


# Lists may also be given as ?name=a&name=b; any other parameter given twice is ambiguous.
LIST_PARAMETERS = frozenset(("type", "voie", "formula", "kind", "properties"))


def known_only(args: Mapping[str, str], allowed: Iterable[str]) -> None:
    """A misspelt parameter would be silently ignored and give a wrong answer: refuse it instead; so is a
    parameter given twice (which value was meant?)."""
    allowed = tuple(allowed)
    unknown = [name for name in args if name not in allowed]
    if unknown:
        raise InvalidParameter(
            f"Paramètre inconnu : {', '.join(repr(n) for n in unknown)}. "
            f"Paramètres possibles : {', '.join(allowed)}.", parameter=unknown[0])
    if hasattr(args, "getlist"):
        for name in args:
            if name not in LIST_PARAMETERS and len(args.getlist(name)) > 1:
                raise InvalidParameter(f"'{name}' est donné plusieurs fois : donnez-le une seule fois.",
                                       parameter=name)


def output_format(args: Mapping[str, str]) -> None:
    """OGC API's ?f=: only JSON (GeoJSON for features) is served."""
    if "f" in args and args["f"].strip().lower() not in ("json", "geojson"):
        raise InvalidParameter(f"'f' ne connaît que json (GeoJSON), reçu '{args['f']}'.", parameter="f")


def format_only(args: Mapping[str, str]) -> None:
    """An OGC API document that takes no parameter but ?f=json."""
    known_only(args, ("f",))
    output_format(args)


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
    if not (code.isascii() and pattern.match(code)):
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
        values = base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)).decode("ascii").split(",")
    except (ValueError, UnicodeError):
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
        cursor = DistanceCursor(distance_m=float(values[0]), id=int(values[1])) if _ascii_digits(values[1]) else None
    except ValueError:
        cursor = None
    if cursor is None or not math.isfinite(cursor.distance_m) or cursor.distance_m < 0 or cursor.id > BIGINT_MAX:
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
    if not _ascii_digits(value) or len(value) > 18:
        raise InvalidParameter(f"L'identifiant de {what} est un nombre entier positif, reçu '{value}'.",
                               parameter="id")
    return int(value)


def year(value: str) -> int:
    """A calendar year taken from the URL path (the objectives' year)."""
    if not _ascii_digits(value) or not 2000 <= int(value) <= 2100:
        raise InvalidParameter(f"L'année est un nombre entre 2000 et 2100, reçu '{value}'.", parameter="year")
    return int(value)


# -- The change feed --------------------------------------------------------------------------------------

CHANGE_PARAMETERS = ("since", "limit", "departement", "region", "bbox")


def change_query(args: Mapping[str, str], default_limit: int = 500, max_limit: int = 1000) -> ChangeQuery:
    """?since=<cursor> (from a bundle or the previous page), ?limit=, and at most one of ?departement=,
    ?region=, ?bbox= for an app that keeps one area."""
    known_only(args, CHANGE_PARAMETERS)
    raw = (args.get("since") or "").strip()
    if not raw:
        raise InvalidParameter("'since' est obligatoire : le curseur du paquet téléchargé (/api/v1/bundles) ou le "
                               "'next' de la page précédente.", parameter="since")
    try:
        since = changelog.from_token(raw)
    except (ValueError, UnicodeError):
        raise InvalidParameter("'since' n'est pas un curseur de ce service : reprenez celui du paquet ou le 'next' "
                               "de la page précédente tel quel.", parameter="since") from None
    areas = [k for k in ("departement", "region", "bbox") if (args.get(k) or "").strip()]
    if len(areas) > 1:
        raise InvalidParameter("Suivez une seule zone : 'departement', 'region' ou 'bbox', pas plusieurs.",
                               parameter=areas[1])
    area = origin(args, (areas[0],)) if areas and areas[0] != "bbox" else None
    return ChangeQuery(since=since, limit=integer(args, "limit", default_limit, 1, max_limit), area=area,
                       bbox=bbox(args))


# -- Place search (the search box) -------------------------------------------------------------------





def place_search(args: Mapping[str, str], default_limit: int = 10, max_limit: int = 20) -> PlaceQuery:
    known_only(args, ("q", "kind", "limit"))
    text = " ".join(clean_text(args.get("q") or "", "q").split())
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
        if not raw.isascii():
            raise ValueError(raw)
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
    output_format(args)
    after = _decode_cursor(args, "after", 1)
    if after is not None and not (_ascii_digits(after[0]) and int(after[0]) <= BIGINT_MAX):
        raise InvalidParameter("'after' n'est pas un curseur valide : reprenez le lien 'next' de la page "
                               "précédente tel quel.", parameter="after")
    properties = None
    if (args.get("properties") or "").strip():
        properties = choices(args, "properties", {name: name for name in property_names})
    return ItemsQuery(limit=integer(args, "limit", default_limit, 1, max_limit), bbox=bbox(args),
                      after_id=int(after[0]) if after else None, properties=properties,
                      filters=solution_filters(args))




ERROR_REPORT_FIELDS = {"reason": 32, "message": 2000, "contact": 200}


def json_object(body: bytes) -> dict | None:
    """A request body holding a JSON object, or None when it holds another JSON value."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
        raise InvalidParameter("Le corps de la requête n'est pas un JSON valide (UTF-8, au plus quelques niveaux "
                               "d'imbrication).", parameter="body") from None
    return value if isinstance(value, dict) else None


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
        if raw:
            clean_text(raw, name, free_text=name == "message")
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
