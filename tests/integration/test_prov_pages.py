"""``mlflow server --app-name prov`` / ``prov-auth``: the journal API, the lineage and
timeline pages, remote exports with history, and per-experiment read permissions, on a real
server over sqlite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
import requests
import sqlalchemy as sa
from lineage_scenario import SECRET, write
from mlflow import MlflowClient
from test_server import _serve

from exporters import ExportOptions, export
from mlflow_prov.journal import read_events
from mlflow_prov.uri import parse_prov_uri

TIMEOUT = 60


@pytest.fixture(params=["prov", "prov+postgresql"])
def store(request, tmp_path) -> str:
    if request.param == "prov":
        return f"prov://{tmp_path / 'served'}"
    return request.getfixturevalue("prov_postgres_uri")


def serve(store: str, tmp_path: Path, app: str = "prov") -> Iterator[str]:
    yield from _serve(["server", "--app-name", app, "--backend-store-uri", store,
                       "--workers", "1"], tmp_path)


def get(url: str, **params) -> requests.Response:
    return requests.get(url, params=params, timeout=TIMEOUT)


def _all_events(base: str, **params) -> list[dict]:
    events, token = [], None
    while True:
        page = get(f"{base}/prov/api/events", **params, page_size=2,
                   **({"page_token": token} if token else {})).json()
        events += page["events"]
        token = page["next_page_token"]
        if not token:
            return events


def _edges(graph: dict) -> set[tuple[str, str, str]]:
    label = {n["id"]: n["label"] for n in graph["nodes"]}
    return {(label[e["source"]], e["label"], label[e["target"]]) for e in graph["edges"]}


def _documents(out: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(out.rglob("*.json")):
        document = json.loads(path.read_text())
        text = json.dumps(document, sort_keys=True)
        found[path.relative_to(out).as_posix()] = json.loads(
            text.replace(json.dumps(document_uri(document))[1:-1], "URI"))
    return found


def document_uri(document: dict) -> str:
    """The tracking URI the document names (the one thing that differs by source)."""
    text = json.dumps(document)
    marker = '"mlflowprov:trackingUri": "'
    start = text.index(marker) + len(marker)
    return text[start:text.index('"', start)]


@pytest.mark.slow
def test_journal_api_pages_lineage_and_remote_export(store, tmp_path):
    ids = write(store)
    for base in serve(store, tmp_path):
        # MLflow's own API and UI are unchanged
        assert get(f"{base}/api/2.0/mlflow/runs/get", run_id=ids["producer"]).json()[
            "run"]["info"]["run_name"] == "prepare-data"
        assert get(f"{base}/api/3.0/mlflow/server-info").json()["store_type"] == "SqlStore"
        assert get(base).status_code == 200

        # events: every one, once, in write order, across pages
        events = _all_events(base, run_id=ids["producer"])
        assert [e["seq"] for e in events] == [e.seq for e in read_events(store,
                                                                          run_id=ids["producer"])]
        tags = get(f"{base}/prov/api/events", run_id=ids["producer"], kind="run.tags_set").json()
        assert [(e["payload"]["old"]["phase"], e["payload"]["tags"]["phase"])
                for e in tags["events"] if "phase" in e["payload"]["tags"]] == [
            (None, "warmup"), ("warmup", "main")]
        assert SECRET not in json.dumps(events) and "[redacted]" in json.dumps(events)
        assert {e["run_id"] for e in _all_events(base, experiment_id=ids["training"])} == {
            None, ids["consumer"], ids["child"]}

        # verification
        assert get(f"{base}/prov/api/verify", run_id=ids["producer"]).json()["intact"]
        report = get(f"{base}/prov/api/verify", experiment_id=ids["training"]).json()
        assert report["intact"] and len(report["chains"]) == 3
        head = get(f"{base}/prov/api/head", run_id=ids["producer"]).json()
        assert head["length"] == len(events) and head["last_hash"] == events[-1]["hash"]

        # lineage, upstream and downstream, across experiments
        upstream = _edges(get(f"{base}/prov/api/lineage", run_id=ids["consumer"]).json())
        assert {("prepare-data", "produced", "data/features.csv"),
                ("data/features.csv", "source of", "features.csv"),
                ("features.csv", "used (training)", "train-model"),
                ("train-model", "logged", "classifier"), ("classifier", "used", "evaluate"),
                ("train-model", "parent of", "evaluate")} <= upstream
        downstream = _edges(get(f"{base}/prov/api/lineage", run_id=ids["producer"]).json())
        assert ("features.csv", "used (training)", "train-model") in downstream
        model = _edges(get(f"{base}/prov/api/lineage", model_id=ids["model"]).json())
        assert ("classifier", "used", "evaluate") in model
        artifact = get(f"{base}/prov/api/lineage",
                       artifact=f"{ids['producer']}/data/features.csv").json()
        assert ("features.csv", "used (training)", "train-model") in _edges(artifact)
        dataset = next(n for n in artifact["nodes"] if n["kind"] == "dataset")["attributes"]
        used = _edges(get(f"{base}/prov/api/lineage",
                          dataset=f"{dataset['name']}@{dataset['digest']}").json())
        assert ("prepare-data", "produced", "data/features.csv") in used

        # read-only, and errors a client can act on
        assert requests.post(f"{base}/prov/api/events", timeout=TIMEOUT).status_code == 405
        bad = get(f"{base}/prov/api/events", page_token="forged")
        assert bad.status_code == 400 and "page_token" in bad.json()["message"]
        assert get(f"{base}/prov/api/lineage", run_id="0" * 32).status_code == 404

        # pages
        assert {"features", "training"} <= set(_names(get(f"{base}/prov/").text))
        lineage_page = get(f"{base}/prov/experiments/{ids['training']}").text
        for text in ("prepare-data", "train-model", "evaluate", "classifier", "features.csv",
                     f"/#/experiments/{ids['features']}/runs/{ids['producer']}"):
            assert text in lineage_page
        first = get(f"{base}/prov/experiments/{ids['training']}", page_size=1).text
        assert "train-model" in _runs_table(first) and "evaluate" not in _runs_table(first)
        second = get(f"{base}/prov/experiments/{ids['training']}{_next_link(first)}").text
        assert "evaluate" in _runs_table(second) and "train-model" not in _runs_table(second)
        assert "Next runs" not in second
        timeline = get(f"{base}/prov/runs/{ids['producer']}").text
        for text in ("warmup", "main", "RUNNING", "FINISHED", "carbon/emissions_kgco2eq",
                     f"/prov/api/verify?run_id={ids['producer']}"):
            assert text in timeline
        assert SECRET not in timeline

        # an export from the server equals the export from the database
        options = ExportOptions(formats=("prov-json",), show_progress=False)
        export("training", tmp_path / "db", tracking_uri=store, options=options)
        export("training", tmp_path / "http", tracking_uri=base, options=options)
        from_db, from_server = _documents(tmp_path / "db"), _documents(tmp_path / "http")
        assert from_db == from_server and len(from_db) == 3
        run = next(iter(from_server.values()))
        assert '"mlflowprov:historyAvailable": true' in json.dumps(run)


def _runs_table(html: str) -> str:
    return html.split('<table class="runs">', 1)[1].split("</table>", 1)[0]


def _next_link(html: str) -> str:
    """The pager's link (``?page_token=…``), unescaped as a browser would follow it."""
    import html as html_module

    return html_module.unescape(html.split('<div class="pager"><a href="', 1)[1].split('"')[0])


