"""Who may read what on the ``/prov/`` routes.

``prov`` serves everyone (:class:`OpenAccess`), as MLflow without auth does. ``prov-auth``
asks MLflow's basic-auth for the user's permission on each experiment
(:class:`ExperimentReadPermissions`): a page or API answer never holds an event, run or
lineage node of an experiment the user could not read through MLflow's own API. MLflow 3's
GenAI objects follow MLflow's own rules for them (:mod:`exporters.app.chain_access`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flask import Flask, Response, g, request

from exporters.compat import (
    authenticate,
    basic_auth_gate,
    can_manage_experiment,
    can_manage_registered_model,
    can_read_dataset,
    can_read_experiment,
    can_read_gateway_secret,
    can_read_prompt,
    can_read_trace,
    is_admin,
)

PROV_PATH = "/prov"


class Permissions(Protocol):
    """The one question every route asks before it shows something."""

    def sees_everything(self) -> bool:
        """True for a user who may read every experiment (no auth, or an admin)."""

    def can_read(self, experiment_id: str | None) -> bool:
        """Whether the current user may read this experiment (``None``: no experiment, as
        for registered models, readable only by those who see everything)."""

    def can_manage(self, experiment_id: str) -> bool:
        """Whether the current user may MANAGE this experiment (seal and unseal its runs)."""

    def can_manage_model(self, name: str) -> bool:
        """Whether the current user may MANAGE this registered model (seal its versions)."""

    def user(self) -> str | None:
        """The signed-in user's name; ``None`` without authentication."""

    def can_read_trace(self, trace_id: str) -> bool | None:
        """Whether the current user may read this trace and its assessments (``None``: a
        trace MLflow no longer has)."""

    def can_read_dataset(self, dataset_id: str) -> bool:
        """Whether the current user may read this evaluation dataset."""

    def can_read_prompt(self, name: str) -> bool:
        """Whether the current user may read this prompt (its versions, aliases, tags)."""

    def can_read_gateway_secret(self, secret_id: str) -> bool:
        """Whether the current user may read this AI-gateway secret's description."""


class OpenAccess:
    """No authentication configured: everything MLflow serves, ``/prov/`` serves."""

    def sees_everything(self) -> bool:
        return True

    def can_read(self, experiment_id: str | None) -> bool:
        return True

    def can_manage(self, experiment_id: str) -> bool:
        return True

    def can_manage_model(self, name: str) -> bool:
        return True

    def user(self) -> str | None:
        return None

    def can_read_trace(self, trace_id: str) -> bool | None:
        return True

    def can_read_dataset(self, dataset_id: str) -> bool:
        return True

    def can_read_prompt(self, name: str) -> bool:
        return True

    def can_read_gateway_secret(self, secret_id: str) -> bool:
        return True


class ExperimentReadPermissions:
    """MLflow basic-auth's own answers: admins read everything, others what their
    experiment permission (or the server's default permission) allows. Answers are kept for
    the rest of the request, so a page of 100 runs asks once per experiment."""

    def _username(self) -> str:
        """The signed-in user: basic-auth authenticated every request that gets here."""
        authorization = request.authorization
        if authorization is None or authorization.username is None:
            raise RuntimeError("a /prov/ request reached the permission check unauthenticated")
        return authorization.username

    def sees_everything(self) -> bool:
        if "prov_is_admin" not in g:
            g.prov_is_admin = is_admin(self._username())
        return g.prov_is_admin

    def can_read(self, experiment_id: str | None) -> bool:
        if self.sees_everything():
            return True
        if experiment_id is None:
            return False
        cache = g.setdefault("prov_can_read", {})
        if experiment_id not in cache:
            cache[experiment_id] = can_read_experiment(str(experiment_id), self._username())
        return cache[experiment_id]

    def can_manage(self, experiment_id: str) -> bool:
        return self.sees_everything() or can_manage_experiment(str(experiment_id),
                                                               self._username())

    def can_manage_model(self, name: str) -> bool:
        return self.sees_everything() or can_manage_registered_model(name)

    def user(self) -> str | None:
        return self._username()

    def can_read_trace(self, trace_id: str) -> bool | None:
        return self.sees_everything() or self._asked("trace", trace_id, can_read_trace)

    def can_read_dataset(self, dataset_id: str) -> bool:
        return self.sees_everything() or bool(self._asked(
            "dataset", dataset_id, lambda key: can_read_dataset(key, self._username())))

    def can_read_prompt(self, name: str) -> bool:
        return self.sees_everything() or bool(self._asked("prompt", name, can_read_prompt))

    def can_read_gateway_secret(self, secret_id: str) -> bool:
        return self.sees_everything() or bool(self._asked("gateway_secret", secret_id,
                                                          can_read_gateway_secret))

    def _asked(self, resource: str, key: str, ask: Callable[[str], bool | None]
               ) -> bool | None:
        """Basic-auth's answer on one resource, asked once per request."""
        cache = g.setdefault("prov_can_read_resource", {})
        if (resource, key) not in cache:
            cache[resource, key] = ask(key)
        return cache[resource, key]


def is_prov_path(path: str) -> bool:
    return path == PROV_PATH or path.startswith(f"{PROV_PATH}/")


def gate_prov_routes(app: Flask) -> None:
    """Let basic-auth authenticate ``/prov/`` requests (unauthenticated: 401) but leave the
    per-experiment decision to the routes, which filter what they show.

    Why: basic-auth decides by exact REST paths and, failing closed, refuses any route it has
    no validator for (403 even for a user allowed to read). Its hook is wrapped, not removed:
    every other path goes through it unchanged.
    """
    basic_auth = basic_auth_gate()
    hooks = app.before_request_funcs.setdefault(None, [])
    position = hooks.index(basic_auth)

    def before_request() -> Response | None:
        if not is_prov_path(request.path):
            return basic_auth()
        authorization = authenticate()
        if isinstance(authorization, Response):
            return authorization
        g.mlflow_authenticated_user = authorization.username
        return None

    hooks[position] = before_request
