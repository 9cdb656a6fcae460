"""The catalogue's vocabulary, from the circular of 3 April 2013 (FOQUALE networks), with French labels."""

SOLUTION_TYPES = {
    "places_lycee": "Places disponibles en lycée",
    "structure_innovante": "Structure innovante (micro-lycée, lycée de la nouvelle chance, pôle innovant lycéen…)",
    "apprentissage": "Apprentissage (CFA, UFA)",
    "service_civique": "Mission de service civique",
    "formation_regionale": "Formation de la Région",
    "mission_locale": "Accompagnement en mission locale",
    "clause_sociale": "Emploi en clause sociale (marchés publics)",
    "greta": "Formation ou bilan au GRETA",
    "accueil_orientation": "Accueil et orientation (CIO, MLDS, plateforme)",
    "e2c": "École de la 2e chance (E2C)",
    "epide": "EPIDE (établissement pour l'insertion dans l'emploi)",
}

SITE_KINDS = {
    "lycee": "Lycée",
    "micro_lycee": "Micro-lycée ou structure innovante",
    "cfa": "Centre de formation d'apprentis (CFA)",
    "ufa": "Unité de formation par apprentissage (UFA)",
    "service_civique": "Structure d'accueil de service civique",
    "mission_locale": "Mission locale",
    "cio": "Centre d'information et d'orientation (CIO)",
    "mlds": "Mission de lutte contre le décrochage scolaire (MLDS)",
    "psad": "Plateforme de suivi et d'appui aux décrocheurs (PSAD)",
    "e2c": "École de la 2e chance (E2C)",
    "epide": "Centre EPIDE",
    "greta": "GRETA",
    "organisme_formation": "Organisme de formation",
}

VOIES = {
    "professionnelle": "Voie professionnelle",
    "generale": "Voie générale",
    "technologique": "Voie technologique",
}


def lycee_places_title(voie: str | None) -> str:
    """The title of a lycée's places in one of its voies (None: the voie is not known)."""
    return "Places en lycée" + (f" — {VOIES[voie][0].lower()}{VOIES[voie][1:]}" if voie else "")

SERVICE_CIVIQUE_FORMULAS = {
    "plein_temps": "À plein temps, avec un tuteur de l'Éducation nationale",
    "combinee": "Combinée : 21 h de mission + une dizaine d'heures en lycée par semaine",
}

CATALOGUE_STATUSES = ("draft", "published", "archived")
CATALOGUE_STATUS_LABELS = {"draft": "Brouillon", "published": "Publié", "archived": "Archivé"}
POSITION_PRECISIONS = ("address", "commune")

# What a young person can report about a solution ("Signaler une erreur"), for the local team to check.
ERROR_REPORT_REASONS = {
    "n_existe_plus": "Cette solution n'existe plus ou le lieu est fermé",
    "adresse": "L'adresse ou la position sur la carte est fausse",
    "contact": "Le téléphone, le mail ou le site internet ne marche pas",
    "places": "Le nombre de places libres est faux",
    "conditions": "Les conditions (âge, niveau, inscription) sont fausses",
    "autre": "Autre chose",
}

# What the search box finds.
PLACE_KINDS = {
    "commune": "Commune ou arrondissement",
    "postcode": "Code postal",
    "departement": "Département",
    "region": "Région",
}

# The teams' workspace: who may do what (mapservice.accounts.permissions has the rules).
ROLES = {
    "national_admin": "Administrateur national",
    "academie_admin": "Administrateur d'académie",
    "curator": "Référent de territoire",
    "partner": "Partenaire",
}

# Where a report from the public stands in the local team's inbox.
ERROR_REPORT_STATUSES = {
    "new": "Nouveau",
    "in_progress": "En cours",
    "resolved": "Résolu",
    "rejected": "Rejeté",
}