def _names(html: str) -> list[str]:
    return [part.split("<", 1)[0] for part in html.split('">')[1:]]


def _client(monkeypatch, uri: str) -> flask.testing.FlaskClient:
    """A bare Flask app with the prov routes, serving ``uri`` (no server process needed for
    answers that never reach a store's data)."""
    from exporters.app.permissions import OpenAccess
    from exporters.app.setup import install
    from exporters.compat import backend_store_env_var

    monkeypatch.setenv(backend_store_env_var(), uri)
    app = flask.Flask("prov-test")
    install(app, OpenAccess())
    return app.test_client()


def test_a_store_without_journal_answers_with_a_json_404(monkeypatch, sqlite_uri):
    answer = _client(monkeypatch, sqlite_uri).get("/prov/api/events?experiment_id=0")
    assert answer.status_code == 404
    assert answer.json["error_code"] == "PROV_JOURNAL_UNAVAILABLE"
    assert "--app-name prov --backend-store-uri prov:///" in answer.json["message"]


@pytest.mark.parametrize(("query", "names"), [
    ("kind=run.nonsense", "unknown event kind"), ("page_size=0", "page_size"),
    ("since=yesterday", "since='yesterday'"), ("dataset=no-digest", "dataset")])
def test_bad_parameters_are_named_in_one_line(monkeypatch, prov_uri, query, names):
    route = "lineage" if query.startswith("dataset") else "events"
    answer = _client(monkeypatch, prov_uri).get(f"/prov/api/{route}?{query}")
    assert answer.status_code == 400 and names in answer.json["message"]
    assert "\n" not in answer.json["message"]


