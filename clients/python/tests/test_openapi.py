"""The client's models against the server's `/v1/openapi.json`, so the two cannot drift."""

from __future__ import annotations

import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from kiln import _models as m
from tests.conftest import Server

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def doc(server: Server) -> Doc:
    d: Doc = httpx.get(f"{server.url}/v1/openapi.json").json()
    return d


def resolve(doc: Doc, schema: Doc) -> Doc:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def properties(doc: Doc, schema: Doc) -> tuple[dict[str, Doc], set[str]]:
    """Properties and required names of an object schema (allOf merged; oneOf alternatives
    that are null skipped)."""
    schema = resolve(doc, schema)
    props: dict[str, Doc] = dict(schema.get("properties", {}))
    req = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        p, r = properties(doc, part)
        props.update(p)
        req |= r
    for alt in schema.get("oneOf", []):
        alt = resolve(doc, alt)
        if alt.get("type") == "object":
            p, _ = properties(doc, alt)
            props.update(p)
    return props, req


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(annotation):
        out += nested_models(a)
    return out


def wire_names(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or n): f.annotation for n, f in model.model_fields.items()}


def check_response(doc: Doc, model: type[BaseModel], schema: Doc, where: str) -> list[str]:
    """Every documented property is a field of the model, recursively."""
    missing = []
    fields = wire_names(model)
    props, _ = properties(doc, schema)
    for name, sub in props.items():
        if name not in fields:
            missing.append(f"{where}.{name}")
            continue
        sub = resolve(doc, sub)
        if sub.get("type") == "array":
            sub = resolve(doc, sub.get("items", {}))
        for inner in nested_models(fields[name]):
            missing += check_response(doc, inner, sub, f"{where}.{name}")
    return missing


def success(op: Doc) -> Doc | None:
    for code in ("200", "201", "202"):
        r = op.get("responses", {}).get(code)
        if r and "application/json" in r.get("content", {}):
            schema: Doc = r["content"]["application/json"]["schema"]
            return schema
    return None


def test_every_operation_is_documented(doc: Doc) -> None:
    ops = {
        o["operationId"]: (method.upper(), path)
        for path, item in doc["paths"].items()
        for method, o in item.items()
        if isinstance(o, dict) and "operationId" in o
    }
    for op_id, op in m.OPS.items():
        assert ops.get(op_id) == (op.method, op.path.replace("{name}", "{name}")), op_id


def test_every_documented_response_field_is_known(doc: Doc) -> None:
    missing: list[str] = []
    for op_id, op in m.OPS.items():
        if op.response is None:
            continue
        method, path = op.method.lower(), op.path
        schema = success(doc["paths"][path][method])
        assert schema is not None, op_id
        schema = resolve(doc, schema)
        if op.paged:
            schema = resolve(doc, schema["properties"]["items"]["items"])
        missing += check_response(doc, op.response, schema, op_id)
    assert missing == []


def test_nothing_sent_is_undocumented(doc: Doc) -> None:
    problems: list[str] = []
    for op_id, op in m.OPS.items():
        if op.request is None:
            continue
        body = doc["paths"][op.path][op.method.lower()]["requestBody"]
        schema = resolve(doc, body["content"]["application/json"]["schema"])
        requests = op.request if isinstance(op.request, tuple) else (op.request,)
        for req in requests:
            alts = [schema]
            kind = req.model_fields.get("kind")
            if kind is not None and op_id == "post_sessions_id_branches_b_events":
                # A state event: the alternative whose `kind` is this model's.
                base = resolve(doc, schema["allOf"][0])
                alts = [
                    a for a in base["oneOf"]
                    if a["properties"]["kind"].get("const") == kind.default
                ] + schema["allOf"][1:]
                assert len(alts) == 2, req
            elif "oneOf" in schema:
                alts = [resolve(doc, schema["oneOf"][0])]
            props: dict[str, Doc] = {}
            required: set[str] = set()
            for a in alts:
                p, r = properties(doc, a)
                props.update(p)
                required |= r
            fields = set(wire_names(req))
            problems += [f"{op_id}: sends undocumented `{f}`" for f in fields - set(props)]
            problems += [f"{op_id}: cannot send required `{f}`" for f in required - fields]
    assert problems == []


def test_models_would_catch_a_new_field(doc: Doc) -> None:
    # The check is not vacuous: a field the client lacks is reported.
    class Thin(m.Model):
        id: str

    assert "x.name" in check_response(doc, Thin, doc["components"]["schemas"]["Session"], "x")
    assert isinstance(m, types.ModuleType)


def test_sync_client_is_generated_from_async() -> None:
    here = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(here / "unasync.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
