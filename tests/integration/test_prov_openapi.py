"""``/prov/api/openapi.json``: every ``/prov/`` route of the Flask app is described, the
document follows OpenAPI 3.1's structure (checked with jsonschema against the rules in
``tests/data/openapi-3.1-structure.schema.json``: no OpenAPI validator is installed), and
each parameter's schema accepts exactly what the route's parser accepts; page tokens are
signed with a secret every worker shares."""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import flask
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporters.app import params as p
from exporters.app.tokens import PAGE_TOKEN_SECRET_ENV, PageTokenError, PageTokens, secret_file

RULE_PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@pytest.fixture
def app(monkeypatch, tmp_path) -> flask.Flask:
    """A bare Flask app with the prov routes, for answers that never reach a store (the
    document, and refusals of parameters before any query)."""
    from exporters.app.permissions import OpenAccess
    from exporters.app.setup import install
    from exporters.compat import backend_store_env_var

    monkeypatch.setenv(backend_store_env_var(), f"prov://{tmp_path / 'never-read'}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    app = flask.Flask("prov-openapi-test")
    install(app, OpenAccess())
    return app


def _served_document(app: flask.Flask) -> dict:
    answer = app.test_client().get("/prov/api/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    return answer.json


def test_every_prov_route_is_described_with_its_path_parameters(app):
    document = _served_document(app)
    rules = {RULE_PARAMETER.sub(r"{\1}", rule.rule): rule for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/prov/")}
    assert set(rules) == set(document["paths"]), "described routes == the app's /prov/ routes"
    assert {"/prov/api/events", "/prov/api/verify", "/prov/api/head", "/prov/api/lineage",
            "/prov/api/openapi.json", "/prov/", "/prov/runs/{run_id}"} <= set(rules)
    for path, rule in rules.items():
        assert rule.methods is not None and ("GET" in rule.methods or "POST" in rule.methods)
        method = "get" if "GET" in rule.methods else "post"  # POST: seal and unseal only
        assert set(document["paths"][path]) == {method}, "each route has its one method"
        declared = {q["name"] for q in document["paths"][path][method]["parameters"]
                    if q["in"] == "path"}
        assert declared == set(rule.arguments), path


STRUCTURE = json.loads((Path(__file__).parent.parent / "data" /
                        "openapi-3.1-structure.schema.json").read_text(encoding="utf-8"))


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [
            r for value in node.values() for r in _references(value)]
    return [r for value in node for r in _references(value)] if isinstance(node, list) else []


def _resolve(document: dict, reference: str) -> object:
    assert reference.startswith("#/"), reference
    found: object = document
    for part in reference[2:].split("/"):
        assert isinstance(found, dict) and part in found, reference
        found = found[part]
    return found


def test_the_document_is_valid_openapi_and_its_schemas_valid_json_schema(app):
    document = _served_document(app)
    structure = jsonschema.Draft202012Validator(STRUCTURE)
    structure.validate(document)
    events = ["paths", "/prov/api/events", "get"]
    for where, breakage in ((events + ["responses", "200"], lambda r: r.pop("description")),
                            (events + ["parameters", 0], lambda q: q.update({"in": "body"})),
                            (["paths", "/prov/runs/{run_id}", "get", "parameters", 0],
                             lambda q: q.update({"required": False})),
                            (["info"], lambda info: info.pop("version"))):
        broken = copy.deepcopy(document)
        breakage(functools.reduce(lambda node, key: node[key], where, broken))
        assert not structure.is_valid(broken), f"the structure check misses {where}"
    assert document["openapi"].startswith("3.1")
    for reference in _references(document):
        _resolve(document, reference)
    schemas = list(document["components"]["schemas"].values())
    for path, item in document["paths"].items():
        operation = next(iter(item.values()))
        assert operation["summary"] and operation["operationId"], path
        templated = set(re.findall(r"{([^}]+)}", path))
        assert templated == {q["name"] for q in operation["parameters"] if q["in"] == "path"}
        schemas += [parameter["schema"] for parameter in operation["parameters"]]
        for status, response in operation["responses"].items():
            for body in response.get("content", {}).values():
                schemas.append(body["schema"])
            if status == "400":
                media = "application/json" if path.startswith("/prov/api/") else "text/html"
                assert set(response["content"]) == {media}, path
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)
    ids = [next(iter(item.values()))["operationId"] for item in document["paths"].values()]
    assert len(ids) == len(set(ids))


def test_api_errors_have_the_documented_shape_and_name_the_parameter(app):
    error = _served_document(app)["components"]["schemas"]["Error"]
    client = app.test_client()
    for url, named in (("/prov/api/events?experiment_id=%C2%B2", "experiment_id"),
                       ("/prov/api/head", "run_id"), ("/prov/api/verify?metrics=some",
                                                       "metrics"),
                       ("/prov/api/lineage?q=1a2b&depth=21", "depth"),
                       ("/prov/api/lineage?q=a%00b", "q")):
        answer = client.get(url)
        assert answer.status_code == 400
        jsonschema.validate(answer.json, error)
        assert named in answer.json["message"] and "\n" not in answer.json["message"]


def _parameter(name: str) -> p.Param:
    return next(param for param in (p.EXPERIMENT, p.RUN, p.MODEL, p.DATASET, p.ARTIFACT, p.CHAIN,
                                    p.page_size(10), p.LINEAGE_QUERY, p.lineage_depth(3))
                if param.name == name)


def _accepted_by_parser(param: p.Param, value: str) -> bool:
    try:
        param.parse(param.name, value)
    except p.BadRequestError as exc:
        assert param.name in str(exc) and "\n" not in str(exc)
        return False
    return True


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(dict(_parameter(name).schema))


def _accepted_by_schema(param: p.Param, value: str) -> bool:
    """The schema's verdict on the value as the query string carries it: an integer
    parameter's text must be a JSON integer's (ASCII digits) and within its bounds."""
    validator = _validator(param.name)
    if validator.schema["type"] == "integer":
        return re.fullmatch("[0-9]+", value, re.ASCII) is not None and validator.is_valid(
            int(value))
    return validator.is_valid(value)


HOSTILE_TEXT = st.one_of(
    st.text(max_size=40), st.text(alphabet="0123456789²³١٢３", max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.from_regex(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,40}", fullmatch=True),
    st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=20), st.text(max_size=20)),
    st.builds(lambda a, b: f"{a}/{b}", st.from_regex(r"[0-9a-f]{30,34}", fullmatch=True),
              st.text(max_size=20)),
    st.sampled_from(["2147483647", "2147483648", "0", "1000", "1001", "a" * 538 + "@x", "20",
                     "21", "runs:/" + "a" * 1033, "runs:/" + "a" * 1034]),
    st.builds(lambda a, b: f"{a}:{b}", st.sampled_from(["prompt", "trace", "Trace", "x"]),
              st.text(max_size=20)))


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["experiment_id", "run_id", "model_id", "dataset", "artifact",
                             "page_size", "chain", "q", "depth"]), value=HOSTILE_TEXT)