ADMIN = ("admin", "admin-password-0123456789")
ALICE = ("alice", "alice-password-0123456789")
BOB = ("bob", "bob-password-0123456789!")


def _auth_server(tmp_path: Path, monkeypatch, store: str) -> Iterator[str]:
    """``--app-name prov-auth`` where nobody reads anything unless granted, writers
    pseudonymised."""
    config = tmp_path / "basic_auth.ini"
    config.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                      f"database_uri = sqlite:///{tmp_path / 'auth.db'}\n"
                      f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
                      "authorization_function = "
                      "mlflow.server.auth:authenticate_request_basic_auth\n")
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "prov-auth-test-secret")
    monkeypatch.setenv("MLFLOW_PROV_PSEUDONYMIZE", "true")
    yield from serve(store, tmp_path, app="prov-auth")


def _as(user: tuple[str, str], url: str, **params) -> requests.Response:
    return requests.get(url, params=params, auth=user, timeout=TIMEOUT)


def _grant(base: str, user: str, experiment_id: str) -> None:
    for route, body in (("/api/2.0/mlflow/users/create",
                         {"username": user, "password": dict([ALICE, BOB])[user]}),
                        ("/api/3.0/mlflow/users/permissions/grant",
                         {"username": user, "resource_type": "experiment",
                          "resource_id": experiment_id, "permission": "READ"})):
        answer = requests.post(f"{base}{route}", json=body, auth=ADMIN, timeout=TIMEOUT)
        assert answer.ok, answer.text


