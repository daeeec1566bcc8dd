"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The reference fixtures folder (``helpers.fixtures_dir``: ``$GANZOO_FIXTURES`` or
    ``../shared/fixtures``); fails, never skips, when it is missing."""
    from helpers import fixtures_dir

    return fixtures_dir()


@pytest.fixture(scope="session")
def device() -> str:
    """Where device-aware tests run: ``$GANZOO_TEST_DEVICE`` (e.g. ``cuda``), default ``cpu``."""
    import os

    return os.environ.get("GANZOO_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module: tiny models gain nothing from threads, and the test
    machine's cores are shared (``pytestmark = pytest.mark.usefixtures("one_thread")``).
    ``$GANZOO_TEST_THREADS`` overrides the 1 (``helpers.threads_for_tests``)."""
    import torch
    from helpers import threads_for_tests

    threads = torch.get_num_threads()
    torch.set_num_threads(threads_for_tests())
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _thread_setting():
    """torch's thread count for the whole run: 1 (tiny models gain nothing from threads; the
    suite has always run so), or ``$GANZOO_TEST_THREADS`` when set. The commands the tests run,
    in this process or as the console script, take the same count through ``GANZOO_THREADS``
    (the suite ran faster so than with each command choosing its own, which also
    costs each a tenth-of-a-second look at the idle cores); tests of that choice set their own."""
    import os

    import torch
    from helpers import threads_for_tests

    torch.set_num_threads(threads_for_tests())
    os.environ.setdefault("GANZOO_THREADS", str(threads_for_tests()))
    yield


@pytest.fixture(autouse=True)
def _threads_restored():
    """A command run in this process (``main([...])``) sets torch's thread count for itself
    (``--threads``, ``GANZOO_THREADS`` or the idle cores); the next test gets the run's again."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` nothing skips: a skip (a missing browser, inductor, tensorboard, ...)
    is reported as a failure that names what was missing, so a green CI means every test ran."""
    from helpers import in_ci

    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"


@pytest.fixture(autouse=True)
def _fresh_hub_reachability():
    """ganzoo asks a Hub endpoint whether it answers once per process; each test asks anew
    (a loopback port found dead in one test may serve a mirror in the next)."""
    import sys

    reachability = sys.modules.get("ganzoo.hub.reachability")
    if reachability is not None:
        reachability.forget_reachability()


@pytest.fixture(autouse=True)
def _isolated_ganzoo_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own ganzoo cache (verified-file records, ...), never the user's."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path_factory.mktemp("ganzoo-cache")))
