"""The OpenAPI 3.0 description of the public API (mapservice/openapi.yaml), the contract with app developers."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml

SPEC = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))
