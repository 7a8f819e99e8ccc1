"""The seal decision (:func:`mlflow_prov.seals.refusal`): which registry events change a
sealed version, from the head's seal record alone."""

from __future__ import annotations

import json

import pytest

from mlflow_prov.seals import refusal
from mlflow_prov.vocabulary import EventKind as K

RECORD = {"who": {"user": "ada", "host": "lab"}, "when": "2026-01-31T12:00:00Z",
          "why": "approved", "target": "models:/churn/3", "stage": "Production",
          "aliases": ["champion"]}
MODEL = json.dumps({"versions": {"3": RECORD}})
RUN = json.dumps({**RECORD, "target": "runs:/abc"})


@pytest.mark.parametrize(("kind", "payload"), [
    (K.MODEL_VERSION_TAG_SET, {"version": 3, "key": "k", "value": "v"}),
    (K.MODEL_VERSION_UPDATED, {"version": "3", "description": "d"}),
    (K.MODEL_VERSION_DELETED, {"version": 3}),
    (K.REGISTERED_MODEL_ALIAS_SET, {"alias": "new", "version": 3}),
    (K.REGISTERED_MODEL_ALIAS_SET, {"alias": "champion", "version": 4}),  # moves it away
    (K.REGISTERED_MODEL_ALIAS_DELETED, {"alias": "champion"}),
    (K.MODEL_VERSION_STAGE_TRANSITIONED,
     {"version": 4, "stage": "production", "archive_existing_versions": True}),
    (K.REGISTERED_MODEL_RENAMED, {"new_name": "other"}),
    (K.REGISTERED_MODEL_DELETED, {}),
])
def test_writes_that_change_a_sealed_version_are_refused_naming_the_seal(kind, payload):
    found = refusal(MODEL, "model:churn", kind, {"name": "churn", **payload})
    assert found is not None
    sentence, record, version = found
    assert version == 3 and record == RECORD
    assert sentence.startswith("models:/churn/3 is sealed (ada@lab sealed it at "
                               "2026-01-31T12:00:00Z: 'approved')")
    assert sentence.endswith("mlflow-prov unseal models:/churn/3 --reason TEXT.")


@pytest.mark.parametrize(("kind", "payload"), [
    (K.MODEL_VERSION_TAG_SET, {"version": 4, "key": "k", "value": "v"}),
    (K.MODEL_VERSION_CREATED, {"version": 3}),
    (K.REGISTERED_MODEL_ALIAS_SET, {"alias": "challenger", "version": 4}),
    (K.REGISTERED_MODEL_ALIAS_DELETED, {"alias": "challenger"}),
    (K.MODEL_VERSION_STAGE_TRANSITIONED,
     {"version": 4, "stage": "Staging", "archive_existing_versions": True}),
    (K.MODEL_VERSION_STAGE_TRANSITIONED,
     {"version": 4, "stage": "Production", "archive_existing_versions": False}),
    (K.REGISTERED_MODEL_TAG_SET, {"key": "k", "value": "v"}),
    (K.REGISTERED_MODEL_UPDATED, {"description": "d"}),
    (K.MODEL_VERSION_UNSEALED, {"version": 3}),
    (K.MODEL_VERSION_WRITE_REFUSED, {"version": 3}),
])
def test_writes_that_leave_sealed_versions_alone_go_through(kind, payload):
    assert refusal(MODEL, "model:churn", kind, {"name": "churn", **payload}) is None


def test_a_sealed_run_refuses_every_write_but_its_own_seal_events():
    assert refusal(RUN, "run:abc", K.RUN_TAGS_SET, {"tags": {"k": "v"}}) is not None
    assert refusal(RUN, "run:abc", "run.some_future_kind", {}) is not None
    for kind in (K.RUN_UNSEALED, K.RUN_WRITE_REFUSED, K.RUN_SEALED):
        assert refusal(RUN, "run:abc", kind, {}) is None


def test_a_run_sealed_with_its_experiment_names_the_experiment_to_unseal():
    held = json.dumps({**RECORD, "target": "runs:/abc", "by": "experiments:/7"})
    sentence = refusal(held, "run:abc", K.RUN_DELETED, {})[0]
    assert sentence.startswith("runs:/abc is sealed")
    assert "mlflow-prov unseal experiments:/7 --reason" in sentence
