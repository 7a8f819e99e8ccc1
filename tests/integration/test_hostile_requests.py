"""Hostile requests to a real ``mlflow server --app-name prov`` / ``prov-auth``: every
answer is a 2xx or a 4xx that names the parameter at fault, never a 5xx, a traceback or a
hang, on sqlite and PostgreSQL.

Two parts share one server per backend and app (module-scoped: a start takes seconds):
the recorded requests of the security review (``tests/data/hostile_requests.json``), replayed
on both stores, and a property-based fuzzer over every route of the OpenAPI document, on
sqlite, so a new route is fuzzed as soon as it is described. Under prov-auth each request
goes as the admin (who reaches every query), as a reader of one experiment, and anonymously.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lineage_scenario import write
from machine import scaled_timeout
from store_templates import prov_store
from test_server import _serve

from exporters.app.openapi import ERROR, document

CORPUS = json.loads((Path(__file__).parent.parent / "data" / "hostile_requests.json")
                    .read_text(encoding="utf-8"))["requests"]
ADMIN = ("admin", "admin-password-0123456789")
ALICE = ("alice", "alice-password-0123456789")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"/[^\"]+\.py\", line \d+")
SLOWEST_ANSWER_S = 30.0  # on an idle machine: a page of a tiny store answers in well under 1 s
ROUTES = sorted(document()["paths"])  # every /prov/ route (the OpenAPI test ties it to url_map)


@dataclass(frozen=True)
class Served:
    """A running server over a store of lineage_scenario, and how to sign in to it."""

    backend: str
    app: str
    base: str
    ids: dict[str, str]
    users: tuple[tuple[str, str] | None, ...]  # who asks: None is anonymous


def _written(stack: ExitStack, backend: str, place: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return prov_store(place / "store")
    return stack.enter_context(request.getfixturevalue("prov_postgres_stores")())


def _start(stack: ExitStack, store: str, app: str, place: Path) -> str:
    """The server's URL; it stops when ``stack`` closes. The environment it starts with is
    this test's own, plus the auth configuration and a private cache folder."""
    place.mkdir()
    environment = {"XDG_CACHE_HOME": str(place / "cache")}
    if app == "prov-auth":
        config = place / "basic_auth.ini"
        config.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                          f"database_uri = sqlite:///{place / 'auth.db'}\n"
                          f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
                          "authorization_function = "
                          "mlflow.server.auth:authenticate_request_basic_auth\n")
        environment |= {"MLFLOW_AUTH_CONFIG_PATH": str(config),
                        "MLFLOW_FLASK_SERVER_SECRET_KEY": "hostile-requests-test-secret"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        servers = _serve(["server", "--app-name", app, "--backend-store-uri", store,
                          "--workers", "1"], place)
        base = next(servers)
    stack.callback(servers.close)
    return base


def _grant_alice(base: str, experiment_id: str) -> None:
    for route, body in (("/api/2.0/mlflow/users/create",
                         {"username": ALICE[0], "password": ALICE[1]}),
                        ("/api/3.0/mlflow/users/permissions/grant",
                         {"username": ALICE[0], "resource_type": "experiment",
                          "resource_id": experiment_id, "permission": "READ"})):
        answer = requests.post(f"{base}{route}", json=body, auth=ADMIN, timeout=60)
        assert answer.ok, answer.text


def _cheap_password_hashes(auth_db: Path) -> None:
    """The users' password hashes with one PBKDF2 round: basic-auth checks the password on
    every request, and the default scrypt hash costs a few tenths of a second a request on
    a loaded machine, which hundreds of requests cannot afford. The check stays MLflow's."""
    from werkzeug.security import generate_password_hash

    with sqlite3.connect(auth_db) as connection:
        for user, password in (ADMIN, ALICE):
            connection.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                               (generate_password_hash(password, "pbkdf2:sha256:1"), user))
    connection.close()


