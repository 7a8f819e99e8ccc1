"""A prompt's history on ``/prov/``: a real ``mlflow server --app-name prov`` over a store
written through MLflow's public GenAI APIs (``genai_scenario.py``).

What a user sees: the versions in order with their commit message and template digest, the
``prod`` alias moving from version 1 to 2, the tag changes, the baseline run that used
version 1 and the run and traces that used version 2; the run's timeline links to the page,
the prompts index lists it, and ``mlflow-prov lineage`` shows the prompt version a run used.
Unknown prompts and bad versions get a 404 or 400 naming them; under ``prov-auth`` a
prompt's history follows MLflow's permission on the prompt, and the index is for admins.
The screenshot goes to ``$MLFLOW_PROV_SCREENSHOTS`` when set (docs/browse.md's comes from
there).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from click.testing import CliRunner
from genai_scenario import COMMIT_MESSAGE, genai_store, write
from store_templates import prov_store
from test_prov_browser import CHROMIUM, CHROMIUM_ARGS, _screenshots
from test_prov_pages import ADMIN, ALICE, _as, _auth_server, _grant, serve

from exporters.cli import main

pytestmark = pytest.mark.slow
TIMEOUT = 60
TAG = re.compile(r"<[^>]+>")


@dataclass
class Served:
    uri: str
    base: str
    ids: dict


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("prompt-history")
    uri = prov_store(folder / "runs")
    with genai_store(uri, folder):
        ids = write()
    for base in serve(uri, folder):
        yield Served(uri, base, ids)


def _get(served: Served, path: str, **params: str) -> requests.Response:
    return requests.get(f"{served.base}{path}", params=params, timeout=TIMEOUT)


def _rows(html: str, table: str) -> list[str]:
    """The text of each body row of the table with this id, as a reader reads it."""
    body = html.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    rows = body.split("<tbody>", 1)[1].split("</tr>")[:-1]
    return [" ".join(TAG.sub(" ", row).split()) for row in rows]


def test_the_page_shows_versions_alias_moves_tags_and_who_used_each_version(served):
    page = _get(served, "/prov/prompts/qa")
    assert page.status_code == 200, page.text
    versions = _rows(page.text, "versions")
    assert [row.split()[0] for row in versions] == ["v1", "v2"]
    first, second = versions
    template_v1 = hashlib.sha256(b"Answer {{question}}").hexdigest()
    assert template_v1[:12] in first and "19 chars" in first
    assert COMMIT_MESSAGE in second and "@prod" in second and "@prod" not in first
    assert "run baseline" in first and "model agent" in first
    assert "run agent-run" in second and f"trace {served.ids['run_trace']}" in second
    assert f'href="/prov/runs/{served.ids["baseline_run"]}"' in page.text
    moves = _rows(page.text, "aliases")
    assert len(moves) == 2
    assert "@prod v1 " in moves[0] and "→" not in moves[0]
    assert "@prod v1 → v2 " in moves[1]
    tags = _rows(page.text, "tags")
    assert any("prompt team search" in t for t in tags)
    assert any("v1 reviewed yes" in t for t in tags)


def test_the_api_twin_answers_what_the_page_shows(served):
    history = _get(served, "/prov/api/prompts/qa").json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert [(a["old_version"], a["version"]) for a in history["aliases"]] == [(None, 1), (1, 2)]
    first, second = history["versions"]
    assert second["message"] == COMMIT_MESSAGE and second["aliases"] == ["prod"]
    assert {("run", served.ids["baseline_run"]), ("model", served.ids["model"])} <= {
        (u["kind"], u["id"]) for u in first["used_by"]}
    assert {("run", served.ids["linked_run"]), ("trace", served.ids["run_trace"])} <= {
        (u["kind"], u["id"]) for u in second["used_by"]}
    assert first["created"]["who"] and first["created"]["time"] < second["created"]["time"]
    one = _get(served, "/prov/api/prompts/qa", version="1").json()
    assert [v["version"] for v in one["versions"]] == [1]
    assert len(one["aliases"]) == 2  # prod set to 1, then moved off it
    assert [t["key"] for t in one["tags"]] == ["reviewed"]


@pytest.mark.parametrize(("path", "params", "status", "names"), [
    ("/prov/prompts/nope", {}, 404, "no prompt 'nope'"),
    ("/prov/prompts/qa", {"version": "9"}, 404, "has no version 9"),
    ("/prov/prompts/qa", {"version": "abc"}, 400, "version='abc'"),
    ("/prov/prompts/qa", {"version": "0"}, 400, "version='0'"),
    ("/prov/prompts/qa", {"version": "²"}, 400, "version='²'"),
    ("/prov/prompts/" + "A" * 300, {}, 400, "at most 256 characters"),
    ("/prov/api/prompts/nope", {}, 404, "no prompt 'nope'"),
    ("/prov/api/prompts/qa", {"version": "-1"}, 400, "version='-1'"),
    ("/prov/api/prompts/qa", {"version": "12"}, 404, "has no version 12"),
])
def test_hostile_parameters_get_a_4xx_naming_them(served, path, params, status, names):
    answer = _get(served, path, **params)
    assert answer.status_code == status, answer.text
    message = (answer.json()["message"] if "/api/" in path
               else TAG.sub("", answer.text.split("<p>", 1)[1].split("</p>", 1)[0]))
    assert names in message.replace("&#39;", "'") and "\n" not in message.strip()
    assert "Traceback" not in answer.text


def test_the_run_page_and_the_index_link_to_the_history(served):
    run_page = _get(served, f"/prov/runs/{served.ids['baseline_run']}").text
    assert '<a class="kind prompt-node" href="/prov/prompts/qa?version=1">qa v1</a>' in run_page
    link_event = [row for row in run_page.split("<tr>") if "mlflow.linkedPrompts" in row]
    assert link_event and 'href="/prov/prompts/qa?version=1">prompt qa v1</a>' in link_event[0]
    index = _get(served, "/prov/prompts").text
    assert '<a href="/prov/prompts/qa">qa</a>' in index
    assert 'href="/prov/prompts"' in index  # the header's link on every page


def test_lineage_shows_the_prompt_version_a_run_used(served):
    result = CliRunner().invoke(main, ["lineage", "--tracking-uri", served.uri,
                                       served.ids["baseline_run"]])
    assert result.exit_code == 0, result.output
    assert "used prompt qa version 1 (prompts:/qa/1)" in result.output
    result = CliRunner().invoke(main, ["lineage", "--tracking-uri", served.uri,
                                       "--downstream", "prompts:/qa/1"])
    assert result.exit_code == 0, result.output
    assert f"used by run {served.ids['baseline_run']}" in result.output
    assert "revised by prompt qa version 2" in result.output
    result = CliRunner().invoke(main, ["lineage", "--tracking-uri", served.uri,
                                       "prompts:/qa/7"])
    assert result.exit_code != 0 and "no prompt version prompts:/qa/7" in result.output


def test_under_prov_auth_a_prompt_without_a_grant_is_refused(served, tmp_path, monkeypatch):
    """Alice reads an experiment but has no grant on the prompt: MLflow refuses her the
    prompt, so do its history and the index of every prompt (which is for admins)."""
    for base in _auth_server(tmp_path, monkeypatch, served.uri):
        _grant(base, "alice", served.ids["experiment_id"])
        for path in ("/prov/prompts", "/prov/prompts/qa", "/prov/api/prompts/qa"):
            assert _as(ALICE, f"{base}{path}").status_code == 403, path
        assert requests.get(f"{base}/prov/prompts/qa", timeout=TIMEOUT).status_code == 401
        history = _as(ADMIN, f"{base}/prov/api/prompts/qa").json()
        assert [v["version"] for v in history["versions"]] == [1, 2]
        assert history["created"]["who"].startswith("user-"), "writers pseudonymised"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_a_user_reads_the_history_in_a_browser(served, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="pip install playwright (no browser download)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{served.base}/prov/")
            page.get_by_role("link", name="Prompts", exact=True).click()
            page.get_by_role("link", name="qa", exact=True).click()
            expect = playwright_api.expect
            expect(page.get_by_role("heading", level=1)).to_contain_text("qa")
            expect(page.locator("#versions tbody tr")).to_have_count(2)
            expect(page.locator("#v2")).to_contain_text(COMMIT_MESSAGE)
            expect(page.locator("#aliases tbody tr").nth(1)).to_contain_text("v1→v2")
            page.screenshot(path=str(_screenshots(tmp_path) / "prov-prompt-history.png"),
                            full_page=True)
            page.get_by_role("link", name="run baseline").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("baseline")
        finally:
            browser.close()
