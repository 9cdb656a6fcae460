"""Addresses to positions, through any service speaking the addok API (the French national address geocoder's
API shape), set by URL (settings group `geocoder`). None is configured by default: the public side never calls
a third party, and a site saved or imported without a geocoder is placed at its commune's town hall.

- `Geocoder.search()`: one address (a team saving a site), `GET /search/`;
- `Geocoder.search_many()`: many addresses (imports), a few requests at a time.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import requests

from .errors import GeocoderUnavailable
from .settings import GeocoderSettings
from .values import Point

# Below this addok score, a result is more likely a guess than the address (addok scores are 0..1).
MIN_SCORE = 0.5


@dataclass(frozen=True)
class GeocodedAddress:
    point: Point
    label: str  # the address as the geocoder understood it
    score: float
    kind: str  # housenumber, street, locality or municipality: how precise the position is
    citycode: str | None  # INSEE code of the commune
    postcode: str | None

    @property
    def is_address(self) -> bool:
        """Precise enough to be called the site's address (not only its street or town)."""
        return self.kind in ("housenumber", "street", "locality")


@dataclass(frozen=True)
class AddressQuery:
    key: str  # the caller's id for the row
    text: str  # "12 rue de la Paix"
    postcode: str | None = None
    citycode: str | None = None
    city: str | None = None


class Geocoder:
    def __init__(self, url: str, timeout_s: float = 5.0, session: requests.Session | None = None):
        self.url = url.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self._http = session or requests.Session()

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self._http.request(method, self.url + path, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise GeocoderUnavailable(f"Le géocodeur ne répond pas ({type(exc).__name__}) : réessayez, ou placez "
                                      "le lieu à la main sur la carte.") from None
        if response.status_code != 200:
            raise GeocoderUnavailable(f"Le géocodeur a répondu {response.status_code} : réessayez, ou placez le lieu "
                                      "à la main sur la carte.")
        return response

    def search(self, text: str, *, postcode: str | None = None, citycode: str | None = None,
               min_score: float = MIN_SCORE) -> GeocodedAddress | None:
        """The best match of one address, within the postcode or commune when given; None when nothing matches
        well enough."""
        if not text.strip():
            return None
        query = {"q": text, "limit": 1}
        if postcode:
            query["postcode"] = postcode
        if citycode:
            query["citycode"] = citycode
        features = self._call("GET", "search/", params=query).json().get("features") or []
        if not features:
            return None
        props = features[0]["properties"]
        lon, lat = features[0]["geometry"]["coordinates"]
        found = GeocodedAddress(point=Point(lon=lon, lat=lat), label=props.get("label", ""),
                                score=float(props.get("score", 0)), kind=props.get("type", ""),
                                citycode=props.get("citycode"), postcode=props.get("postcode"))
        return found if found.score >= min_score else None

    def search_many(self, queries: Sequence[AddressQuery], min_score: float = MIN_SCORE,
                    workers: int = 8) -> dict[str, GeocodedAddress | None]:
        """Many addresses (an import), a few requests at a time: {query key: best match or None}."""
        def one(q: AddressQuery) -> tuple[str, GeocodedAddress | None]:
            text = " ".join(p for p in (q.text, q.city) if p)
            return q.key, self.search(text, postcode=q.postcode, citycode=q.citycode, min_score=min_score)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(pool.map(one, queries))


def geocoder_from(settings: GeocoderSettings) -> Geocoder | None:
    """The configured geocoder, or None."""
    return Geocoder(settings.url, settings.timeout_s) if settings.url else None
