"""The named questions of ``mlflow-prov query``: SPARQL kept as text, shown by
``--show-sparql`` exactly as it runs.

Each query reads the PROV-O that :mod:`exporters.prov_model` builds, in either of the forms
prov writes it: a relation without attributes as its plain property (``prov:used``), one
with a time or type as its qualified form (``prov:qualifiedUsage/prov:entity``); PROV-JSON-LD
writes every relation qualified. So every step is written ``plain|qualified/…``.

What the user names is bound as ``?needle`` by a ``VALUES`` clause placed first in the
query's group, where every ``FILTER`` of that group sees it (a trailing ``VALUES`` joins
after the filters ran, and they would see ``?needle`` unbound).
"""

from __future__ import annotations

from dataclasses import dataclass

USED = "(prov:used|prov:qualifiedUsage/prov:entity)"
GENERATED_BY = "(prov:wasGeneratedBy|prov:qualifiedGeneration/prov:activity)"
DERIVED_FROM = "(prov:wasDerivedFrom|prov:qualifiedDerivation/prov:entity)"
INFORMED_BY = "(prov:wasInformedBy|prov:qualifiedCommunication/prov:activity)"
REVISION_OF = "(prov:wasRevisionOf|prov:qualifiedRevision/prov:entity)"
ASSOCIATED_WITH = "(prov:wasAssociatedWith|prov:qualifiedAssociation/prov:agent)"
# a dataset with the same digest: the same bytes, one lineage node (exporters/lineage/keys.py)
SAME_DIGEST = "(mlflowprov:digest/^mlflowprov:digest)"
NEEDLE = "{{NEEDLE}}"
# what a SPARQL string literal cannot hold as it is (SPARQL 1.1, "ECHAR")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r",
                          "\t": "\\t", "\b": "\\b", "\f": "\\f"})

WHAT_USED = f"""# Runs that used a dataset, named by its name, digest (or the start of
# it, sha256: in front allowed), the sha256 of the file, its URI, or the runs:/<run_id>/<path>
# of the artifact it was made from. Datasets with one digest are one dataset (the same bytes
# under another name), as in mlflow-prov lineage.
# A run uses a dataset itself or through its context activity (training, evaluation...).
SELECT DISTINCT ?runId ?runName ?context ?usedLabel ?digest ?used ?run WHERE {{
  VALUES ?needle {{ {NEEDLE} }}
  ?user {USED} ?used .
  ?used {DERIVED_FROM}? ?data .
  ?data {SAME_DIGEST}? ?named .
  OPTIONAL {{ ?named mlflowprov:digest ?dataDigest }}
  OPTIONAL {{ ?named mlflowprov:name ?dataName }}
  OPTIONAL {{ ?named mlflowprov:sha256 ?sha256 }}
  OPTIONAL {{ ?named prov:atLocation ?location }}
  OPTIONAL {{ ?named mlflowprov:source ?source }}
  BIND(STRAFTER(?needle, "runs:/") AS ?runsPath)
  BIND(IF(STRSTARTS(?needle, "sha256:"), STRAFTER(?needle, "sha256:"), ?needle) AS ?bare)
  FILTER(STRSTARTS(?dataDigest, ?bare) || ?dataName = ?needle
         || ?needle IN (?sha256, CONCAT("sha256:", ?sha256)) || STR(?location) = ?needle
         || CONTAINS(?source, CONCAT("\\"", ?needle, "\\""))
         || ?named = IRI(CONCAT(STR(mlflow:), "run.", STRBEFORE(?runsPath, "/"), ".artifact.",
                                ENCODE_FOR_URI(STRAFTER(?runsPath, "/")))))
  # the dataset itself, or a dataset made from the file named (not a model made from it)
  FILTER(?used = ?data || EXISTS {{ ?used a provml:Dataset }})
  {{ ?user a mlflowprov:Run . BIND(?user AS ?run) }}
  UNION
  {{ ?user a provml:Context ; {INFORMED_BY} ?run ; mlflowprov:context ?context .
    ?run a mlflowprov:Run }}
  ?run mlflowprov:runId ?runId .
  OPTIONAL {{ ?run rdfs:label ?runName }}
  OPTIONAL {{ ?used rdfs:label ?usedLabel }}
  OPTIONAL {{ ?used mlflowprov:digest ?digest }}
}}
ORDER BY ?runId ?usedLabel
"""

