"""A corpus of bad input, as careless users and hostile data produce it (issue 10).

Every case does one wrong thing against a real store that already holds a logged run (prov
over sqlite, then over PostgreSQL): a bad URI, value, key, size, path, symlink, zip member
name or output folder. Each asserts the one line the user sees, and afterwards that nothing
already logged was lost and every journal chain is still intact.

Capture cases call MLflow's client in-process; export cases run the CLI through click's
``CliRunner``. Real failures throughout: tiny and read-only tmpfs mounts for full and
read-only folders (skipped where mounting is not allowed), a closed port for an unreachable
server, real PostgreSQL and MariaDB logins.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from store_templates import prov_store, sqlite_store

from exporters.cli import main
from mlflow_prov.journal import read_events, verify_chain

PG_ADMIN_URI = os.environ.get("MLFLOW_PROV_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URI = os.environ.get("MLFLOW_PROV_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
SECRET_NOTE = "the pw is hunter2"
# Every case must end within this; the slowest (a refused connection) retries for 1 s.
CASE_LIMIT_S = 20


@dataclass
class Store:
    """A prov store holding one logged run: what every case must leave as it was."""

    uri: str
    experiment: str
    run_id: str
    artifact_dir: Path
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)


def _pg_database() -> Iterator[str]:
    admin = sa.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    name = f"mlflow_prov_bad_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URI} ({type(error).__name__})")
    yield "prov+" + sa.engine.make_url(PG_ADMIN_URI).set(database=name).render_as_string(
        hide_password=False)
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for uri in [u for u in SqlAlchemyStore._engine_map if u.endswith(f"/{name}")]:
        SqlAlchemyStore._engine_map.pop(uri).dispose()
    from mlflow_prov.journal import dispose_engines

    dispose_engines()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store(request, tmp_path_factory) -> Iterator[Store]:
    """The logged run, built once per backend (the corpus replayed on PostgreSQL: slow)."""
    workdir = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    databases = _pg_database() if request.param == "postgresql" else None
    uri = next(databases) if databases else prov_store(workdir / "store")
    if databases:
        uri += f"?artifact_root={(workdir / 'artifacts').as_uri()}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("logged")
    run_id = client.create_run(experiment_id).info.run_id
    params = {"lr": "0.1", "note": SECRET_NOTE}
    tags = {"team": "vision"}
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for step in range(5):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    source = workdir / "model.txt"
    source.write_text("weights")
    client.log_artifact(run_id, str(source))
    client.create_experiment("empty")
    artifact_dir = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    yield Store(uri, "logged", run_id, artifact_dir, params, {"loss": 0.2}, tags)
    if databases:
        next(databases, None)


def assert_nothing_lost(store: Store) -> None:
    """The run still has every param, tag and metric point, and every chain verifies."""
    run = MlflowClient(store.uri).get_run(store.run_id)
    assert run.data.params == store.params
    assert {k: run.data.tags[k] for k in store.tags} == store.tags
    assert run.data.metrics == store.metrics
    assert len(MlflowClient(store.uri).get_metric_history(store.run_id, "loss")) == 5
    chains = {event.chain for event in read_events(store.uri)}
    assert chains, "the journal is empty"
    broken = [r for r in (verify_chain(store.uri, c) for c in chains) if not r.intact]
    assert not broken, broken


# --- how a case is run and what the user sees --------------------------------------------------


def capture_error(action: Callable[[], object]) -> str:
    """The first line of the MlflowException ``action`` raises (what a user's script shows;
    MLflow's own validation messages go on with advice on further lines)."""
    with pytest.raises(MlflowException) as caught:
        action()
    return caught.value.message.strip().splitlines()[0]


def cli(*args: str) -> tuple[int, str]:
    """``mlflow-prov`` with ``args``: (exit code, the Error/warning line or the last line)."""
    result = CliRunner().invoke(main, list(args))
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"traceback: {result.exception!r}\n{result.output}")
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("Error", "warning"))]
    assert len(errors) <= 1, f"more than one error line: {errors}"
    return result.exit_code, (errors[0] if errors else lines[-1] if lines else "")


