"""Building a network strictly from constructor kwargs and a state dict.

The lowest layer under :mod:`ganzoo.checkpoint`, the readers and the architectures' own helpers
(AdaFM's :meth:`~ganzoo.architectures.stylegan2.adafm.AdaFMGenerator.from_generator`): it knows
torch and nothing of checkpoints, architectures or the Hub, so any of them may use it without an
import cycle.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable

import torch
from torch import nn

from ganzoo.errors import ConversionError

__all__ = ["build_strict", "check_state_dict", "format_names", "network_skeleton"]

_STRUCTURAL = ("_parameters", "_buffers", "_modules")


@functools.lru_cache(maxsize=16)
def _skeleton(cls: type[nn.Module], kwargs_json: str) -> tuple[nn.Module, dict[str, tuple[tuple[int, ...], torch.dtype]]]:
    with torch.device("meta"):
        net = cls(**json.loads(kwargs_json)).eval()  # instances inherit eval mode
    return net, {k: (tuple(v.shape), v.dtype) for k, v in net.state_dict().items()}


def network_skeleton(
    cls: type[nn.Module], init_kwargs: dict, where: str
) -> tuple[nn.Module, dict[str, tuple[tuple[int, ...], torch.dtype]]]:
    """Returns ``cls(**init_kwargs)`` built on the ``meta`` device (no memory, no random init;
    cached) and its expected state dict as name -> (shape, dtype).

    Raises:
        ConversionError: the kwargs do not build a network (names ``where``).
    """
    try:
        return _skeleton(cls, json.dumps(init_kwargs, sort_keys=True))
    except (TypeError, ValueError, KeyError, ZeroDivisionError, RuntimeError) as exc:
        raise ConversionError(f"{where}: constructor kwargs do not build a {cls.__name__}: {exc}") from None


def format_names(names: Iterable[str], limit: int = 20) -> str:
    """Joins names for a one-line error message, eliding the tail of long lists."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", … (+{len(names) - limit} more)"


def check_state_dict(state_dict: dict[str, torch.Tensor], expected: dict[str, tuple], where: str) -> None:
    """Raises unless ``state_dict`` has exactly the expected tensor names and shapes.

    Args:
        state_dict: tensor name -> tensor.
        expected: tensor name -> shape, or -> (shape, dtype) as :func:`network_skeleton` gives.
        where: the file (and network) named in the message.

    Raises:
        ConversionError: naming every missing, unexpected and mis-shaped tensor.
    """
    shapes = {k: tuple(v[0] if v and isinstance(v[0], tuple) else v) for k, v in expected.items()}
    missing = [name for name in shapes if name not in state_dict]
    unexpected = [name for name in state_dict if name not in shapes]
    wrong = [
        f"{name} {list(state_dict[name].shape)} (expected {list(shape)})"
        for name, shape in shapes.items()
        if name in state_dict and tuple(state_dict[name].shape) != shape
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors: {format_names(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {format_names(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {format_names(wrong)}")
    if problems:
        raise ConversionError(f"{where}: " + "; ".join(problems))


def _instantiate(skeleton: nn.Module, state: dict[str, torch.Tensor], prefix: str = "") -> nn.Module:
    """Returns a new module shaped like ``skeleton`` whose parameters and buffers are the tensors
    of ``state`` (assigned, not copied).

    Equivalent to ``copy.deepcopy(skeleton).load_state_dict(state, assign=True)`` for these
    hook-free networks, but it never materializes the skeleton's meta tensors, which makes
    loading a 256² GAN several times faster. Plain containers (hook dicts, ``init_kwargs``) are
    copied so instances never share mutable state.
    """
    module = object.__new__(type(skeleton))
    attrs = {}
    for key, value in skeleton.__dict__.items():
        if key == "init_kwargs":
            attrs[key] = copy.deepcopy(value)
        elif key not in _STRUCTURAL:
            # Hook registries and small lists: fresh containers (the C constructors are fast;
            # the skeleton's hook registries are empty).
            attrs[key] = type(value)(value) if isinstance(value, (dict, set, list)) else value
    attrs["_parameters"] = {
        name: None if p is None else nn.Parameter(state[prefix + name], requires_grad=False)
        for name, p in skeleton._parameters.items()
    }
    attrs["_buffers"] = {name: None if b is None else state[prefix + name] for name, b in skeleton._buffers.items()}
    attrs["_modules"] = {
        name: None if m is None else _instantiate(m, state, prefix + name + ".") for name, m in skeleton._modules.items()
    }
    module.__dict__.update(attrs)
    return module


def build_strict(
    cls: type[nn.Module], init_kwargs: dict, state_dict: dict[str, torch.Tensor], what: str
) -> nn.Module:
    """Builds ``cls(**init_kwargs)`` holding exactly the tensors of ``state_dict`` (strictly).

    Args:
        cls: the network class (an architecture's ``network_class(role)``).
        init_kwargs: constructor kwargs.
        state_dict: tensor name -> tensor; tensors are used as they are (not copied) when they
            already have the network's dtype.
        what: names the source in error messages (a file path, usually).

    Returns:
        The network in eval mode, with ``requires_grad=False`` everywhere.

    Raises:
        ConversionError: the kwargs are invalid, or tensors are missing, unexpected or mis-shaped
            (all of them are listed).
    """
    skeleton, expected = network_skeleton(cls, init_kwargs, what)
    check_state_dict(state_dict, expected, what)
    state = {}
    for k, v in state_dict.items():
        dtype = expected[k][1]
        v = v.detach()
        state[k] = v if v.dtype == dtype and v.device.type == "cpu" else v.to(device="cpu", dtype=dtype)
    return _instantiate(skeleton, state)
