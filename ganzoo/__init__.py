"""ganzoo: a model zoo and checkpoint hub for pretrained GANs.

The public API::

    gan = ganzoo.load("imagenet-stylegan2-256")   # registry name, alias, Hub repo id, dir or file
    images = gan.sample(seeds=range(16), truncation_psi=0.7)   # uint8 [N, H, W, C]
    ganzoo.list_models("ffhq*")
    ganzoo.pull("afhqcat-stylegan2-512")           # -> local checkpoint directory
    ganzoo.push("my-checkpoint", "me/my-gan")
    ganzoo.convert("network-snapshot.pkl", "my-checkpoint")
    ganzoo.finetune("afhqcat-stylegan2-512", data="./mycats", recipe="freezed", kimg=200, out="runs/cats")
    ganzoo.rank("./mydata", candidates="all")    # which source checkpoint to finetune from
    ganzoo.merge(["afhqcat-stylegan2-512", "afhqdog-stylegan2-512"], "catdog")   # GAN Cocktail

Names are resolved lazily (PEP 562): ``import ganzoo`` does not import torch, so the registry
commands (``ganzoo list``, ``ganzoo info``) start fast. Everything else loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from ganzoo.errors import (  # noqa: E402  (no torch: safe to import eagerly)
    ChecksumMismatchError,
    CheckpointError,
    ConversionError,
    DatasetError,
    DownloadError,
    GanzooError,
    RegistryError,
    UnknownModelError,
    UnsafeCheckpointError,
)

# Public name -> module that defines it; imported on first attribute access.
_LAZY = {
    "FinetuneOptions": "ganzoo.train.options",
    "GAN": "ganzoo.publish",  # re-exported there, with its Hub methods' functions registered
    "convert": "ganzoo.api",
    "export": "ganzoo.api",
    "finetune": "ganzoo.train.runner",
    "load": "ganzoo.api",
    "list_models": "ganzoo.registry",
    "merge": "ganzoo.cocktail",
    "pull": "ganzoo.hub",
    "push": "ganzoo.publish",
    "rank": "ganzoo.ranking",
}

# Subpackages and modules reachable as attributes after a bare ``import ganzoo`` (the README's
# ``ganzoo.synth.render(...)``, ``ganzoo.playground.reproduce(...)``), imported on first access.
# No module is named after a public function (``convert``, ``merge``, ``rank`` live in
# ``api``, ``cocktail``, ``ranking``), so importing one never shadows a function.
_SUBMODULES = (
    "analysis",
    "architectures",
    "checkpoint",
    "cocktail",
    "conversion",
    "data",
    "hub",
    "images",
    "metrics",
    "modelcard",
    "ops",
    "playground",
    "publish",
    "ranking",
    "readers",
    "registry",
    "starter",
    "synth",
    "train",
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    # Submodules, as redundant aliases: explicit re-exports for type checkers (and linters).
    from ganzoo import analysis as analysis, architectures as architectures, checkpoint as checkpoint
    from ganzoo import cocktail as cocktail, conversion as conversion, data as data, hub as hub, images as images, metrics as metrics
    from ganzoo import modelcard as modelcard, ops as ops, playground as playground, publish as publish
    from ganzoo import ranking as ranking, readers as readers, registry as registry, starter as starter
    from ganzoo import synth as synth, train as train
    from ganzoo.api import convert, export, load
    from ganzoo.checkpoint import GAN
    from ganzoo.train.options import FinetuneOptions
    from ganzoo.hub import pull
    from ganzoo.publish import push
    from ganzoo.cocktail import merge
    from ganzoo.train.runner import finetune
    from ganzoo.ranking import rank
    from ganzoo.registry import list_models


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        if name in _SUBMODULES:
            return importlib.import_module(f"ganzoo.{name}")  # the import binds it on the package
        raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    # Bind every public name of that module at once, so later accesses skip this function.
    for public, where in _LAZY.items():
        if where == module_name:
            globals()[public] = getattr(module, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = [
    "FinetuneOptions",
    "GAN",
    "CheckpointError",
    "ChecksumMismatchError",
    "ConversionError",
    "DatasetError",
    "DownloadError",
    "GanzooError",
    "RegistryError",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "__version__",
    "convert",
    "export",
    "finetune",
    "list_models",
    "load",
    "merge",
    "pull",
    "push",
    "rank",
]
