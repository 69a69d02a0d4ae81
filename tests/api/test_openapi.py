"""Every answer of the API is described in ``/openapi.json`` (issue 15: routes returned
untyped dicts, so clients and fuzzers knew nothing of what came back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genba.api._app import create_app
from genba.config import GenbaConfig
from genba.node import Node
from tests.conftest import demo_config_text

FILES = {"/api/export"}  # a Parquet or CSV file, declared by its media types


def _described(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` names what its answer holds (a model, or an array of models)."""
    if "$ref" in schema:
        return True
    if "anyOf" in schema:
        return all(_described(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return _described(schema.get("items", {}))
    return bool(schema.get("properties")) and schema.get("additionalProperties") is not True


def test_every_json_answer_has_a_response_model(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    spec = create_app(Node(make_config(demo_config_text()))).openapi()
    untyped = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            content = ok.get("content", {})
            if path in FILES:
                assert set(content) == {"application/vnd.apache.parquet", "text/csv"}
                continue
            schema = content.get("application/json", {}).get("schema", {})
            if not _described(schema):
                untyped.append(f"{method.upper()} {path}")
    assert untyped == []
    assert len(spec["paths"]) >= 25  # every router is in
