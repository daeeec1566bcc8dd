"""Whether the Hub endpoint answers: asked once per process and endpoint.

huggingface_hub retries a metadata request that fails at the connection level five times with
backoff (1+2+4+8+8 s) before it looks in its cache, for every file: with no network, ranking
over the registry took minutes. So ganzoo asks the endpoint itself, once, with no retries,
before its first Hub call; when nothing answers, every later call in the process uses the
local caches only (``local_files_only``), exactly as with HF_HUB_OFFLINE=1, and one note says so.
Commands that will need the answer start the question early (:func:`start_hub_check`), so a
timeout runs while they load.

What was learned lives in one :class:`Reachability` object for the process;
:func:`forget_reachability` clears it (tests call it before each test).
"""

from __future__ import annotations

import contextlib
import threading

from ganzoo.download import root_cause
from ganzoo.hub.settings import hub_endpoint, hub_offline, probe_timeout

_GATEWAY_DOWN = (502, 503, 504)  # a proxy or gateway with nothing reachable behind it


class Reachability:
    """What this process learned about Hub endpoints, behind one lock.

    Attributes:
        answers: endpoint -> None (it answered) or why it did not.
        checks: endpoint -> the thread asking it.
        noted: endpoints whose note was printed.
        generation: bumped by :meth:`forget`; answers of older checks are dropped.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: dict[str, str | None] = {}
        self.checks: dict[str, threading.Thread] = {}
        self.noted: set[str] = set()
        self.generation = 0

    def start(self, endpoint: str) -> threading.Thread | None:
        """The thread asking ``endpoint`` (started now if needed), or None when the answer is known."""
        with self.lock:
            if endpoint in self.answers:
                return None
            thread = self.checks.get(endpoint)
            if thread is None:
                thread = threading.Thread(target=self._run, args=(endpoint, self.generation), daemon=True,
                                          name="ganzoo-hub-check")  # fmt: skip
                self.checks[endpoint] = thread
                thread.start()
            return thread

    def answer(self, endpoint: str) -> str | None:
        """Why ``endpoint`` cannot be reached, or None; waits for its check, and prints the note
        the first time an unreachable endpoint's answer is used."""
        thread = self.start(endpoint)
        if thread is not None:
            thread.join()
        with self.lock:
            why = self.answers.get(endpoint)
            if why is not None and endpoint not in self.noted:
                self.noted.add(endpoint)
                _went_offline(endpoint, why)
        return why

    def learn(self, endpoint: str, why: str) -> None:
        """Records that ``endpoint`` failed at the connection level (one note)."""
        with self.lock:
            if self.answers.get(endpoint) is None:
                self.answers[endpoint] = why
            if endpoint not in self.noted:
                self.noted.add(endpoint)
                _went_offline(endpoint, self.answers[endpoint])

    def forget(self) -> None:
        """Forgets every answer, check and note; checks still running are ignored when they end."""
        with self.lock:
            self.generation += 1
            self.answers.clear()
            self.checks.clear()
            self.noted.clear()

    def _run(self, endpoint: str, generation: int) -> None:
        why = _probe(endpoint)
        with self.lock:
            if generation == self.generation:
                self.answers.setdefault(endpoint, why)


_STATE = Reachability()  # the process's


def start_hub_check() -> None:
    """Starts asking the Hub endpoint whether it answers, in a background thread, unless that
    is known or HF_HUB_OFFLINE is set; :func:`hub_unreachable` waits for the answer."""
    if not hub_offline():
        _STATE.start(hub_endpoint())


def hub_unreachable() -> str | None:
    """Why the Hub endpoint cannot be reached, or None when it answers (or HF_HUB_OFFLINE is set).

    The first call for an endpoint (or :func:`start_hub_check`) sends one ``HEAD ENDPOINT/``
    through huggingface_hub's HTTP client (its proxies, certificates and client factory), without
    retries, waiting at most ``HF_HUB_ETAG_TIMEOUT`` seconds (default 2). Any HTTP answer counts
    as reachable except 502/503/504; a DNS failure, a refused connection, a timeout or a dropped
    connection does not. The answer is kept for the rest of the process; an unreachable endpoint
    gets one note on stderr, the first time the answer is used.
    """
    if hub_offline():
        return None
    return _STATE.answer(hub_endpoint())


def hub_local_only() -> bool:
    """True when Hub calls must use only the local caches: HF_HUB_OFFLINE=1, or the endpoint
    did not answer (:func:`hub_unreachable`; asks it on the first call of the process)."""
    return hub_offline() or hub_unreachable() is not None


def learn_unreachable(endpoint: str, why: str) -> None:
    """Records that a Hub call failed at the connection level after the endpoint had answered:
    the rest of the process uses the local caches only (one note)."""
    _STATE.learn(endpoint, why)


def forget_reachability() -> None:
    """Forgets what was learned about every endpoint (the next Hub call asks again). The test
    suite calls it before every test: a loopback port found dead in one test may serve in the next."""
    _STATE.forget()


def transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error classes of the HTTP clients huggingface_hub may use: requests' are
    OSErrors, but httpx's and httpx2's (huggingface_hub 1.x and 2.x) are not."""
    import importlib

    classes = []
    for module in ("httpx2", "httpx"):
        try:
            classes.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(classes)


def _probe(endpoint: str) -> str | None:
    from huggingface_hub import get_session

    timeout = probe_timeout()
    try:
        response = get_session().head(endpoint + "/", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - no answer at all, whatever the client's exception classes
        if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
            return f"no answer within {timeout:g} s; HF_HUB_ETAG_TIMEOUT=SECONDS waits longer"
        return root_cause(exc)
    if response.status_code in _GATEWAY_DOWN:
        return f"HTTP {response.status_code}"
    return None


def _went_offline(endpoint: str, why: str) -> None:
    import sys

    # huggingface_hub's telemetry (its user-agent's agent detection) would ask the dead endpoint too.
    with contextlib.suppress(Exception):
        from huggingface_hub import constants as hf_constants

        hf_constants.HF_HUB_DISABLE_TELEMETRY = True
    print(f"note: {endpoint} unreachable ({why}): going on offline, with the local caches only "
          "(HF_HUB_OFFLINE=1 skips this check)", file=sys.stderr, flush=True)  # fmt: skip
