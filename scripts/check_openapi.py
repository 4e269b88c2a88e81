#!/usr/bin/env python3
"""Validates Kiln's OpenAPI document with openapi-spec-validator (a cross-check, not a runtime
dependency; the Rust test tests/openapi.rs checks the document against the routes and real
responses).

    pip install openapi-spec-validator
    python3 scripts/check_openapi.py http://127.0.0.1:8080/v1/openapi.json
"""

import json
import sys
import urllib.request

from openapi_spec_validator import validate

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1/openapi.json"
with urllib.request.urlopen(url) as r:
    doc = json.load(r)
validate(doc)
ops = sum(len(item) for item in doc["paths"].values())
print(f"valid OpenAPI {doc['openapi']}: {len(doc['paths'])} paths, {ops} operations, "
      f"{len(doc['components']['schemas'])} schemas")