# One step downstream, from a run or anything made from it:
#   activity -> what it generated;  entity -> what was derived from it;
#   entity -> the activity that used it;  activity -> activities it informed (a consumer
#   of its outputs, a child run, the run's contexts);  a derived entity -> the run that
#   generated it (a run's outputs derive only from what it used, so that run is downstream).
DOWNSTREAM_STEP = f"^{GENERATED_BY}|^{DERIVED_FROM}|^{USED}|^{INFORMED_BY}|{GENERATED_BY}"

DERIVED_FROM_RUN = f"""# Everything derived from a run, transitively: runs that used its outputs
# (and theirs), its child runs, logged models, registered model versions (and their later versions),
# and datasets made from its artifacts.
SELECT DISTINCT ?kind ?id ?label ?thing WHERE {{
  VALUES ?needle {{ {NEEDLE} }}
  ?root a mlflowprov:Run ; mlflowprov:runId ?needle .
  ?root ({DOWNSTREAM_STEP})+ ?reached .
  # a later version of a registered model version is downstream too
  ?thing {REVISION_OF}* ?reached .
  FILTER(?thing = ?reached || EXISTS {{ ?reached a mlflowprov:ModelVersion }})
  FILTER(?thing != ?root)
  ?thing a ?type .
  VALUES (?type ?kind) {{
    (mlflowprov:Run "run") (provml:Model "model")
    (mlflowprov:ModelVersion "version") (provml:Dataset "dataset")
  }}
  OPTIONAL {{ ?thing rdfs:label ?label }}
  OPTIONAL {{ ?thing mlflowprov:runId|mlflowprov:modelId|mlflowprov:digest ?plainId }}
  OPTIONAL {{ ?thing a mlflowprov:ModelVersion ; mlflowprov:name ?name ;
                     mlflowprov:version ?version }}
  BIND(COALESCE(?plainId, CONCAT(?name, "/", STR(?version))) AS ?id)
}}
ORDER BY ?kind ?id ?label
"""

WHO_CHANGED = f"""# Which writers (user, host, process, rank, client address) wrote or deleted
# a param, metric or tag key, in which run, first and last time, and how many journal events.
SELECT ?keyKind ?runId ?runName ?first ?last ?events ?user ?host ?pid ?rank ?clientAddress
WHERE {{
  VALUES ?needle {{ {NEEDLE} }}
  ?change a mlflowprov:KeyChanges ; mlflowprov:key ?needle ; mlflowprov:keyKind ?keyKind ;
          mlflowprov:eventCount ?events ; prov:startedAtTime ?first ;
          prov:endedAtTime ?last ; {ASSOCIATED_WITH} ?writer ; {INFORMED_BY} ?run .
  ?run a mlflowprov:Run ; mlflowprov:runId ?runId .
  OPTIONAL {{ ?run rdfs:label ?runName }}
  OPTIONAL {{ ?writer mlflowprov:user ?user }}
  OPTIONAL {{ ?writer mlflowprov:host ?host }}
  OPTIONAL {{ ?writer mlflowprov:pid ?pid }}
  OPTIONAL {{ ?writer mlflowprov:rank ?rank }}
  OPTIONAL {{ ?writer mlflowprov:clientAddress ?clientAddress }}
}}
ORDER BY ?first ?runId
"""


@dataclass(frozen=True)
class Question:
    """A named question: its option, what it takes, and its SPARQL with ``{{NEEDLE}}``."""

    option: str
    takes: str
    sparql: str

    def bound(self, needle: str) -> str:
        """The query with ``needle`` as a SPARQL string literal; needs no RDF library, so
        ``--show-sparql`` works where pyoxigraph is not installed."""
        return self.sparql.replace(NEEDLE, f'"{needle.translate(_ESCAPES)}"')


QUESTIONS: dict[str, Question] = {
    "what-used": Question("--what-used", "DATASET", WHAT_USED),
    "derived-from": Question("--derived-from", "RUN_ID", DERIVED_FROM_RUN),
    "who-changed": Question("--who-changed", "KEY", WHO_CHANGED),
}
