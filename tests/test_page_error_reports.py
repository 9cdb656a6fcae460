"""'Signaler une erreur': a visitor's report about a solution is stored for the local team; bad input is a 4xx."""
import json

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from sqlalchemy import text
from werkzeug.test import EnvironBuilder


@pytest.fixture
def published_solution(engine):
    with engine.connect() as conn:
        return conn.scalar(text("""SELECT s.id FROM solution s JOIN site ON site.id = s.site_id
                                   WHERE s.status = 'published' AND site.status = 'published' AND s.is_example
                                   ORDER BY s.id LIMIT 1"""))


def stored(engine, report_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM error_report WHERE id = :id"), {"id": report_id}).mappings().one()


def test_a_report_is_stored_for_the_local_team(client, engine, published_solution):
    response = client.post(f"/api/v1/solutions/{published_solution}/error-reports",
                           json={"reason": "contact", "message": "Le numéro ne répond plus.",
                                 "contact": "  jeune@exemple.invalid "})
    assert response.status_code == 201, response.get_json()
    row = stored(engine, response.get_json()["id"])
    assert (row["solution_id"], row["reason"], row["message"], row["contact"], row["status"]) == (
        published_solution, "contact", "Le numéro ne répond plus.", "jeune@exemple.invalid", "new")
    assert "Merci" in response.get_json()["message"]


def test_a_plain_html_form_is_accepted_too(client, engine, published_solution):
    response = client.post(f"/api/v1/solutions/{published_solution}/error-reports",
                           data={"reason": "n_existe_plus"})
    assert response.status_code == 201
    assert stored(engine, response.get_json()["id"])["message"] is None


@pytest.mark.parametrize("body, parameter, says", [
    ({}, "reason", "parmi"),
    ({"reason": "faux"}, "reason", "'faux'"),
    ({"reason": "autre"}, "message", "obligatoire"),
    ({"reason": "autre", "message": "   "}, "message", "obligatoire"),
    ({"reason": "places", "message": "x" * 2001}, "message", "2000"),
    ({"reason": "places", "contact": "x" * 201}, "contact", "200"),
    ({"reason": "places", "message": 12}, "message", "texte"),
    ({"reason": "places", "email": "a@b.c"}, "email", "Champ inconnu"),
])
def test_bad_reports_get_a_clear_400_and_nothing_is_stored(client, engine, published_solution, body, parameter, says):
    with engine.connect() as conn:
        before = conn.scalar(text("SELECT count(*) FROM error_report"))
    response = client.post(f"/api/v1/solutions/{published_solution}/error-reports", json=body)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["parameter"] == parameter
    assert says in response.get_json()["detail"]
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM error_report")) == before


@pytest.mark.parametrize("kwargs", [
    {"data": "not json", "content_type": "application/json"},
    {"json": ["reason", "places"]},
    {"data": ""},
])
def test_a_body_that_is_not_an_object_is_a_400(client, published_solution, kwargs):
    response = client.post(f"/api/v1/solutions/{published_solution}/error-reports", **kwargs)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_unknown_or_unpublished_solutions_cannot_be_reported(fresh_client, fresh_engine, published_solution):
    assert fresh_client.post("/api/v1/solutions/999999999/error-reports", json={"reason": "places"}).status_code == 404
    assert fresh_client.post("/api/v1/solutions/abc/error-reports", json={"reason": "places"}).status_code == 400
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE solution SET status = 'draft' WHERE id = :id"), {"id": published_solution})
    response = fresh_client.post(f"/api/v1/solutions/{published_solution}/error-reports", json={"reason": "places"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_reading_is_not_allowed(client, published_solution):
    response = client.get(f"/api/v1/solutions/{published_solution}/error-reports")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"


def test_answers_match_the_openapi_document(client, published_solution):
    spec = OpenAPI.from_dict(client.get("/api/v1/openapi.json").get_json(), config=Config(
        extra_media_type_deserializers={"application/problem+json": json.loads}))
    for body, status in (({"reason": "adresse", "message": "Le lieu a déménagé."}, 201), ({"reason": "?"}, 400)):
        path = f"/api/v1/solutions/{published_solution}/error-reports"
        response = client.post(path, json=body)
        assert response.status_code == status
        request = WerkzeugOpenAPIRequest(EnvironBuilder(path=path, method="POST", json=body).get_request())
        if status == 201:
            spec.validate_request(request)
        spec.validate_response(request, WerkzeugOpenAPIResponse(response))
