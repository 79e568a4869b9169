"""User scenario files: what they accept, what they refuse, what they send and check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtests import scenario_file as sf
from loadtests.byo import open_spec, requests_lua

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo" / "scenario.toml"


def _parse(*requests: dict[str, Any], **top: Any) -> sf.ScenarioFile:
    return sf.parse({"request": list(requests), **top})


def test_the_example_file() -> None:
    scenario = sf.load(EXAMPLE)
    assert scenario.name == "todo" and scenario.ready_path == "/health"
    assert [r.name for r in scenario.requests] == ["list", "get", "create"]
    get = scenario.request("get")
    assert get.values["id"] == tuple(str(i) for i in range(1, 21))
    assert [v.path for v in get.variants()] == [f"/todos/{i}" for i in range(1, 21)]
    create = scenario.request("create")
    bodies = {json.loads(v.body or "")["title"] for v in create.variants()}
    assert bodies == {"buy milk", "buy bread", "buy tea", "buy a bike"}
    assert {json.loads(v.body or "")["done"] for v in create.variants()} == {True, False}
    assert create.expect_status == 201 and create.weight == 1.0


@pytest.mark.parametrize(("entry", "message"), [
    ({"path": "todos"}, "path must start with '/'"),
    ({"path": "/x", "method": "BREW"}, "method"),
    ({"path": "/x/{id}"}, "placeholders ['id'] have no values"),
    ({"path": "/x/{id}", "values": {"id": {"range": [5, 1]}}}, "first ≤ last"),
    ({"path": "/x/{id}", "values": {"id": {"list": []}}}, "non-empty list"),
    ({"path": "/x", "expect_status": 99}, "HTTP status"),
    ({"path": "/x", "weight": -1}, "weight"),
    ({"path": "/x", "check": {"pointer": "a/b"}}, "RFC 6901"),
    ({"path": "/x", "body": "{}", "json": {}}, "body or json"),
    ({"path": "/x", "name": "mix"}, "not 'mix'"),
    ({"path": "/x", "colour": "red"}, "unknown keys ['colour']"),
])
def test_bad_entries_are_refused_with_the_reason(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(sf.ScenarioFileError) as info:
        _parse(entry)
    assert message in str(info.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(sf.ScenarioFileError, match="no \\[\\[request\\]\\]"):
        sf.parse({})
    with pytest.raises(sf.ScenarioFileError, match="repeat"):
        _parse({"name": "a", "path": "/"}, {"name": "a", "path": "/b"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[[request]\npath = '/'")
    with pytest.raises(sf.ScenarioFileError, match=r"bad\.toml"):
        sf.load(bad)


def test_many_combinations_are_sampled_and_seeded() -> None:
    scenario = _parse({"path": "/a/{x}/{y}", "values": {"x": {"range": [1, 100]}, "y": {"range": [1, 100]}}})
    (request,) = scenario.requests
    first, again = request.variants(seed=3), request.variants(seed=3)
    assert len(first) == sf.MAX_VARIANTS and first == again
    assert len({v.path for v in first}) > 500


def test_json_pointer_checks() -> None:
    doc = {"items": [{"id": 7, "a/b": 1, "m~n": 2}], "ok": True}
    assert sf.resolve_pointer(doc, "/items/0/id") == 7
    assert sf.resolve_pointer(doc, "/items/0/a~1b") == 1 and sf.resolve_pointer(doc, "/items/0/m~0n") == 2
    assert sf.resolve_pointer(doc, "/items/1") is sf._MISSING
    assert sf.resolve_pointer(doc, "/items/x") is sf._MISSING
    assert sf.resolve_pointer(doc, "") == doc
    scenario = _parse({"name": "g", "path": "/t/{id}", "values": {"id": {"list": [7]}},
                       "check": {"pointer": "/items/0/id", "equals": "{id}"}})
    (request,) = scenario.requests
    (prepared,) = request.variants()
    body = json.dumps(doc).encode()
    assert sf.check_response(request, prepared, 200, body) is None
    assert "answered 500" in (sf.check_response(request, prepared, 500, body) or "")
    other = json.dumps({"items": [{"id": 8}]}).encode()
    assert "is 8, expected '7'" in (sf.check_response(request, prepared, 200, other) or "")
    assert "not JSON" in (sf.check_response(request, prepared, 200, b"<html>") or "")
    absent = _parse({"path": "/", "check": {"pointer": "/error", "exists": False}}).requests[0]
    assert sf.check_response(absent, absent.variants()[0], 200, b'{"ok": 1}') is None
    assert "exists" in (sf.check_response(absent, absent.variants()[0], 200, b'{"error": 1}') or "")


def test_what_wrk_and_the_open_loop_are_given() -> None:
    scenario = sf.load(EXAMPLE)
    lua = requests_lua([(2.0, scenario.request("create").variants()[:1])])
    assert lua.startswith("return {") and "\\034title\\034" in lua  # quotes escaped as bytes
    spec = open_spec(scenario.request("get"))
    assert spec.path == "/todos/{id}" and spec.ids == tuple(range(1, 21))
    fixed = open_spec(scenario.request("create"))
    assert fixed.ids == () and fixed.body is not None and "buy" in fixed.body and fixed.expect_status == 201
