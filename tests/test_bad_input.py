"""No input makes the service fail: every cause of a 500 the outside test of issue 13 found is now a 4xx
problem+json naming the parameter, the API is fuzzed from its OpenAPI document by schemathesis, and the
parameter parser is property-tested with hypothesis."""
from __future__ import annotations

import base64
import html
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.engine import make_url
from werkzeug.datastructures import MultiDict

from mapservice import params
from mapservice.cluster import free_port
from mapservice.errors import InvalidParameter

from .conftest import dispose_app, make_test_app


def cursor(*values) -> str:
    return base64.urlsafe_b64encode(",".join(values).encode()).decode().rstrip("=")


def assert_problem(response, status: int, parameter: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["detail"]
    if parameter:
        assert body["parameter"] == parameter, body


SOLUTION = 1
NUL = "%00"


@pytest.mark.parametrize("url, parameter", [
    # a search restricted to postcodes with a text that cannot start one used to be an empty SQL UNION
    ("/api/v1/places?q=lyon&kind=postcode", None),
])
def test_a_search_with_nothing_to_look_in_finds_nothing(client, url, parameter):
    response = client.get(url)
    assert response.status_code == 200
    assert response.get_json()["features"] == []


@pytest.mark.parametrize("url, parameter", [
    # Unicode digits ('²' is a digit for str.isdigit(); Arabic-Indic digits are read as numbers by int())
    ("/api/v1/solutions/%C2%B2", "id"),
    ("/api/v1/solutions/%D9%A1%D9%A2", "id"),
    ("/api/v1/sites/%C2%B2", "id"),
    ("/api/v1/ogc/collections/solutions/items/%D9%A1", "id"),
    ("/api/v1/solutions/nearest?lat=%D9%A4%D9%A5&lon=4.8", "lat"),
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&limit=%D9%A5", "limit"),
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&after=" + cursor("1.5", "\u0661\u0662"), "after"),
    ("/api/v1/ogc/collections/solutions/items?after=" + cursor("\u0661\u0662"), "after"),
    ("/api/v1/ogc/collections/solutions/items?after=" + cursor("²"), "after"),
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&starts_before=%D9%A2%D9%A0%D9%A2%D9%A6-01-01", "starts_before"),
    # a cursor whose id exceeds PostgreSQL's bigint
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&after=" + cursor("1.5", "99999999999999999999"), "after"),
    ("/api/v1/ogc/collections/solutions/items?after=" + cursor("99999999999999999999"), "after"),
    # a NUL byte (PostgreSQL refuses it in text)
    (f"/api/v1/places?q=ly{NUL}on", "q"),
    (f"/api/v1/solutions/nearest?lat=45.7&lon=4.8&level=CAP{NUL}", "level"),
    (f"/api/v1/solutions/nearest?lat=45.7&lon=4.8&domain={NUL}", "domain"),
    (f"/tiles/solutions/10/525/365.mvt?level={NUL}x", "level"),
    (f"/tiles/solutions/10/525/365.mvt?domain=a{NUL}", "domain"),
    # an empty list or date is a mistake, not "no filter"
    ("/api/v1/places?q=lyon&kind=", "kind"),
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&starts_before=", "starts_before"),
    ("/api/v1/solutions/nearest?lat=45.7&lon=4.8&has_vacancy=", "has_vacancy"),
    # a parameter given twice: which value was meant?
    ("/api/v1/solutions/nearest?lat=45.7&lat=46&lon=4.8", "lat"),
    ("/api/v1/places?q=lyon&q=paris", "q"),
    # f= is checked against its enum everywhere
    ("/api/v1/ogc/?f=xml", "f"),
    ("/api/v1/ogc/collections?f=html", "f"),
    ("/api/v1/ogc/collections/solutions/items/1?f=csv", "f"),
])
def test_bad_parameters_are_a_400_naming_them(client, url, parameter):
    assert_problem(client.get(url), 400, parameter)


def test_repeated_list_parameters_are_still_a_list(client):
    response = client.get("/api/v1/solutions/nearest?lat=45.76&lon=4.83&type=apprentissage&type=mission_locale")
    assert response.status_code == 200
    assert {f["properties"]["type"] for f in response.get_json()["features"]} <= {"apprentissage", "mission_locale"}


@pytest.mark.parametrize("body, parameter", [
    ({"reason": "autre", "message": "bon\x00jour"}, "message"),
    ({"reason": "contact", "contact": "a\x00b"}, "contact"),
    ({"reason": "autre\x00"}, "reason"),
])
def test_report_fields_with_a_nul_byte_are_a_400(client, body, parameter):
    assert_problem(client.post(f"/api/v1/solutions/{SOLUTION}/error-reports", json=body), 400, parameter)


@pytest.mark.parametrize("raw, parameter", [
    pytest.param("[" * 10_000 + "]" * 10_000, "body", id="nested-10000-deep"),  # RecursionError
    pytest.param('{"reason": "autre", "message": "\\ud800"}', "message", id="lone-surrogate"),
    pytest.param('{"reason": "autre", "message": ', "body", id="truncated"),
    pytest.param(b'{"reason": "\xff"}', "body", id="not-utf8"),
])
def test_malformed_json_bodies_are_a_400(client, raw, parameter):
    response = client.post(f"/api/v1/solutions/{SOLUTION}/error-reports", data=raw,
                           content_type="application/json")
    assert_problem(response, 400, parameter)


def test_a_report_form_with_a_nul_byte_is_a_400(client):
    response = client.post(f"/api/v1/solutions/{SOLUTION}/error-reports", data={"reason": "autre", "message": "a\x00"})
    assert_problem(response, 400, "message")


def test_a_report_for_a_unicode_digit_id_is_a_400(client):
    assert_problem(client.post("/api/v1/solutions/%C2%B2/error-reports", json={"reason": "autre"}), 400, "id")


def test_a_body_over_the_cap_is_refused_before_it_is_read(client):
    response = client.post(f"/api/v1/solutions/{SOLUTION}/error-reports", data=b"x" * (1024 * 1024),
                           content_type="application/json")
    assert_problem(response, 413)


def test_a_wrong_method_is_a_405_with_allow(client):
    response = client.delete("/api/v1/solutions/nearest")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}
    assert_problem(client.get(f"/api/v1/solutions/{SOLUTION}/error-reports"), 405)


