"""Writer of BigGAN-PyTorch's weights folder (``ganzoo export`` of a ``biggan`` checkpoint): the
files its ``utils.save_weights`` writes, so that its own code reads them back
(``utils.load_weights``, ``load_state_dict(strict=True)``), and so does ganzoo's reader
(:mod:`ganzoo.architectures.biggan.reader`).

What the folder holds:

* ``G_ema.pth``, ``G.pth``, ``D.pth``: each network's ``state_dict()`` (the roles the checkpoint
  has), the release's tensor names and shapes exactly, as a network built from the release's
  settings holds them (an ``OrderedDict`` with torch's per-module ``_metadata``);
* ``state_dict.pth``: the release's training counters at the values its ``train.py`` starts
  from (``itr`` 0, ``epoch`` 0, ``save_num`` 0, ``save_best_num`` 0, ``best_IS`` 0,
  ``best_FID`` 999999) and ``config``, the constructor settings of G and D under the release's
  names (one dict for both networks, as its ``train.py`` builds them) plus ``G_nl``/``D_nl``,
  the parser's names of the activations, from which its scripts make the activation modules.

No optimizer states (``G_optim.pth``, ``D_optim.pth``): ganzoo's Adam is not the release's
(resuming training with BigGAN-PyTorch needs ``--load_weights`` without the optimizers).
ganzoo-only state is left out: FreezeD's ``freeze_layers`` (frozen layers hold their weights as
buffers of the same names, which become plain parameters again).
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo._build import build_strict
from ganzoo.architectures.biggan.reader import STATE_FILE, WEIGHT_FILES
from ganzoo.errors import GanzooError

__all__ = ["GANZOO_ONLY_KWARGS", "RELEASE_COUNTERS", "release_config", "release_networks", "write_release_folder"]

#: Constructor kwargs of ganzoo's networks that the release's do not have (FreezeD's).
GANZOO_ONLY_KWARGS = ("freeze_layers",)
#: ``state_dict.pth``'s counters, as the release's ``train.py`` starts a run.
RELEASE_COUNTERS = {"itr": 0, "epoch": 0, "save_num": 0, "save_best_num": 0, "best_IS": 0, "best_FID": 999999}
# The parser's name of each network's activation setting.
_NONLINEARITY = {"G_activation": "G_nl", "D_activation": "D_nl"}


def _release_kwargs(net: nn.Module) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in net.init_kwargs.items() if k not in GANZOO_ONLY_KWARGS}


def release_networks(networks: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """``networks`` (role -> network) as the release builds them: the same tensors, without
    ganzoo-only settings (a D frozen by FreezeD becomes a plain D). Built strictly on the CPU:
    a tensor that the release's network lacks, or lacks there, is an error."""
    out = {}
    for role, net in networks.items():
        state = {k: v.detach().to("cpu") for k, v in net.state_dict().items()}
        out[role] = build_strict(type(net), _release_kwargs(net), state, f"export {role}")
    return out


def release_config(networks: dict[str, nn.Module]) -> dict[str, Any]:
    """The release's ``config``: the constructor settings of every network under their release
    names, in one dict, with ``G_nl``/``D_nl``.

    Raises:
        GanzooError: G and D disagree on a setting both read (``resolution``, ``n_classes``,
            ``SN_eps``): the release builds both from one value.
    """
    config: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for role, net in networks.items():
        for key, value in _release_kwargs(net).items():
            if key in config and config[key] != value:
                raise GanzooError(f"export: {owner[key]} and {role} disagree on {key} ({config[key]!r} and {value!r}); "
                                  "BigGAN-PyTorch builds G and D from one config")  # fmt: skip
            config[key], owner[key] = value, role
    for activation, nl in _NONLINEARITY.items():
        if activation in config:
            config[nl] = config[activation]
    return config


def _state_dict(net: nn.Module) -> OrderedDict:
    """``net.state_dict()`` with every tensor a contiguous CPU copy of its own (a view of a larger
    storage would save that whole storage), torch's ``_metadata`` kept."""
    state = net.state_dict()
    out = OrderedDict((k, v.detach().to("cpu").contiguous().clone()) for k, v in state.items())
    out._metadata = copy.deepcopy(getattr(state, "_metadata", OrderedDict()))  # type: ignore[attr-defined]
    return out


def write_release_folder(networks: dict[str, nn.Module], out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Writes ``networks`` (role -> network, G_ema required) as BigGAN-PyTorch's weights folder
    ``out`` (see the module docstring), atomically: complete or not there; an existing ``out``
    is replaced only with ``overwrite``. Returns ``out``."""
    from ganzoo._io import atomic_directory

    plain = release_networks(networks)
    files: dict[str, Any] = {WEIGHT_FILES[role]: _state_dict(net) for role, net in plain.items()}
    files[STATE_FILE] = {**RELEASE_COUNTERS, "config": release_config(plain)}
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        for name, content in files.items():
            with open(tmp / name, "wb") as f:
                # A file object, not the path: torch names the zip records after the file's name.
                torch.save(content, f)
    return out
