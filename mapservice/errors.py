"""Domain errors. The web layer maps them once to HTTP statuses and a problem+json body."""


class MapserviceError(Exception):
    """Base class; `status` is the HTTP status the web layer answers with."""

    status = 500
    title = "Erreur interne"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidParameter(MapserviceError):
    status = 400
    title = "Paramètre invalide"


class NotFound(MapserviceError):
    status = 404
    title = "Introuvable"


class ClusterError(MapserviceError):
    """The embedded PostgreSQL cluster could not be set up or started."""

    status = 503
    title = "Base de données indisponible"


class ConfigurationError(MapserviceError):
    """A setting is missing or wrong: the service refuses to start and says which."""

    title = "Configuration incomplète"


class GeocoderUnavailable(MapserviceError):
    """The configured geocoder did not answer: the caller may still place the site by hand."""

    status = 503
    title = "Géocodeur indisponible"


class ImportRefused(MapserviceError):
    """An import file that cannot be read as its format (size, encoding, separator, header): nothing is
    written; the detail names the line and the column."""

    status = 400
    title = "Fichier refusé"


class ImportOutdated(MapserviceError):
    """The catalogue changed between an import's dry run and its application, or since the import to revert:
    nothing is written, the user runs the dry run again."""

    status = 409
    title = "Le catalogue a changé entre-temps"


class Gone(MapserviceError):
    status = 410
    title = "Plus disponible"


class Unauthorized(MapserviceError):
    """No valid session or API token."""

    status = 401
    title = "Connexion requise"


class Forbidden(MapserviceError):
    """The account may not do this to this record (outside its territory or its role)."""

    status = 403
    title = "Accès refusé"


class StaleVersion(MapserviceError):
    """Someone saved the record after this edit started: nothing is overwritten."""

    status = 409
    title = "Modifié entre-temps"


class TooManyAttempts(MapserviceError):
    """Too many failed logins for this account or from this address: wait, then try again."""

    status = 429
    title = "Trop de tentatives"


class Conflict(MapserviceError):
    """The request contradicts the record's state (e.g. figures of a period whose report is frozen)."""

    status = 409
    title = "Conflit"


class MailUnavailable(MapserviceError):
    """The SMTP server did not take the message."""

    status = 503
    title = "Envoi d'e-mail impossible"


class DatabaseUnavailable(MapserviceError):
    """The database does not answer (stopped, restarting, unreachable): the client may try again shortly."""

    status = 503
    title = "Service momentanément indisponible"
