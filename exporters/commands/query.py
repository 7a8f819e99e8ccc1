"""``mlflow-prov query``: SPARQL over the PROV-O of a store or of exported files; a thin
click layer over :mod:`exporters.sparql`, :mod:`exporters.sparql_graph` and the named
questions of :mod:`exporters.sparql_questions`."""

from __future__ import annotations

import click

from exporters.commands.common import one_line, tracking_uri_option

QUERY_EXAMPLES = """
\b
Examples:
  mlflow-prov query --experiment training \\
      'SELECT ?run ?name WHERE { ?run a mlflowprov:Run ; rdfs:label ?name }'
  mlflow-prov query --what-used features.csv             # runs that used a dataset
  mlflow-prov query --derived-from 1a2b3c4d... --output json
  mlflow-prov query --who-changed lr --output csv
  mlflow-prov query --file out/training 'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }'
  mlflow-prov query --who-changed lr --show-sparql       # print the question's SPARQL

\b
Prefixes prov:, mlflow:, mlflowprov:, provml:, dcterms:, rdf:, rdfs: and xsd: are declared.
Without --experiment or --file, every experiment of the store is read.
"""

HAS_KEY_CHANGES = "ASK { ?change a mlflowprov:KeyChanges }"
NO_KEY_CHANGES = ("note: this provenance records no key changes: the store has no mlflow-prov "
                  "journal, or the files were exported before mlflow-prov recorded them")


@click.command("query", epilog=QUERY_EXAMPLES)
@tracking_uri_option
@click.argument("sparql", required=False)
@click.option("--experiment", "experiments", multiple=True, metavar="NAME_OR_ID",
              help="Read this experiment of the store (repeatable; default: all).")
@click.option("--file", "files", multiple=True, type=click.Path(), metavar="PATH",
              help="Read exported PROV-O instead of a store: .ttl, .jsonld or .prov.json "
                   "files, or export folders (repeatable).")
@click.option("--what-used", metavar="DATASET",
              help="Runs that used a dataset (name, digest, sha256, URI or runs:/ URI).")
@click.option("--derived-from", metavar="RUN_ID",
              help="Everything derived from a run: runs, models, versions, datasets.")
@click.option("--who-changed", metavar="KEY",
              help="Who wrote or deleted a param, metric or tag key, and when.")
@click.option("--output", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table, CSV or SPARQL 1.1 JSON results.")
@click.option("--show-sparql", is_flag=True,
              help="Print the SPARQL that would run, and read nothing.")
def query_command(tracking_uri: str | None, sparql: str | None, experiments: tuple[str, ...],
                  files: tuple[str, ...], what_used: str | None, derived_from: str | None,
                  who_changed: str | None, output: str, show_sparql: bool) -> None:
    """Answer a SPARQL query (or a named question) over the provenance of a store or of
    exported PROV-O files."""
    from exporters.errors import ExportError

    text = _query_text(sparql, {"what-used": what_used, "derived-from": derived_from,
                                "who-changed": who_changed})
    if show_sparql:
        click.echo(text, nl=not text.endswith("\n"))
        return
    if files and experiments:
        raise click.UsageError("give --file or --experiment, not both: --file reads exported "
                               "files, --experiment a store")
    try:
        from exporters.sparql import render, run_query
        from exporters.sparql_graph import graph_of_files, graph_of_store
    except ImportError as exc:
        raise click.ClickException(f"mlflow-prov query needs pyoxigraph ({exc}); install it "
                                   'with: pip install "mlflow-prov[sparql]"') from exc
    try:
        store = graph_of_files(files) if files else graph_of_store(tracking_uri, experiments)
        answer = render(run_query(store, text), output)
        if who_changed is not None and not bool(run_query(store, HAS_KEY_CHANGES)):
            click.echo(NO_KEY_CHANGES, err=True)
    except ExportError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
    click.echo(answer, nl=not answer.endswith("\n"))


def _query_text(sparql: str | None, asked: dict[str, str | None]) -> str:
    """The SPARQL given, or the one named question asked, bound to its argument."""
    from exporters.sparql_questions import QUESTIONS

    named = {name: value for name, value in asked.items() if value is not None}
    if len(named) + (sparql is not None) != 1:
        options = ", ".join(q.option for q in QUESTIONS.values())
        raise click.UsageError(f"give one SPARQL query or one of {options}")
    if sparql is not None:
        return sparql
    (name, value), = named.items()
    if not value.strip():
        raise click.UsageError(f"{QUESTIONS[name].option} needs a {QUESTIONS[name].takes}, "
                               "not an empty string")
    return QUESTIONS[name].bound(value)
