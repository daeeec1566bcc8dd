"""Locates the data folders shipped with ganzoo (``registry/`` and ``cards/``), and tells how
much memory this machine has (for the checks that refuse absurd sizes before any work)."""

from __future__ import annotations

import importlib.resources
import os
from importlib.resources.abc import Traversable


def machine_memory() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def registry_files() -> Traversable:
    """The registry folder (``registry/`` in a checkout, ``ganzoo/_registry`` in a wheel)."""
    return importlib.resources.files("ganzoo._registry")


def card_files() -> Traversable:
    """The model-card template folder (``cards/`` in a checkout, ``ganzoo/_cards`` in a wheel)."""
    return importlib.resources.files("ganzoo._cards")