def export(store: Store, out: Path, *extra: str) -> tuple[int, str]:
    return cli("export", "--tracking-uri", store.uri, "--experiment", store.experiment,
               "--out", str(out), *extra)


@dataclass(frozen=True)
class Case:
    """One wrong thing; ``run`` returns the line the user sees, ``expect`` a regex on it."""

    name: str
    run: Callable[[Store, Path], str]
    expect: str


def _raises(action: Callable[[MlflowClient, str], object]) -> Callable[[Store, Path], str]:
    return lambda store, tmp: capture_error(lambda: action(store.client, store.run_id))


def _opening(uri: str | Callable[[Path], str]) -> Callable[[Store, Path], str]:
    def run(store: Store, tmp: Path) -> str:
        target = uri(tmp) if callable(uri) else uri
        with pytest.raises(MlflowException) as caught:
            MlflowClient(target).search_experiments()
        message = caught.value.message
        assert "\n" not in message or message.startswith("Malformed"), message
        return message.splitlines()[0]
    return run


def _exporting(*extra: str, code: int = 1) -> Callable[[Store, Path], str]:
    def run(store: Store, tmp: Path) -> str:
        exit_code, line = export(store, tmp / "out", *extra)
        assert exit_code == code, line
        return line
    return run


def _exporting_from(uri: str | Callable[[Path], str],
                    code: int = 1) -> Callable[[Store, Path], str]:
    def run(store: Store, tmp: Path) -> str:
        target = uri(tmp) if callable(uri) else uri
        exit_code, line = cli("export", "--tracking-uri", target, "--experiment", "logged",
                              "--out", str(tmp / "out"))
        assert exit_code == code, line
        assert not (tmp / "out" / "logged").exists()
        return line
    return run


# --- cases: values and keys logged through MLflow's client ----------------------------------------

VALUE_CASES = [
    Case("param-key-too-long", _raises(lambda c, r: c.log_param(r, "k" * 300, "v")),
         r"exceeds the maximum length of 250"),
    Case("param-key-nul", _raises(lambda c, r: c.log_param(r, "a\x00b", "v")),
         r"Names may only contain"),
    Case("param-key-dotdot", _raises(lambda c, r: c.log_param(r, "../etc/passwd", "v")),
         r"must not resolve to other names"),
    Case("param-key-absolute", _raises(lambda c, r: c.log_param(r, "/abs", "v")),
         r"must not resolve to other names"),
    Case("param-key-empty", _raises(lambda c, r: c.log_param(r, "", "v")),
         r"Invalid value \"\" for parameter 'key'"),
    Case("param-changed", _raises(lambda c, r: c.log_param(r, "lr", "0.9")),
         r"Changing param values is not allowed"),
    Case("param-duplicate-in-batch", _raises(
        lambda c, r: c.log_batch(r, params=[Param("z", "1"), Param("z", "2")])),
        r"Duplicate parameter keys"),
    Case("param-unknown-run", _raises(lambda c, r: c.log_param("0" * 32, "x", "v")),
         r"Run with id=0{32} not found"),
    Case("metric-value-text", _raises(lambda c, r: c.log_metric(r, "loss", "abc")),
         r"valid double"),
    Case("metric-key-empty", _raises(lambda c, r: c.log_metric(r, "", 1.0)),
         r"Invalid value \"\" for parameter 'name'"),
    Case("metric-step-text", _raises(lambda c, r: c.log_metric(r, "loss", 1.0, step="x")),
         r"Step must be a valid long"),
    Case("tag-key-too-long", _raises(lambda c, r: c.set_tag(r, "t" * 300, "v")),
         r"exceeds the maximum length of 250"),
    Case("tag-delete-missing", _raises(lambda c, r: c.delete_tag(r, "nope")),
         r"No tag with name: nope"),
    Case("experiment-duplicate", _raises(lambda c, r: c.create_experiment("logged")),
         r"already exists"),
    Case("experiment-name-empty", _raises(lambda c, r: c.create_experiment("")),
         r"Invalid experiment name"),
    Case("experiment-name-too-long", _raises(lambda c, r: c.create_experiment("x" * 600)),
         r"exceeds the maximum length of 500"),
    Case("experiment-delete-missing", _raises(lambda c, r: c.delete_experiment("999999")),
         r"No Experiment with id=999999"),
    Case("run-get-missing", _raises(lambda c, r: c.get_run("nope")), r"Run with id=nope"),
    Case("search-bad-filter", _raises(lambda c, r: c.search_runs(["0"], "params.lr ==== 1")),
         r"Expected a quoted string|Invalid"),
]


