"""ganzoo._io: atomic writes leave normal permissions (0o666/0o777 less the umask)."""

from __future__ import annotations

import os
import stat

import pytest

from ganzoo._io import atomic_directory, atomic_path, atomic_write_text, current_umask


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_outputs_get_normal_permissions(tmp_path, umask_022):
    assert current_umask() == 0o022
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_path(tmp_path / "b.bin") as tmp:
        assert _mode(tmp) == 0o644  # set on the temporary, before the rename
        tmp.write_bytes(b"y")
    with atomic_directory(tmp_path / "d") as tmp:
        (tmp / "inside.txt").write_text("z")
    assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "b.bin") == 0o644
    assert _mode(tmp_path / "d") == 0o755 and _mode(tmp_path / "d" / "inside.txt") == 0o644


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        assert current_umask() == 0o077
        atomic_write_text(tmp_path / "private.txt", "x")
        with atomic_directory(tmp_path / "private"):
            pass
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private.txt") == 0o600 and _mode(tmp_path / "private") == 0o700
