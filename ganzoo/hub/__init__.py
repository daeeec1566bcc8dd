"""Pull and push ganzoo checkpoints through the Hugging Face Hub; upstream fallback; mirrors; cards.

Pull order for a registry name (``ganzoo pull afhqcat-stylegan2-512``):

1. a checkpoint already converted into ganzoo's own cache (by an earlier upstream fallback or by
   ``ganzoo convert FILE --as NAME``), verified against its ``config.json``;
2. the entry's Hub repo, through ``huggingface_hub.snapshot_download`` (standard HF cache,
   ``HF_TOKEN``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``), every weight file verified against the
   sha256 in ``config.json`` (and in the registry, where recorded);
3. when the Hub repo is missing or unreachable: the entry's upstream artifact, downloaded
   (resumable, size and sha256 checked) and converted safely into ganzoo's cache.

A Hub repo id (``org/name``) works for any repo in the ganzoo layout. ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, ``HF_HOME``/``HF_HUB_CACHE`` and ``GANZOO_CACHE`` are read at call time, so
they can change within one process.

A mirror (``ganzoo mirror NAME... --to DIR``) writes checkpoints as plain git repositories at
``DIR/models/ORG/NAME``: the layout a self-hosted Hub mirror such as olah serves from its
``mirrors-path``, so ``HF_ENDPOINT=http://mirror ganzoo pull ORG/NAME`` works unchanged.

A push commits an :class:`Upload` that its caller prepared (:mod:`ganzoo.publish` makes one from
a checkpoint directory): the files, the uploaded ``config.json`` and the card's extra sections.
This package folds no architecture's networks and computes no statistics.

Modules, lowest first: :mod:`~ganzoo.hub.settings` (the one reader of the environment),
:mod:`~ganzoo.hub.reachability` (whether the endpoint answers, asked once per process),
:mod:`~ganzoo.hub.cache` (file layout, converted checkpoints, sha256 checks),
:mod:`~ganzoo.hub.converting` (a foreign file into the cache, with its card),
:mod:`~ganzoo.hub.pulling` (pull and the upstream fallback), :mod:`~ganzoo.hub.mirroring`,
:mod:`~ganzoo.hub.samples` (the card's sample grid) and :mod:`~ganzoo.hub.pushing`. No module is
named after a function (``pull``, ``push``, ``mirror``), so ``ganzoo.hub.pull`` is the function.
"""

from __future__ import annotations

from ganzoo.download import direct_download_url, download_url
from ganzoo.hub.cache import converted_dir, verify_files
from ganzoo.hub.converting import register_converted
from ganzoo.hub.mirroring import mirror
from ganzoo.hub.pulling import PullResult, pull, pull_checkpoint, resolve
from ganzoo.hub.pushing import Upload, check_push_target, lfs_uploads_for, push, takes_xet_uploads
from ganzoo.hub.samples import gan_samples_png, samples_png
from ganzoo.hub.settings import ganzoo_cache_dir, hub_cache_dir, hub_endpoint
from ganzoo.modelcard import entry_card, render_card

# Names ganzoo.hub has always offered beyond __all__, as redundant aliases (explicit re-exports).
from ganzoo._io import sha256_file as sha256_file
from ganzoo.hub.cache import CARD_NAME as CARD_NAME, CONFIG_NAME as CONFIG_NAME, GENERATOR_FILE as GENERATOR_FILE
from ganzoo.hub.cache import PULL_PATTERNS as PULL_PATTERNS, SAMPLES_NAME as SAMPLES_NAME
from ganzoo.hub.cache import expected_digests as expected_digests
from ganzoo.hub.reachability import forget_reachability as forget_reachability, hub_local_only as hub_local_only
from ganzoo.hub.reachability import hub_unreachable as hub_unreachable, learn_unreachable as learn_unreachable
from ganzoo.hub.reachability import start_hub_check as start_hub_check
from ganzoo.hub.settings import DEFAULT_ENDPOINT as DEFAULT_ENDPOINT, PROBE_TIMEOUT as PROBE_TIMEOUT
from ganzoo.hub.settings import hub_offline as hub_offline

__all__ = [
    "PullResult",
    "Upload",
    "check_push_target",
    "converted_dir",
    "direct_download_url",
    "download_url",
    "entry_card",
    "gan_samples_png",
    "ganzoo_cache_dir",
    "hub_cache_dir",
    "hub_endpoint",
    "lfs_uploads_for",
    "mirror",
    "pull",
    "pull_checkpoint",
    "push",
    "register_converted",
    "render_card",
    "resolve",
    "samples_png",
    "takes_xet_uploads",
    "verify_files",
]