def _scratch(client: MlflowClient) -> str:
    """An experiment for runs a case makes and deletes (``empty`` must stay empty)."""
    found = client.get_experiment_by_name("scratch")
    return found.experiment_id if found else client.create_experiment("scratch")


def _oversized_values(store: Store, tmp: Path) -> str:
    """A 10 MB tag and a 10,000-character param are accepted (MLflow cuts them): no error."""
    client = MlflowClient(store.uri)
    run_id = client.create_run(_scratch(client)).info.run_id
    client.set_tag(run_id, "huge", "x" * 10_000_000)
    client.log_param(run_id, "long", "y" * 10_000)
    stored = client.get_run(run_id).data
    assert len(stored.tags["huge"]) == 8000 and len(stored.params["long"]) == 6000
    client.delete_run(run_id)
    return "accepted, cut to MLflow's limits"


def _unicode_keys(store: Store, tmp: Path) -> str:
    client = MlflowClient(store.uri)
    run_id = client.create_run(_scratch(client)).info.run_id
    client.log_param(run_id, "optimizer/β ü", "adam")
    client.delete_run(run_id)
    return "accepted"


VALUE_CASES += [
    Case("value-oversized", _oversized_values, r"accepted, cut"),
    Case("key-unicode", _unicode_keys, r"accepted"),
]

# --- cases: store URIs a script opens -------------------------------------------------------------


def _file_store(tmp: Path) -> str:
    (tmp / "a-file").write_text("not a folder")
    return f"prov://{tmp / 'a-file'}"


def _under_file(tmp: Path) -> str:
    (tmp / "a-file").write_text("not a folder")
    return f"prov://{tmp / 'a-file' / 'store'}"


def _sqlite_folder(tmp: Path) -> str:
    (tmp / "folder.db").mkdir()
    return f"prov+sqlite://{tmp / 'folder.db'}"


def _pg(user: str = "postgres", database: str = "test", port: int = 5432,
        host: str = "127.0.0.1") -> str:
    return f"prov+postgresql://{user}@{host}:{port}/{database}"


URI_CASES = [
    Case("store-is-a-file", _opening(_file_store), r"is a file, not a folder; point the"),
    Case("store-under-a-file", _opening(_under_file), r"cannot create the prov store folder"),
    Case("sqlite-path-is-a-folder", _opening(_sqlite_folder), r"is a folder; point the"),
    Case("prov-host-not-path", _opening("prov://host/dir"), r"reads as a host"),
    # MLflow never calls the plugin for a scheme no entry point names: its own message,
    # which lists every supported scheme (the exporter names the typo itself, see below).
    Case("prov-unknown-backend", _opening("prov+oracle://u@h/db"),
         r"unsupported URI 'prov\+oracle://u@h/db'.*Supported URI schemes are: .*'prov\+sqlite'"),
    Case("prov-unknown-query", _opening(lambda t: f"prov://{t}/s?colour=red"),
         r"unknown query parameter"),
    Case("prov-sqlite-no-path", _opening("prov+sqlite://"), r"needs a file path"),
    Case("prov-postgres-no-database", _opening("prov+postgresql://u@127.0.0.1"),
         r"needs a host and a database"),
    Case("pg-unknown-role", _opening(_pg(user="nosuchrole")),
         r"cannot open the tracking database .*role \"nosuchrole\" does not exist"),
    Case("pg-missing-database", _opening(_pg(database="no_such_db")),
         r"database \"no_such_db\" does not exist; fix the user"),
    Case("pg-refused", _opening(_pg(port=1)),
         r"Connection refused \(retried for 1 s, MLFLOW_PROV_CONNECT_TIMEOUT\)"),
    Case("pg-unknown-host", _opening(_pg(host="no-such-host.invalid")),
         r"cannot open the tracking database .*no-such-host\.invalid"),
    Case("mysql-wrong-password", _opening(
        "prov+" + MYSQL_URI.replace("root@", "root:wrong@")),
        r"root:\*\*\*@.*Access denied"),
    Case("mysql-missing-database", _opening(
        "prov+" + MYSQL_URI.rsplit("/", 1)[0] + "/no_such_db"), r"Unknown database 'no_such_db'"),
]