@pytest.mark.parametrize("url", [
    f"/api/v1/bundles/{NUL}/0/0.json.gz",
    f"/api/v1/bundles/departement/6{NUL}/0123456789abcdef0123456789abcdef.json.gz",
    f"/api/v1/bundles/departement/69/{NUL}.json.gz",
    f"/api/v1/bundles/region/8{NUL}",
])
def test_a_bundle_address_that_cannot_exist_is_a_404(client, url):
    assert_problem(client.get(url), 404)


@pytest.mark.parametrize("raw", ["-1", "1999", "2101", "\u0662\u0660\u0662\u0666", "2026.0", ""])
def test_an_objectives_year_that_is_not_one_is_refused_naming_it(raw):
    with pytest.raises(InvalidParameter) as refused:
        params.year(raw)
    assert refused.value.extra["parameter"] == "year"
    assert params.year("2026") == 2026


def test_unknown_paths_are_a_french_404(client):
    response = client.get("/api/v1/nothing-here")
    assert_problem(response, 404)
    assert response.get_json()["title"] == "Introuvable"


# What a browser asks for when it opens an address (Chromium's and Firefox's navigation).
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}


def test_a_browser_opening_a_page_that_does_not_exist_gets_a_french_page_leading_back_to_the_search(client):
    response = client.get("/une-vieille-adresse", headers=BROWSER)
    assert response.status_code == 404 and response.mimetype == "text/html"
    page = html.unescape(response.get_data(as_text=True))
    assert '<html lang="fr">' in page and "Cette page n'existe pas" in page and 'href="/"' in page
    assert "/api/v1/docs" not in page  # the API's advice is for developers
    assert "Espace des équipes" not in page


