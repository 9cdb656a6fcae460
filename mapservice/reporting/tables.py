"""A scope's report as tables (title, columns, rows of plain values): what the page shows and what the CSV and
XLSX exports hold, cell for cell. Shares are percentages with one decimal."""
from __future__ import annotations

from dataclasses import dataclass

from ..taxonomy import SERVICE_CIVIQUE_FORMULAS, VOIES
from .figures import FIGURES, LABELS as FIGURE_LABELS
from .indicators import BANDS_KM, WHITE_ZONE_TYPES

KIND_LABELS = {"national": "France", "academie": "Académie", "departement": "Département",
               "platform": "Plateforme PSAD"}
SHORT_TYPES = {
    "places_lycee": "Places en lycée", "structure_innovante": "Micro-lycées, structures innovantes",
    "apprentissage": "Apprentissage (CFA, UFA)", "service_civique": "Service civique",
    "formation_regionale": "Formation de la Région", "mission_locale": "Mission locale",
    "clause_sociale": "Clause sociale", "greta": "GRETA", "accueil_orientation": "CIO, MLDS, plateformes",
    "e2c": "E2C", "epide": "EPIDE",
}


@dataclass(frozen=True)
class Table:
    name: str  # file and sheet name
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]


def percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def km(metres: int | None) -> float | None:
    return None if metres is None else round(metres / 1000, 1)


def tables(view: dict) -> list[Table]:
    cat, cov, act = view["catalogue"], view["coverage"], view["activity"]
    reports = cat["reports"]
    out = [
        Table("indicateurs", "Indicateurs du catalogue", ("Indicateur", "Valeur"), [
            ("Solutions publiées", cat["published"]),
            ("Nouvelles solutions publiées sur la période", cat["new"]),
            ("Solutions archivées sur la période", cat["archived"]),
            ("Places vacantes annoncées", cat["vacant_places"]),
            ("Part des solutions vérifiées depuis moins de 180 jours (%)", percent(cat["checked_share"])),
            ("Âge médian de la dernière vérification (jours)", cat["median_check_age_days"]),
            ("Solutions jamais vérifiées", cat["never_checked"]),
            ("Signalements reçus sur la période", reports["received"]),
            ("Signalements traités sur la période", reports["resolved"]),
            ("Délai médian de traitement (jours)", reports["median_days_to_resolve"]),
            ("Communes en zone blanche", view["zones_blanches"]["communes"]),
            ("Population en zone blanche", view["zones_blanches"]["population"]),
        ]),
        Table("solutions", "Solutions par type", ("Type", "Publiées", "Nouvelles", "Archivées", "Places vacantes"),
              [(SHORT_TYPES[t], v["published"], v["new"], v["archived"], v["vacant_places"])
               for t, v in cat["by_type"].items()]
              + [(f"dont {VOIES[v].lower()}", n, None, None, None) for v, n in sorted(cat["by_voie"].items())]
              + [(f"dont service civique {SERVICE_CIVIQUE_FORMULAS[f].split(',')[0].split(' :')[0].lower()}", n,
                  None, None, None) for f, n in sorted(cat["by_formula"].items())]),
        Table("couverture", f"Part de la population à moins de {', '.join(map(str, BANDS_KM))} km d'une solution "
                            f"publiée (population : {cov['population']:,} habitants)".replace(",", " "),
              ("Type", *(f"À moins de {b} km (%)" for b in BANDS_KM)),
              [(SHORT_TYPES[t], *(percent(v[f"within_{b}km"]) for b in BANDS_KM)) for t, v in cov["by_type"].items()]),
        Table("activite", "Activité des plateformes (chiffres validés par l'académie)",
              ("Chiffre", "Sur la période", "Objectif de l'année", "Réalisé depuis janvier", "Avancement (%)"),
              [(FIGURE_LABELS[f].capitalize(), act[f], *_objective(view["objectives"], f)) for f in FIGURES]
              + [("Plateformes ayant des chiffres validés", act["platforms_validated"], None, None, None),
                 ("Plateformes dont les chiffres attendent la validation", act["platforms_pending"], None, None, None),
                 ("Plateformes du territoire", act["platforms"], None, None, None)]),
    ]
    if view["children"]:
        out.append(Table(
            "territoires", "Par territoire",
            ("Territoire", "Nom", "Code", "Solutions publiées", "Nouvelles", "Places vacantes",
             "Vérifiées < 180 j (%)", "Micro-lycées à < 30 km (%)", "Population en zone blanche",
             "Jeunes contactés", "Jeunes entrés dans une solution"),
            [(KIND_LABELS[c["scope"]["kind"]], c["scope"]["name"], c["scope"]["code"], c["catalogue"]["published"],
              c["catalogue"]["new"], c["catalogue"]["vacant_places"], percent(c["catalogue"]["checked_share"]),
              percent(c["coverage"]["by_type"]["structure_innovante"]["within_30km"]),
              c["zones_blanches"]["population"], c["activity"]["contacted"], c["activity"]["entered"])
             for c in view["children"]]))
    out.append(Table(
        "evolution", "Évolution sur les dernières périodes",
        ("Période", "Solutions publiées", "Nouvelles", "Archivées", "Places vacantes", "Vérifiées < 180 j (%)",
         "Population en zone blanche", *(FIGURE_LABELS[f].capitalize() for f in FIGURES)),
        [(e["label"], e["published"], e["new"], e["archived"], e["vacant_places"], percent(e["checked_share"]),
          e["zones_blanches_population"], *(e[f] for f in FIGURES)) for e in view["evolution"]]))
    out.append(Table(
        "zones_blanches", "Zones blanches : communes à plus de 30 km de toute structure innovante, de tout lieu "
                          "d'apprentissage et de toute mission locale",
        ("Code INSEE", "Commune", "Département", "Population",
         *(f"{SHORT_TYPES[t]} la plus proche (km, vide : plus de 60)" for t in WHITE_ZONE_TYPES)),
        [(z["code"], z["name"], z["departement"], z["population"], *(km(z[f"{t}_m"]) for t in WHITE_ZONE_TYPES))
         for z in view["zones_blanches_communes"]]))
    return out


def _objective(objectives: dict | None, figure: str) -> tuple:
    if not objectives or objectives[figure]["target"] is None:
        return None, None, None
    o = objectives[figure]
    return o["target"], o["achieved"], percent(o["progress"])