def _bad_timeout_variable(store: Store, tmp: Path) -> str:
    os.environ["MLFLOW_PROV_CONNECT_TIMEOUT"] = "soon"
    try:
        return capture_error(lambda: MlflowClient(_pg(port=2)).search_experiments())
    finally:
        os.environ["MLFLOW_PROV_CONNECT_TIMEOUT"] = "1"


URI_CASES.append(Case("connect-timeout-not-a-number", _bad_timeout_variable,
                      r"MLFLOW_PROV_CONNECT_TIMEOUT='soon' is not a number"))

# --- cases: the exporter's input and output -------------------------------------------------------


def _no_uri(store: Store, tmp: Path) -> str:
    work = tmp / "cwd"
    work.mkdir()
    os.chdir(work)
    mlflow.set_tracking_uri(None)
    code, line = cli("export", "--experiment", "logged", "--out", str(tmp / "out"))
    assert code == 1 and not list(work.iterdir()), "an export created files in the cwd"
    return line


def _default_store_named(store: Store, tmp: Path) -> str:
    """No URI given, MLflow's default store exists: the error names it and what it holds."""
    work = tmp / "cwd"
    work.mkdir()
    os.chdir(work)
    mlflow.set_tracking_uri(None)
    default = mlflow.get_tracking_uri()
    sqlite_store(Path(default.removeprefix("sqlite:///")))  # created and migrated already
    MlflowClient(default).create_experiment("here")
    code, line = cli("export", "--experiment", "logged", "--out", str(tmp / "out"))
    assert code == 1
    return line


def _out_is_file(store: Store, tmp: Path) -> str:
    (tmp / "out").write_text("x")
    code, line = export(store, tmp / "out")
    assert code == 2
    return line


def _out_under_file(store: Store, tmp: Path) -> str:
    (tmp / "file").write_text("x")
    code, line = export(store, tmp / "file" / "out")
    assert code == 1
    return line


