"""Every private MLflow/codecarbon internal capture relies on is still what it assumes.

When an upgrade breaks one, this test fails with the library, its version and the internal
(see mlflow_prov/compat.py), before any store write or monitoring thread does.
"""

from __future__ import annotations

import pytest

from exporters import compat as export_compat
from mlflow_prov import compat


@pytest.mark.parametrize("contract", compat.CONTRACTS, ids=lambda c: c.relies_on)
def test_every_internal_capture_relies_on_is_still_there(contract: compat.Contract) -> None:
    contract.verify()


def test_a_changed_internal_is_reported_with_library_version_and_name() -> None:
    def gone() -> None:
        from mlflow.store.db import utils

        utils._no_such_session_maker  # noqa: B018  (an internal MLflow removed)

    broken = compat.Contract("mlflow", "mlflow.store.db.utils._no_such_session_maker", gone)
    with pytest.raises(compat.CompatError) as raised:
        broken.verify()
    message = str(raised.value)
    assert message.startswith(f"mlflow {compat.library_version('mlflow')}: ")
    assert "mlflow.store.db.utils._no_such_session_maker changed" in message
    assert "mlflow_prov/compat.py" in message


def test_every_private_store_method_the_hooks_use_is_under_contract() -> None:
    from mlflow_prov.events import JOURNALED_THROUGH, TRACKING_HOOKS

    private = {name for name in TRACKING_HOOKS if name.startswith("_")}
    private |= {name for names in JOURNALED_THROUGH.values() for name in names
                if name.startswith("_")}
    assert private == set(compat.PRIVATE_WRITE_METHODS)


@pytest.mark.parametrize("contract", export_compat.CONTRACTS, ids=lambda c: c.relies_on)
def test_every_internal_the_export_relies_on_is_still_there(contract: compat.Contract) -> None:
    contract.verify()
