"""What a form or a JSON body asks to save, checked field by field into values (French messages naming the
field). The workspace's forms and the integrators' API go through the same parsers."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Mapping

from ..errors import InvalidParameter
from ..links import checked_link
from ..taxonomy import CATALOGUE_STATUSES, SERVICE_CIVIQUE_FORMULAS, SITE_KINDS, SOLUTION_TYPES, VOIES


@dataclass(frozen=True)
class SiteInput:
    name: str
    kind: str
    commune_code: str
    address: str | None = None
    postcode: str | None = None
    lon: float | None = None  # None: geocode the address, else the commune's town hall
    lat: float | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    accessibility: str | None = None
    opening_hours: str | None = None


@dataclass(frozen=True)
class SolutionInput:
    type: str
    title: str
    description: str | None = None
    voie: str | None = None
    level: str | None = None
    domain: str | None = None
    capacity: int | None = None
    vacant_places: int | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    service_civique_formula: str | None = None
    hours_per_week: int | None = None
    school_hours_per_week: int | None = None
    min_age: int | None = None
    max_age: int | None = None
    eligibility: str | None = None
    how_to_apply: str | None = None


SITE_FIELDS = tuple(f.name for f in fields(SiteInput))
SOLUTION_FIELDS = tuple(f.name for f in fields(SolutionInput))


def _text(body: Mapping, name: str, max_length: int = 2000, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidParameter(f"Le champ '{name}' est obligatoire.", parameter=name)
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"'{name}' doit être du texte.", parameter=name)
    value = value.strip()
    if len(value) > max_length:
        raise InvalidParameter(f"'{name}' est trop long ({max_length} caractères au plus).", parameter=name)
    return value


def _choice(body: Mapping, name: str, allowed, required: bool = False) -> str | None:
    value = _text(body, name, 40, required)
    if value is not None and value not in allowed:
        raise InvalidParameter(f"'{name}' vaut « {value} » ; valeurs possibles : {', '.join(allowed)}.",
                               parameter=name)
    return value


def _integer(body: Mapping, name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(value.strip()) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError
    except ValueError:
        raise InvalidParameter(f"'{name}' doit être un nombre entier ; reçu « {str(value)[:20]} ».",
                               parameter=name) from None
    if not low <= number <= high:
        raise InvalidParameter(f"'{name}' doit être entre {low} et {high} ; reçu {number}.", parameter=name)
    return number


def _number(body: Mapping, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value.strip().replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"'{name}' doit être un nombre décimal ; reçu « {str(value)[:20]} ».",
                               parameter=name) from None
    if not low <= number <= high:
        raise InvalidParameter(f"'{name}' doit être entre {low} et {high}.", parameter=name)
    return number


def _date(body: Mapping, name: str) -> dt.date | None:
    value = _text(body, name, 10)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(f"'{name}' doit être une date AAAA-MM-JJ ; reçu « {value} ».", parameter=name) from None


def known_fields(body: Mapping, allowed) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidParameter(f"Champ inconnu : '{unknown[0]}'.", parameter=unknown[0])


def version(body: Mapping) -> int:
    found = _integer(body, "version", 1, 2**31 - 1)
    if found is None:
        raise InvalidParameter("'version' (la version de l'enregistrement au début de la modification) est "
                               "obligatoire.", parameter="version")
    return found


def status(body: Mapping) -> str:
    return _choice(body, "status", CATALOGUE_STATUSES, required=True)


def site_input(body: Mapping) -> SiteInput:
    lon, lat = _number(body, "lon", -180, 180), _number(body, "lat", -90, 90)
    if (lon is None) != (lat is None):
        raise InvalidParameter("Donnez la latitude et la longitude ensemble (ou aucune des deux).",
                               parameter="lat" if lat is None else "lon")
    postcode = _text(body, "postcode", 5)
    if postcode is not None and not (postcode.isdigit() and len(postcode) == 5):
        raise InvalidParameter(f"'postcode' doit compter 5 chiffres ; reçu « {postcode} ».", parameter="postcode")
    commune = _text(body, "commune_code", 5, required=True)
    return SiteInput(
        name=_text(body, "name", 200, required=True), kind=_choice(body, "kind", SITE_KINDS, required=True),
        commune_code=commune.upper(), address=_text(body, "address", 300), postcode=postcode, lon=lon, lat=lat,
        phone=_text(body, "phone", 40), email=_text(body, "email", 254),
        website=checked_link(_text(body, "website", 500), "website"),
        accessibility=_text(body, "accessibility"), opening_hours=_text(body, "opening_hours", 500))


def solution_input(body: Mapping) -> SolutionInput:
    found = SolutionInput(
        type=_choice(body, "type", SOLUTION_TYPES, required=True), title=_text(body, "title", 200, required=True),
        description=_text(body, "description"), voie=_choice(body, "voie", VOIES), level=_text(body, "level", 100),
        domain=_text(body, "domain", 200), capacity=_integer(body, "capacity", 0, 100000),
        vacant_places=_integer(body, "vacant_places", 0, 100000), start_date=_date(body, "start_date"),
        end_date=_date(body, "end_date"),
        service_civique_formula=_choice(body, "service_civique_formula", SERVICE_CIVIQUE_FORMULAS),
        hours_per_week=_integer(body, "hours_per_week", 0, 60),
        school_hours_per_week=_integer(body, "school_hours_per_week", 0, 60),
        min_age=_integer(body, "min_age", 14, 30), max_age=_integer(body, "max_age", 14, 30),
        eligibility=_text(body, "eligibility"), how_to_apply=_text(body, "how_to_apply"))
    if (found.type == "service_civique") != (found.service_civique_formula is not None):
        raise InvalidParameter("Une mission de service civique a une formule (plein_temps ou combinee), et elle "
                               "seule.", parameter="service_civique_formula")
    if found.vacant_places is not None and found.capacity is not None and found.vacant_places > found.capacity:
        raise InvalidParameter(f"Les places libres ({found.vacant_places}) dépassent la capacité ({found.capacity}).",
                               parameter="vacant_places")
    if found.start_date and found.end_date and found.end_date < found.start_date:
        raise InvalidParameter("La date de fin précède la date de début.", parameter="end_date")
    if found.min_age and found.max_age and found.min_age > found.max_age:
        raise InvalidParameter("L'âge minimum dépasse l'âge maximum.", parameter="max_age")
    return found


def vacant_places(body: Mapping, name: str) -> int | None:
    return _integer(body, name, 0, 100000)
