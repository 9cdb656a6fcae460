"""The OpenAPI 3.0 description of the public API (mapservice/openapi.yaml), the contract with app developers.

The answers every operation of a kind can give are documented here once rather than on each operation: 400 for
one that takes parameters or a body, 401
for an operation that needs a token, 404 where the path holds a value (an id, a code: an unknown one, or one
that is not of its form, is not found), 429 with Retry-After on a rate-limited write, 413 for a body over the
cap, and 503 with Retry-After for every operation when the database does not answer."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml

SPEC = Path(__file__).with_name("openapi.yaml")
WRITES = ("post", "put", "patch", "delete")
METHODS = ("get", "head", *WRITES)
COMMON = {
    "BadRequest": "#/components/responses/BadRequest",
    "NotFound": "#/components/responses/NotFound",
    "Unauthorized": "#/components/responses/Unauthorized",
    "TooManyRequests": "#/components/responses/TooManyRequests",
    "PayloadTooLarge": "#/components/responses/PayloadTooLarge",
    "Unavailable": "#/components/responses/Unavailable",
}


@functools.cache
def document() -> dict:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                _add_common_responses(path, method, item[method])
    return spec


def _add_common_responses(path: str, method: str, operation: dict) -> None:
    responses = operation["responses"]

    def add(status: str, name: str) -> None:
        responses.setdefault(status, {"$ref": COMMON[name]})

    if operation.get("parameters") or operation.get("requestBody"):
        add("400", "BadRequest")
    if "{" in path:
        add("404", "NotFound")
    if operation.get("security"):
        add("401", "Unauthorized")
    if method in WRITES:
        add("413", "PayloadTooLarge")
        add("429", "TooManyRequests")
    add("503", "Unavailable")