@pytest.mark.slow
def test_prov_auth_shows_each_user_only_the_experiments_they_may_read(tmp_path, monkeypatch):
    store = f"prov://{tmp_path / 'served'}"
    ids = write(store)
    real_user = next(read_events(store, run_id=ids["producer"])).writer["user"]
    for base in _auth_server(tmp_path, monkeypatch, store):
        _grant(base, "alice", ids["features"])
        _grant(base, "bob", ids["training"])
        events_url = f"{base}/prov/api/events"

        assert requests.get(events_url, params={"experiment_id": ids["features"]},
                            timeout=TIMEOUT).status_code == 401
        assert requests.get(f"{base}/prov/", timeout=TIMEOUT).status_code == 401
        assert _as(ALICE, base + "/api/2.0/mlflow/experiments/get",
                   experiment_id=ids["training"]).status_code == 403, "MLflow's own rule"

        for route, body in (("registered-models/create", {"name": "hidden-registry-model"}),
                            ("model-versions/create",
                             {"name": "hidden-registry-model", "run_id": ids["producer"],
                              "source": f"runs:/{ids['producer']}/data"})):
            answer = requests.post(f"{base}/api/2.0/mlflow/{route}", json=body, auth=ADMIN,
                                   timeout=TIMEOUT)
            assert answer.ok, answer.text
        assert "hidden-registry-model" not in _as(
            ALICE, base + "/api/2.0/mlflow/model-versions/search",
            filter=f"run_id = '{ids['producer']}'").text, "MLflow's own rule"
        for query in ({"run_id": ids["producer"]}, {"experiment_id": ids["features"]}):
            assert "hidden-registry-model" not in _as(ALICE, events_url, **query).text, \
                "a registered model she may not read stays out of her run's events"
        assert "hidden-registry-model" not in _as(
            ALICE, f"{base}/prov/runs/{ids['producer']}").text
        engine = sa.create_engine(parse_prov_uri(store).db_uri)
        with engine.begin() as connection:  # break the registered model's chain
            connection.execute(sa.text("UPDATE prov_journal SET payload = replace(payload, "
                                       "'runs:/', 'RUNS:/') WHERE chain LIKE 'model:%'"))
        engine.dispose()
        verify_url = f"{base}/prov/api/verify"
        assert "hidden-registry-model" in _as(ADMIN, verify_url,
                                              experiment_id=ids["features"]).text
        assert "hidden-registry-model" not in _as(ALICE, verify_url,
                                                  experiment_id=ids["features"]).text

        # alice reads features only
        mine = _as(ALICE, events_url, experiment_id=ids["features"]).json()["events"]
        assert {e["run_id"] for e in mine} == {None, ids["producer"]}
        assert all(e["writer"]["user"] != real_user and e["writer"]["user"].startswith("user-")
                   for e in mine), "writers follow the server's pseudonymisation option"
        assert _as(ALICE, events_url, experiment_id=ids["training"]).status_code == 403
        assert _as(ALICE, events_url, run_id=ids["consumer"]).status_code == 403
        assert _as(ALICE, events_url).status_code == 400, "no unfiltered journal for her"
        assert _as(ALICE, f"{base}/prov/api/verify", run_id=ids["child"]).status_code == 403
        listing = _as(ALICE, f"{base}/prov/").text
        assert "features" in listing and "training" not in listing
        assert _as(ALICE, f"{base}/prov/experiments/{ids['training']}").status_code == 403
        assert _as(ALICE, f"{base}/prov/runs/{ids['consumer']}").status_code == 403
        downstream = _as(ALICE, f"{base}/prov/api/lineage", run_id=ids["producer"]).json()
        # "data" is the folder the hidden registry version was made from: her run made it
        assert {n["label"] for n in downstream["nodes"]} == {"prepare-data",
                                                             "data/features.csv", "data"}
        hidden_start = _as(ALICE, f"{base}/prov/api/lineage", model_id=ids["model"])
        assert hidden_start.status_code == 404, "a model she may not read is not known to her"
        assert "features.csv" not in hidden_start.text, "nor what lies behind it"
        timeline = _as(ALICE, f"{base}/prov/runs/{ids['producer']}").text
        assert "warmup" in timeline and f"<b>{real_user}</b>" not in timeline
        _check_lineage_queries_keep_permissions(base, store, ids, downstream)

        # bob reads training only: the producer in features stays hidden from him
        upstream = _as(BOB, f"{base}/prov/api/lineage", run_id=ids["consumer"]).json()
        labels = {n["label"] for n in upstream["nodes"]}
        assert {"train-model", "features.csv", "evaluate"} <= labels
        assert not labels & {"prepare-data", "data/features.csv"}
        page = _as(BOB, f"{base}/prov/experiments/{ids['training']}").text
        assert "train-model" in page and "prepare-data" not in page

        # the admin reads everything
        assert _as(ADMIN, events_url).status_code == 200
        both = _as(ADMIN, f"{base}/prov/api/lineage", run_id=ids["consumer"]).json()
        assert "prepare-data" in {n["label"] for n in both["nodes"]}