@pytest.fixture
def mount(tmp_path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs with the given options (``size=64k``, ``ro``) and unmount afterwards."""
    mounted: list[Path] = []

    def make(options: str) -> Path:
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _fill(folder: Path) -> None:
    """Fill a file system to its last 4 KB."""
    free = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 4096))


def _out_read_only(store: Store, tmp: Path, mount: Callable[[str], Path]) -> str:
    code, line = export(store, mount("ro,size=64k"))
    assert code == 1
    return line


def _out_full(store: Store, tmp: Path, mount: Callable[[str], Path]) -> str:
    """A 64 KB disk: an RO-Crate with the artifact and a NetCDF file cannot fit."""
    out = mount("size=64k")
    _fill(out)
    code, line = export(store, out, "--format", "prov-json,provn,dot,rocrate",
                        "--crate-as-folder")
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["filler"], "a partial export was left"
    return line


def _failed_reexport_keeps_old(store: Store, tmp: Path, mount: Callable[[str], Path]) -> str:
    out = mount("size=128k")
    code, _ = export(store, out, "--format", "prov-json")
    assert code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _fill(out)
    code, line = export(store, out, "--format", "prov-json,provn,dot,rocrate",
                        "--crate-as-folder")
    assert code == 1
    assert {p: p.read_bytes() for p in before} == before, "the earlier export changed"
    assert not [p for p in out.iterdir() if p.name.startswith(".mlflow-prov-export-")]
    return line


def _symlinked_artifact(store: Store, tmp: Path) -> str:
    link = store.artifact_dir / "passwd-link"
    link.symlink_to("/etc/passwd")
    try:
        code, line = export(store, tmp / "out")
    finally:
        link.unlink()
    assert code == 0, line
    document = next((tmp / "out").rglob("prov.json")).read_text()
    assert "root:" not in document
    return _skipped(document, "passwd-link")


def _linked_folder(store: Store, tmp: Path) -> str:
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "secret.txt").write_text("private")
    link = store.artifact_dir / "linked-dir"
    link.symlink_to(tmp / "elsewhere", target_is_directory=True)
    try:
        code, line = export(store, tmp / "out", "--format", "prov-json,rocrate")
    finally:
        link.unlink()
    assert code == 0, line
    document = next((tmp / "out").rglob("prov.json")).read_text()
    crate = next((tmp / "out").rglob(f"run-{store.run_id}.crate.zip"))
    with zipfile.ZipFile(crate) as packed:
        assert not [n for n in packed.namelist() if "secret" in n]
    return _skipped(document, "linked-dir")


def _fifo_artifact(store: Store, tmp: Path) -> str:
    fifo = store.artifact_dir / "a-pipe"
    os.mkfifo(fifo)
    try:
        code, line = export(store, tmp / "out")
    finally:
        fifo.unlink()
    assert code == 0, line
    return _skipped(next((tmp / "out").rglob("prov.json")).read_text(), "a-pipe")


def _skipped(document: str, path: str) -> str:
    """The ``mlflowprov:skipped`` reason recorded for the artifact at ``path``."""
    parsed = json.loads(document)
    for scope in (parsed, *parsed.get("bundle", {}).values()):
        for entity in scope.get("entity", {}).values():
            if entity.get("mlflowprov:path") == path:
                assert "mlflowprov:sha256" not in entity
                return entity["mlflowprov:skipped"]
    raise AssertionError(f"no artifact entity for {path}")


def _zip_member_names(store: Store, tmp: Path) -> str:
    """Artifact names that would escape or confuse a zip: every member stays relative."""
    client = MlflowClient(store.uri)
    run_id = client.create_run(client.get_experiment_by_name("logged").experiment_id).info.run_id
    names = ["spaced name.txt", "ünïcödé.txt", "..dots..txt", "a" * 200 + ".txt"]
    for name in names:
        source = tmp / "src" / name
        source.parent.mkdir(exist_ok=True)
        source.write_text(name)
        client.log_artifact(run_id, str(source), artifact_path="nested/dir")
    code, line = export(store, tmp / "out", "--run", run_id, "--format", "prov-json,rocrate")
    client.delete_run(run_id)
    assert code == 0, line
    with zipfile.ZipFile(next((tmp / "out").rglob(f"run-{run_id}.crate.zip"))) as packed:
        members = packed.namelist()
    assert all(not m.startswith("/") and ".." not in Path(m).parts for m in members), members
    assert {n for n in names} <= {Path(m).name for m in members}
    return line


def _redacted_note(store: Store, tmp: Path) -> str:
    code, line = export(store, tmp / "out", "--redact", "no.e", "--format", "prov-json,provn")
    assert code == 0, line
    for file in (tmp / "out").rglob("*"):
        if file.is_file():
            assert SECRET_NOTE not in file.read_text(errors="replace"), file
    return line


def _omitted_params(store: Store, tmp: Path) -> str:
    code, line = export(store, tmp / "out", "--omit", "params,tags", "--omit", "environment")
    assert code == 0, line
    document = next((tmp / "out").rglob("prov.json")).read_text()
    assert ".param." not in document and ".tag.team" not in document
    assert SECRET_NOTE not in document and "vision" not in document
    return line


def _empty_experiment(store: Store, tmp: Path) -> str:
    code, line = cli("export", "--tracking-uri", store.uri, "--experiment", "empty", "--out",
                     str(tmp / "out"))
    assert code == 0
    return line


def _unreachable_server(store: Store, tmp: Path) -> str:
    started = time.perf_counter()
    line = _exporting_from("http://127.0.0.1:1")(store, tmp)
    assert time.perf_counter() - started < 10
    return line


def _silent_server(store: Store, tmp: Path) -> str:
    """A server that accepts the connection and never answers: --timeout bounds the wait."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        started = time.perf_counter()
        code, line = cli("export", "--tracking-uri", f"http://127.0.0.1:{port}",
                         "--experiment", "logged", "--out", str(tmp / "out"),
                         "--timeout", "1")
    assert code == 1 and time.perf_counter() - started < 10
    return line


def _hanging_api(store: Store, tmp: Path) -> str:
    """A server whose /health answers but whose API never does: each request waits at most
    --timeout, and MLflow's two retries with back-off keep the whole under seconds."""
    import http.server
    import threading

    class Hanging(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
            if self.path.startswith("/health"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")
            else:
                time.sleep(30)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.perf_counter()
    try:
        code, line = cli("export", "--tracking-uri", f"http://127.0.0.1:{server.server_port}",
                         "--experiment", "logged", "--out", str(tmp / "out"), "--timeout", "1")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and time.perf_counter() - started < 12
    return line


EXPORT_CASES = [
    Case("export-hanging-api", _hanging_api, r"cannot read experiment 'logged': .*Read timed out"),
    Case("export-unknown-scheme", _exporting_from("pro:///tmp/x"),
         r"^Error: unknown tracking-URI scheme 'pro' in pro:///tmp/x; known schemes: .*prov"),
    Case("export-typo-scheme-prov-sqlite", _exporting_from("prov+sqlit:///tmp/x.db"),
         r"unknown tracking-URI scheme 'prov\+sqlit'"),
    Case("export-missing-prov-store", _exporting_from(lambda t: f"prov://{t / 'nowhere'}"),
         r"no prov store at .*nowhere"),
    Case("export-unreachable-server", _unreachable_server,
         r"cannot reach the tracking server http://127\.0\.0\.1:1 \(connection refused\)"),
    Case("export-silent-server", _silent_server, r"did not answer within 1 s \(--timeout\)"),
    Case("export-pg-refused", _exporting_from("postgresql://postgres@127.0.0.1:1/test"),
         r"Connection refused \(retried for"),
    Case("export-pg-missing-database", _exporting_from(
        "postgresql://postgres@127.0.0.1:5432/no_such_db"), r"does not exist"),
    Case("export-no-uri", _no_uri,
         r"no tracking URI given and MLflow's default store .* does not exist .*--tracking-uri"),
    Case("export-default-store-named", _default_store_named,
         r"no experiment named or numbered 'logged' in MLflow's default sqlite:///.*; "
         r"experiments there: here \(1\), Default \(0\); pass --tracking-uri"),
    Case("export-unknown-experiment", _exporting("--experiment", "nope"),
         r"no experiment named or numbered 'nope' in .*experiments there: .*logged \(\d+\)"),
    Case("export-empty-experiment", _empty_experiment,
         r"^warning: experiment 'empty' has no runs; exported the experiment alone"),
    Case("export-unknown-run", _exporting("--run", "f" * 32), r"cannot list runs|not found"),
    Case("export-bad-filter", _exporting("--filter", "params.lr ==="),
         r"cannot list runs of experiment"),
    Case("export-unknown-format", _exporting("--format", "pdf", code=2), r"unknown format"),
    Case("export-bad-omit", _exporting("--omit", "passwords", code=2), r"cannot omit passwords"),
    Case("export-bad-redact", _exporting("--redact", "(", code=2),
         r"--redact '\(' is not a key or a regular expression"),
    Case("export-zero-timeout", _exporting("--timeout", "0", code=2), r"--timeout"),
    Case("export-bad-context-prefix", _exporting("--context-prefix", "train", code=2),
         r"is not PREFIX=CONTEXT"),
    Case("export-out-is-a-file", _out_is_file, r"is a file"),
    Case("export-out-under-a-file", _out_under_file,
         r"cannot write to the output folder .*file/out: Not a directory"),
    Case("export-symlinked-artifact", _symlinked_artifact, r"^symbolic link, not followed$"),
    Case("export-linked-artifact-folder", _linked_folder, r"^symbolic link, not followed$"),
    Case("export-fifo-artifact", _fifo_artifact, r"^not a regular file"),
    Case("export-zip-member-names", _zip_member_names, r"^exported 1 run"),
    Case("export-redact-free-text", _redacted_note, r"^exported"),
    Case("export-omit-parts", _omitted_params, r"^exported"),
]
def _store_on_read_only(store: Store, tmp: Path, mount: Callable[[str], Path]) -> str:
    return _opening(f"prov://{mount('ro,size=64k')}")(store, tmp)


def _store_under_read_only(store: Store, tmp: Path, mount: Callable[[str], Path]) -> str:
    return _opening(f"prov://{mount('ro,size=64k') / 'runs'}")(store, tmp)


def _store_on_full_disk(store: Store, tmp: Path, mount: Callable[[str], Path]) -> str:
    """A store whose disk fills while logging: each write fails on one line, and what was
    logged before (MLflow's rows and the journal) survives, its chains intact."""
    folder = mount("size=2m")
    uri = prov_store(folder / "store")
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("full")).info.run_id
    client.log_param(run_id, "lr", "0.1")
    _fill(folder)
    message = capture_error(lambda: [client.log_param(run_id, f"p{i}", "v" * 5000)
                                     for i in range(20)])
    (folder / "filler").unlink()
    assert client.get_run(run_id).data.params == {"lr": "0.1"}
    assert all(verify_chain(uri, c).intact for c in {e.chain for e in read_events(uri)})
    return message


MOUNT_CASES = [
    Case("store-on-full-disk", _store_on_full_disk, r"database or disk is full"),
    Case("store-in-read-only-folder", _store_on_read_only,
         r"the prov store folder .* is not writable \(Read-only file system\); make it"),
    Case("store-under-read-only-folder", _store_under_read_only,
         r"cannot create the prov store folder .*runs: Read-only file system; choose"),
    Case("export-out-read-only", _out_read_only,
         r"cannot write to the output folder .*: Read-only file system; choose a writable"),
    Case("export-out-full", _out_full, r"No space left on device"),
    Case("export-failed-reexport-keeps-old", _failed_reexport_keeps_old,
         r"No space left on device"),
]

CASES = VALUE_CASES + URI_CASES + EXPORT_CASES
# Cases that wait out a real timeout or connection retries on purpose (1 s and more)
SLOW_CASES = {"export-hanging-api", "export-silent-server", "pg-refused", "export-pg-refused"}


def _params(cases: list[Case]) -> list:
    return [pytest.param(case, id=case.name,
                         marks=[pytest.mark.slow] if case.name in SLOW_CASES else [])
            for case in cases]


@pytest.fixture(autouse=True)
def _short_connect_timeout(monkeypatch):
    """A refused connection is retried for 1 s here, not the default 10 s."""
    monkeypatch.setenv("MLFLOW_PROV_CONNECT_TIMEOUT", "1")


def _check(case: Case, store: Store, line: str, elapsed: float) -> None:
    assert re.search(case.expect, line), f"{case.name}: {line!r}"
    assert "Traceback" not in line and "\n" not in line.strip()
    assert elapsed < CASE_LIMIT_S, f"{case.name} took {elapsed:.1f} s"
    assert_nothing_lost(store)


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_says_one_line_and_loses_nothing(case: Case, store: Store, tmp_path):
    started = time.perf_counter()
    line = case.run(store, tmp_path)
    _check(case, store, line, time.perf_counter() - started)


@pytest.mark.parametrize("case", _params(MOUNT_CASES))
def test_bad_output_folders_leave_nothing_that_looks_complete(case: Case, store: Store,
                                                              tmp_path, mount):
    started = time.perf_counter()
    line = case.run(store, tmp_path, mount)
    _check(case, store, line, time.perf_counter() - started)


def test_the_corpus_is_large_enough():
    assert len(CASES) + len(MOUNT_CASES) >= 50