def test_each_schema_accepts_exactly_what_its_parser_accepts(name, value):
    # Python's "$" also matches before a final newline, where ECMA-262 (JSON Schema's regex
    # dialect) does not: such a value says nothing about the document
    if value.endswith("\n"):
        return
    param = _parameter(name)
    assert _accepted_by_parser(param, value) == _accepted_by_schema(param, value), value


def test_integers_are_ascii_digits_within_their_column():
    assert p.whole_number("page_size", "1000", 1, 1000) == 1000
    for text in ("²", "١٢", "３", "+1", " 1", "1e3", "0x10", "1_000", "9" * 30, "-1"):
        with pytest.raises(p.BadRequestError, match="page_size"):
            p.whole_number("page_size", text, 0, 10**9)
    assert p.experiment_id("experiment_id", str(p.INT32_MAX)) == str(p.INT32_MAX)
    with pytest.raises(p.BadRequestError, match="experiment_id"):
        p.experiment_id("experiment_id", str(p.INT32_MAX + 1))
    assert p.time_us("since", str(p.MAX_TIME_MS)) == p.MAX_TIME_MS * 1000 < 2**63
    with pytest.raises(p.BadRequestError, match="until"):
        p.time_us("until", str(p.MAX_TIME_MS + 1))
    with pytest.raises(p.BadRequestError, match="since"):
        p.time_us("since", "２０２６-01-01")


def test_page_tokens_are_signed_and_bound_to_their_listing():
    tokens, other = PageTokens(b"a" * 32), PageTokens(b"b" * 32)
    token = tokens.issue("journal", 41)
    assert tokens.read("journal", token) == 41
    with pytest.raises(PageTokenError, match="signature"):
        other.read("journal", token)
    with pytest.raises(PageTokenError, match="another listing"):
        tokens.read("runs:1", token)
    payload, signature = token.rsplit(".", 1)
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32, "an HMAC-SHA256 signature"
    with pytest.raises(PageTokenError):
        tokens.read("journal", f"{payload}.{signature[::-1]}")
    with pytest.raises(PageTokenError, match="characters long"):
        tokens.read("journal", "A" * 5000)


SECRET_OF_A_WORKER = ("from exporters.app.tokens import page_token_secret; import sys; "
                      "sys.stdout.write(page_token_secret(sys.argv[1]).hex())")


@pytest.mark.slow  # four Python processes
def test_workers_of_one_server_share_the_generated_secret(tmp_path, monkeypatch):
    """Two processes (as two uvicorn workers) reading the secret of one store get the same
    one, kept private in the cache folder; another store gets its own; the variable wins."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(PAGE_TOKEN_SECRET_ENV, raising=False)
    monkeypatch.delenv("MLFLOW_FLASK_SERVER_SECRET_KEY", raising=False)

    def worker(store: str) -> str:
        done = subprocess.run([sys.executable, "-c", SECRET_OF_A_WORKER, store],
                              capture_output=True, text=True, check=True, timeout=120)
        return done.stdout

    first, second = worker("prov:///a"), worker("prov:///a")
    assert first == second and len(bytes.fromhex(first)) == 32
    assert worker("prov:///b") != first
    kept = secret_file("prov:///a")
    assert kept.is_file() and kept.stat().st_mode & 0o077 == 0
    assert not [f for f in kept.parent.iterdir() if f.name.startswith(".page-token-")]
    monkeypatch.setenv(PAGE_TOKEN_SECRET_ENV, "configured")
    assert bytes.fromhex(worker("prov:///a")) == b"configured"


def test_a_forged_journal_token_is_refused_even_when_well_formed(app):
    client = app.test_client()
    forged = PageTokens(b"not this server's secret").issue("journal", 0)
    answer = client.get(f"/prov/api/events?experiment_id=0&page_token={forged}")
    assert answer.status_code == 400 and "page_token" in answer.json["message"]
    signed = app.extensions["mlflow_prov"].tokens
    for position in (10**30, -1, "1", None, float("inf")):
        token = signed.issue("journal", position)
        answer = client.get(f"/prov/api/events?experiment_id=0&page_token={token}")
        assert answer.status_code == 400, position
        assert "page_token" in json.dumps(answer.json)
