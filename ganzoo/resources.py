"""Locates the data folders shipped with ganzoo (``registry/`` and ``cards/``)."""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable


def registry_files() -> Traversable:
    """The registry folder (``registry/`` in a checkout, ``ganzoo/_registry`` in a wheel)."""
    return importlib.resources.files("ganzoo._registry")


def card_files() -> Traversable:
    """The model-card template folder (``cards/`` in a checkout, ``ganzoo/_cards`` in a wheel)."""
    return importlib.resources.files("ganzoo._cards")