def test_a_team_member_opening_a_workspace_address_that_does_not_exist_is_led_back_to_the_workspace(client):
    response = client.get("/equipes/une-vieille-adresse", headers=BROWSER)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert 'href="/equipes/"' in response.get_data(as_text=True)


def test_a_page_that_cannot_reach_the_database_says_so_in_french_and_when_to_try_again(server):
    nobody_listens = make_url(server).set(port=free_port()).render_as_string(hide_password=False)
    app = make_test_app(nobody_listens)
    try:
        response = app.test_client().get("/a-propos", headers=BROWSER)
    finally:
        dispose_app(app)
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    assert "Service momentanément indisponible" in html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("path, accept", [
    ("/une-vieille-adresse", "*/*"),  # fetch, curl, the mobile app
    ("/une-vieille-adresse", "application/json"),
    ("/api/v1/nothing-here", BROWSER["Accept"]),  # the API answers problem+json whoever asks
    ("/tiles/nothing/0/0/0.mvt", "*/*"),
])
def test_apps_and_the_api_keep_getting_problem_json(client, path, accept):
    assert_problem(client.get(path, headers={"Accept": accept}), 404)


# -- the whole API, fuzzed from its OpenAPI document --------------------------------------------------------

@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.from_pytest_fixture(
    "api_schema", data_generation_methods=[schemathesis.DataGenerationMethod.positive,
                                          schemathesis.DataGenerationMethod.negative])


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_never_fails_on_any_input(case):
    """Every operation, valid and invalid inputs, every check of schemathesis (no 5xx, status codes, content
    types, headers and bodies as documented, invalid input refused)."""
    checks = schemathesis.checks.ALL_CHECKS
    if not negation_survives_the_url(case):
        checks = tuple(c for c in checks if c is not schemathesis.checks.negative_data_rejection)
    case.call_and_validate(checks=checks)


def negation_survives_the_url(case) -> bool:
    """Schemathesis 3 negates an operation whose only parameter is OGC's optional `f` by adding a parameter
    that the query string cannot carry (an empty name, an empty list): what is sent is then '?f=json', valid
    input and not negative data."""
    sent = {name: value for name, value in (case.query or {}).items() if name and value not in ([], None)}
    return not (set(sent) <= {"f"} and sent.get("f", "json") in ("json", "geojson") and not case.path_parameters)


# -- the parameter parser, property-tested ------------------------------------------------------------------

text_values = st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=30) | st.text(max_size=30)
args_strategy = st.lists(st.tuples(st.sampled_from(params.NEAREST_PARAMETERS + ("q", "kind", "bbox", "f", "x")),
                                   text_values), max_size=6).map(MultiDict)


@given(args_strategy)
@settings(max_examples=400, deadline=None)
def test_nearest_parsing_gives_a_query_or_a_named_invalid_parameter(args):
    try:
        query = params.nearest(args, 10, 100)
    except InvalidParameter as exc:
        assert exc.detail and exc.extra["parameter"] is not None
        return
    assert 1 <= query.limit <= 100
    if query.after is not None:
        assert 0 <= query.after.id < 2**63


@given(args_strategy)
@settings(max_examples=300, deadline=None)
def test_place_and_items_parsing_never_raise_anything_else(args):
    for parse in (lambda a: params.place_search(a), lambda a: params.items(a, 100, 1000, ("name",)),
                  lambda a: params.solution_filters(a)):
        try:
            parse(args)
        except InvalidParameter as exc:
            assert exc.extra["parameter"] is not None


@given(st.text(max_size=25))
def test_identifiers_are_ascii_digits_within_bigint(raw):
    try:
        value = params.identifier(raw, "la solution")
    except InvalidParameter:
        return
    assert raw.isascii() and raw.isdigit() and 0 <= value < 2**63


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                                        max_size=3)))
def test_report_bodies_give_a_report_or_a_named_invalid_parameter(value):
    try:
        body = params.json_object(json.dumps(value).encode())
        params.error_report("1", body)
    except InvalidParameter as exc:
        assert exc.extra["parameter"] is not None