SERVERS = [
    pytest.param(("sqlite", "prov"), id="sqlite-prov"),
    pytest.param(("sqlite", "prov-auth"), id="sqlite-prov-auth"),
    pytest.param(("postgres", "prov"), id="postgresql-prov"),
    pytest.param(("postgres", "prov-auth"), id="postgresql-prov-auth"),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Iterator[tuple[ExitStack, dict[str, tuple[str, dict]]]]:
    """The scenario's store per backend, written once and shared by both apps' servers."""
    with ExitStack() as stack:
        yield stack, {}


@pytest.fixture(scope="module", params=SERVERS)
def served(request, stores, tmp_path_factory) -> Iterator[Served]:
    backend, app = request.param
    stack, written = stores
    place = tmp_path_factory.mktemp(f"hostile-{backend}-{app}")
    if backend not in written:
        import mlflow
        from mlflow.tracking import fluent

        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(place)  # the scenario's artifacts, beside its store
            store = _written(stack, backend, place, request)
            ids = write(store)
        mlflow.set_tracking_uri(None)
        fluent._active_experiment_id = None
        written[backend] = store, ids
    store, ids = written[backend]
    with ExitStack() as server:
        base = _start(server, store, app, place / "server")
        users: tuple[tuple[str, str] | None, ...] = (None,)
        if app == "prov-auth":
            _grant_alice(base, ids["features"])
            _cheap_password_hashes(place / "server" / "auth.db")
            users = (ADMIN, ALICE, None)
        yield Served(backend, app, base, ids, users)


def _check(served: Served, path: str, params: dict, user: tuple[str, str] | None
           ) -> requests.Response:
    """One GET: never a 5xx, a traceback, or an answer slower than the generous bound."""
    started = time.monotonic()
    answer = requests.get(served.base + path, params=params, auth=user,
                          timeout=scaled_timeout(SLOWEST_ANSWER_S) * 2, allow_redirects=False)
    _answered(f"GET {path} {params!r} as {user[0] if user else 'anonymous'}", answer,
              time.monotonic() - started)
    if answer.status_code == 400 and path.startswith("/prov/api/"):
        import jsonschema

        jsonschema.validate(answer.json(), ERROR)
    return answer


def _posted(served: Served, path: str, body: object, user: tuple[str, str] | None) -> None:
    """One POST of ``body`` (JSON, or raw text when it is a string): never a 5xx, a
    traceback, or an answer slower than the generous bound."""
    started = time.monotonic()
    sent = {"data": body} if isinstance(body, str) else {"json": body}
    answer = requests.post(served.base + path, auth=user, allow_redirects=False,
                           timeout=scaled_timeout(SLOWEST_ANSWER_S) * 2, **sent)
    _answered(f"POST {path} {body!r:.200} as {user[0] if user else 'anonymous'}", answer,
              time.monotonic() - started)


def _answered(where: str, answer: requests.Response, took: float) -> None:
    """Never a 5xx or a redirect, a traceback, or an answer slower than the bound."""
    assert 200 <= answer.status_code < 500 and not 300 <= answer.status_code < 400, (
        f"{where}: {answer.status_code} {answer.text[-2000:]}")
    assert not TRACEBACK.search(answer.text), f"{where}: a traceback in the body"
    assert took < scaled_timeout(SLOWEST_ANSWER_S), f"{where}: {took:.1f} s"


def _fuzz_bodies(served: Served, route: str) -> None:
    """A POST route's JSON bodies: hostile targets and reasons (never a real object: sealing
    the scenario's runs would change what the other requests see), wrong shapes, not JSON."""
    text = st.one_of(HOSTILE, st.sampled_from(["runs:/" + "0" * 32, "models:/nope/1",
                                               "experiments:/999999"]))
    bodies = st.one_of(
        st.fixed_dictionaries({"target": text, "reason": text}),
        st.dictionaries(st.sampled_from(["target", "reason", "x"]),
                        st.one_of(text, st.integers(), st.none(), st.lists(text, max_size=3))),
        st.lists(text, max_size=3), st.integers(), text)

    @settings(max_examples=20 if served.backend == "sqlite" else 10, deadline=None,
              database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=bodies, user=st.sampled_from(served.users))
    def fuzz(body: object, user: tuple[str, str] | None) -> None:
        _posted(served, route, body, user)

    fuzz()


def _filled(text: str, ids: dict[str, str]) -> str:
    for role, value in ids.items():
        text = text.replace(f"{{{role}}}", value)
    return text


def _path(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(f"{{{name}}}", quote(value, safe=""))
    return template


@pytest.mark.slow  # a server per backend and app
def test_recorded_hostile_requests_get_a_4xx_naming_the_parameter(served):
    assert len(CORPUS) >= 67
    refused = 0
    for entry in CORPUS:
        path = _path(entry["path"], {name: _filled(value, served.ids)
                                     for name, value in entry.get("path_params", {}).items()})
        params = {name: _filled(value, served.ids) for name, value in entry["params"].items()}
        for user in served.users:
            answer = _check(served, path, params, user)
            if user is None and served.app == "prov-auth":
                assert answer.status_code == 401, "anonymous readers are refused first"
                continue
            refused += answer.status_code == 400
            if answer.status_code >= 400 and answer.status_code != 403:
                assert entry["names"] in answer.text, (
                    f"{entry['category']}: {path} {params!r} -> {answer.status_code} "
                    f"{answer.text[-500:]}")
    readers = len([user for user in served.users if user is not None or served.app == "prov"])
    assert refused >= 0.8 * len(CORPUS) * readers, "the corpus reaches the parameter checks"


def _query_value(name: str, served: Served) -> st.SearchStrategy[str]:
    """A value for a parameter: a valid one of the scenario now and then (so that hostile
    values meet real rows), else something hostile."""
    ids = served.ids
    valid = {"experiment_id": [ids["features"], ids["training"], "0"],
             "run_id": [ids["producer"], ids["consumer"]], "model_id": [ids["model"]],
             "artifact": [f"{ids['producer']}/data/features.csv"],
             "kind": ["run.tags_set", "run.created,run.updated"], "page_size": ["1", "3"],
             "since": ["2020-01-01T00:00:00Z", "0"], "until": ["2999-01-01", "99999999999999"],
             "metrics": ["all", "changed"], "dataset": ["features.csv@x"],
             "q": [ids["producer"][:8], f"models:/{ids['model']}"],
             "depth": ["1", "20"]}.get(name, ["x"])
    return st.one_of(st.sampled_from(valid), HOSTILE)


def _json_token(value: object, urlsafe: bool) -> str:
    text = json.dumps(value).encode()
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(text).decode()


NUMBERS = st.one_of(st.integers(-(2**80), 2**80), st.floats(allow_nan=True, allow_infinity=True))
FORGED_TOKENS = st.builds(
    _json_token,
    st.one_of(st.fixed_dictionaries({"after": NUMBERS}), st.fixed_dictionaries({"offset": NUMBERS}),
              st.lists(st.one_of(st.text(max_size=10), NUMBERS), max_size=3)),
    st.booleans())
SAFE_TEXT = st.characters(exclude_categories=("Cs",))  # no lone surrogates: not UTF-8
HOSTILE = st.one_of(
    st.sampled_from(sorted({value for entry in CORPUS for value in entry["params"].values()})),
    st.text(SAFE_TEXT, max_size=60),
    st.text(alphabet="0123456789²³¹١٢٣۴５๙-+.eE", min_size=1, max_size=25),
    st.integers(-(2**80), 2**80).map(str),
    FORGED_TOKENS,
    st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.sampled_from(["' OR '1'='1", "1; DROP TABLE runs; --", "../../../../etc/passwd",
                     "..%2f..%2fetc", "\x00", "a\x00b", "NaN", "Infinity", "-0", "1e308",
                     "%s%s%n", "{{7*7}}", "<script>", "A" * 3000, "9" * 400]),
)


@pytest.mark.slow  # a server per backend and app; 20 requests per route (10 on PostgreSQL)
@pytest.mark.parametrize("route", ROUTES)
def test_fuzzed_requests_never_get_a_5xx(served, route):
    if "post" in document()["paths"][route]:
        _fuzz_bodies(served, route)
        return
    operation = document()["paths"][route]["get"]
    query_params = [q for q in operation["parameters"] if q["in"] == "query"]
    path_params = [q for q in operation["parameters"] if q["in"] == "path"]

    # Fewer on PostgreSQL: the parameters are checked before any query, the same for every
    # store; what differs is the column ranges the queries reach, which the corpus covers too.
    @settings(max_examples=20 if served.backend == "sqlite" else 10, deadline=None,
              database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        path = _path(route, {parameter["name"]: data.draw(
            _query_value(parameter["name"], served).filter(
                lambda v: v not in ("", ".", "..") and "/" not in v))
            for parameter in path_params})
        params = {}
        for parameter in query_params:
            if data.draw(st.booleans()):
                params[parameter["name"]] = data.draw(_query_value(parameter["name"], served))
        user = data.draw(st.sampled_from(served.users))
        _check(served, path, params, user)

    fuzz()


@pytest.mark.slow  # a server per backend and app
def test_unrouted_api_paths_and_wrong_methods_get_one_json_line(served):
    """A mistyped endpoint or a POST to a GET route is an API error like any other (JSON,
    one line naming the path or the methods), while MLflow's own paths keep MLflow's
    answers."""
    user = served.users[0]  # the admin where there is one
    for method, path, status, named in (
            ("GET", "/prov/api/no-such-endpoint", 404, "/prov/api/openapi.json"),
            ("GET", "/prov/api/lineage/extra/parts", 404, "no API endpoint"),
            ("POST", "/prov/api/events", 405, "use GET"),
            ("DELETE", "/prov/api/seal", 405, "POST")):
        answer = requests.request(method, served.base + path, auth=user,
                                  timeout=scaled_timeout(SLOWEST_ANSWER_S) * 2)
        assert answer.status_code == status, (method, path, answer.text[:300])
        body = answer.json()
        assert named in body["message"] and "\n" not in body["message"], body
    mlflow_own = requests.get(served.base + "/api/2.0/mlflow/no-such-endpoint", auth=user,
                              timeout=scaled_timeout(SLOWEST_ANSWER_S) * 2)
    assert mlflow_own.status_code == 404 and "PROV" not in mlflow_own.text
