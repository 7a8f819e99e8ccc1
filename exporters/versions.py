"""Installed package versions, for documents that say which software wrote them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version(name: str) -> str:
    """The installed version of ``name``, or ``"unknown"`` (a source tree never installed)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