def _check_lineage_queries_keep_permissions(base: str, store: str, ids: dict[str, str],
                                            downstream: dict) -> None:
    """``q`` resolves as the CLI does, then checks permissions on the node it names; an
    ambiguous prefix names only the nodes the reader may read."""
    lineage_url = f"{base}/prov/api/lineage"
    by_prefix = _as(ALICE, lineage_url, q=ids["producer"][:8]).json()
    assert {n["id"] for n in by_prefix["nodes"]} == {n["id"] for n in downstream["nodes"]}
    for hidden_start in (ids["consumer"][:8], f"{ids['consumer'][:3]}/x"):
        refused = _as(ALICE, lineage_url, q=hidden_start)  # as if nothing had that prefix
        assert refused.status_code == 404 and ids["consumer"] not in refused.text, refused.text
        assert "names nothing readable" in refused.json()["message"]
    hidden_model = _as(ALICE, lineage_url, q=f"models:/{ids['model']}")
    assert hidden_model.status_code == 404 and "features.csv" not in hidden_model.text
    client = MlflowClient(store)
    hidden = client.create_run(ids["training"]).info.run_id
    while hidden[0] != ids["producer"][0]:  # a run of hers and one of bob's share a digit
        hidden = client.create_run(ids["training"]).info.run_id
    shared = hidden[0]
    both = _as(ADMIN, lineage_url, q=shared)
    named = re.findall(r"run:([0-9a-f]{32})", both.json()["message"])  # the first two
    assert both.status_code == 400 and len(named) == 2, both.text
    assert all(run_id.startswith(shared) for run_id in named), both.text
    hers = _as(ALICE, lineage_url, q=shared)
    assert hers.status_code in (200, 400) and hidden not in hers.text, hers.text


def test_the_timelines_next_link_keeps_every_filter(monkeypatch, prov_uri):
    """Paging on through a filtered timeline must not drop the filter: the next page of
    ``since``/``until``/``kind`` is still that window and that kind."""
    from mlflow import MlflowClient

    client = MlflowClient(prov_uri)
    run_id = client.create_run("0").info.run_id
    for value in ("a", "b", "c", "d"):
        client.set_tag(run_id, "phase", value)
    page = _client(monkeypatch, prov_uri).get(
        f"/prov/runs/{run_id}?page_size=2&kind=run.tags_set&since=1000&until=99999999999999")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    next_link = text[text.index('<div class="pager"><a href="'):].split('"')[3]
    assert "&since=1000" in next_link and "&until=99999999999999" in next_link
    assert "&kind=run.tags_set" in next_link and "&page_size=2" in next_link


def test_a_run_with_many_files_is_one_box_on_the_experiment_page(monkeypatch, prov_uri,
                                                                 tmp_path):
    """Ten recorded files nothing else uses are drawn as one "10 files" box leading to the
    run's list of files; a run with two keeps both; the API still names every file."""
    from mlflow import MlflowClient

    client = MlflowClient(prov_uri)
    experiment_id = client.create_experiment("many-files",
                                             artifact_location=str(tmp_path / "art"))
    runs = {}
    for name, files in (("sweep", 10), ("small", 2)):
        run_id = runs[name] = client.create_run(experiment_id, run_name=name).info.run_id
        folder = tmp_path / name
        folder.mkdir()
        for number in range(files):
            (folder / f"part-{number}.csv").write_text(f"{name} {number}\n")
        client.log_artifacts(run_id, str(folder))
        client.set_terminated(run_id)
    web = _client(monkeypatch, prov_uri)
    page = web.get(f"/prov/experiments/{experiment_id}").get_data(as_text=True)
    assert "10 files" in page and f"/prov/runs/{runs['sweep']}#recorded-artifacts" in page
    assert "part-9.csv" not in page, "the sweep's files are folded"
    assert page.count("part-0.csv") >= 1 and "part-1.csv" in page, "the small run's are not"
    answer = web.get(f"/prov/api/lineage?run_id={runs['sweep']}").json
    files = sorted(n["label"] for n in answer["nodes"] if n["kind"] == "artifact")
    assert files == [f"part-{number}.csv" for number in range(10)]
    listed = web.get(f"/prov/runs/{runs['sweep']}").get_data(as_text=True)
    assert 'id="recorded-artifacts"' in listed and "part-9.csv" in listed
