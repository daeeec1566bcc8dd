"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The reference fixtures folder, ``../shared/fixtures`` beside the project root."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
    if not path.is_dir():
        pytest.fail(f"reference fixtures not found at {path} (they are required, not optional)")
    return path
