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


class Forbidden(MapserviceError):
    status = 403
    title = "Interdit"


class DatabaseUnavailable(MapserviceError):
    """The database does not answer (stopped, restarting, unreachable): the client may try again shortly."""

    status = 503
    title = "Service momentanément indisponible"
