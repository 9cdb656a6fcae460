"""Addresses to positions through a real addok (the French national geocoder's API), indexed with the
annuaire extract's addresses."""
import pytest

from mapservice.errors import GeocoderUnavailable
from mapservice.geocoding import AddressQuery, Geocoder, geocoder_from
from mapservice.settings import GeocoderSettings


def test_no_geocoder_is_configured_by_default(monkeypatch):
    monkeypatch.delenv("MAPSERVICE_GEOCODER_URL", raising=False)
    assert geocoder_from(GeocoderSettings()) is None


def test_an_address_is_found_at_its_number(addok_url):
    found = Geocoder(addok_url).search("6 rue Philippe", postcode="35580")
    assert found is not None and found.is_address
    assert found.citycode == "35016" and found.kind == "housenumber"
    # The school's position in the annuaire (Baulon), to the metre.
    assert found.point.lon == pytest.approx(-1.92949, abs=1e-4)
    assert found.point.lat == pytest.approx(47.98614, abs=1e-4)


def test_the_commune_narrows_the_search(addok_url):
    elsewhere = Geocoder(addok_url).search("6 rue Philippe", citycode="35238")  # Rennes, not Baulon
    assert elsewhere is None or elsewhere.citycode == "35238"


def test_nonsense_finds_nothing(addok_url):
    assert Geocoder(addok_url).search("zzzz qqqq wwww") is None
    assert Geocoder(addok_url).search("   ") is None


def test_many_addresses_at_once(addok_url):
    found = Geocoder(addok_url).search_many([
        AddressQuery("baulon", "6 rue Philippe", postcode="35580"),
        AddressQuery("nowhere", "zzzz qqqq wwww"),
    ])
    assert found["baulon"].citycode == "35016"
    assert found["nowhere"] is None


def test_a_geocoder_that_does_not_answer_is_a_clear_error():
    from mapservice.cluster import free_port

    with pytest.raises(GeocoderUnavailable) as error:
        Geocoder(f"http://127.0.0.1:{free_port()}", timeout_s=1).search("6 rue Philippe")
    assert error.value.status == 503 and "à la main" in error.value.detail
