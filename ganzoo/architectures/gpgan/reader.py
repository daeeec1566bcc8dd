"""Reader of GAN_stability checkpoints (format ``"gan-stability-pt"``).

``CheckpointIO.save`` of LMescheder/GAN_stability writes one ``torch.save`` file: a dict of the
state dicts of the registered modules (``generator``, ``discriminator``, ``generator_test`` when
the parameter average is kept, ``g_optimizer``, ``d_optimizer``) beside the keyword values it
was given (``it``, the iteration). The networks were wrapped in ``nn.DataParallel``, so every
tensor name starts with ``module.``. The 2018 releases use torch's legacy (pre-1.6, non-zip)
serialization; files written since are zip archives. Both are read by
:func:`ganzoo.readers.safe_pickle.load_torch_file`, which never runs code from the file.

Roles: ``generator_test`` (the parameter average GAN_stability samples from) becomes ``G_ema``,
``generator`` becomes ``G`` and ``discriminator`` ``D``. The file holds no constructor
settings; they are inferred from tensor names and shapes (:func:`infer_generator_kwargs`,
:func:`infer_discriminator_kwargs`) and said in the notes; ``--config`` (``{"generator": {...},
"discriminator": {...}}``) overrides any of them. A file that ``ganzoo export`` wrote from a
``gpgan`` checkpoint (``G_ema``/``G``/``D`` and their ``init_kwargs``) is read too.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo._build import check_state_dict, format_names, network_skeleton
from ganzoo.architectures.gpgan.networks import RESNET_CAP_DEFAULT, Discriminator, Generator, stage_layout
from ganzoo.errors import ConversionError
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec, tensor_shape

__all__ = ["FORMAT", "infer_discriminator_kwargs", "infer_generator_kwargs", "read_gan_stability_file", "sniff"]

FORMAT = "gan-stability-pt"

# Where each role's state dict is found: GAN_stability's entries, then ganzoo export's.
_ROLE_KEYS = {"G_ema": ("generator_test", "G_ema"), "G": ("generator", "G"), "D": ("discriminator", "D")}
_WRAPPER = "module."
# The first residual block's first kernel: in every GP-GAN network, near the front of the file.
_MARKERS = (b"resnet_0_0.conv_0.weight", b"resnet.0.conv_0.weight")
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")  # what a legacy torch.save file starts with
_D_EMBED_DEFAULT = 256


def sniff(path: Path, head: bytes) -> bool:
    """A torch file (zip or legacy) whose first 64 KiB name a GP-GAN residual block. Tensor names
    are pickled as plain UTF-8, and the networks' names come before any tensor data; StyleGAN2
    state dicts (``synthesis.b4...``, ``b4.conv...``) never have them."""
    is_torch = head[:4] == b"PK\x03\x04" or _LEGACY_MAGIC in head[:32]
    return is_torch and any(marker in head for marker in _MARKERS)


# ----------------------------------------------------------------------------------------------
# Inference of the constructor settings


def _variant(names: list[str], where: str, kind: str) -> str:
    """Which of the four architectures the tensor names belong to."""
    if any(name.startswith("resnet.") for name in names):
        return "resnet"
    if "resnet_6_0.conv_0.weight" in names:
        return "resnet4"
    if "resnet_0_1.conv_0.weight" in names:
        return "resnet2"
    if "resnet_0_0.conv_0.weight" in names:
        return "resnet3"
    raise ConversionError(f"{where}: not a GAN_stability {kind} (no residual blocks resnet_0_0.* or resnet.0.*)")



def _sequential_depth(names: list[str], where: str) -> int:
    """Number of x2 resamplings of a ``resnet`` network: its blocks sit at ``resnet.0, .2, ...,
    .2*depth`` (the resamplers, without tensors, in between)."""
    found = sorted({int(m.group(1)) for name in names if (m := re.match(r"resnet\.(\d+)\.conv_0\.weight$", name))})
    if not found or found != list(range(0, 2 * len(found), 2)):
        raise ConversionError(f"{where}: residual blocks at resnet.{found} are not resnet.0, resnet.2, ...")
    return len(found) - 1


def _base_side(area: int, width: int, what: str, where: str) -> int:
    """The side ``s`` of a ``width x s x s`` feature map flattened to ``area`` values."""
    cells, rest = divmod(area, width) if width else (0, 1)
    side = math.isqrt(cells)
    if rest or cells < 1 or side * side != cells:
        raise ConversionError(f"{where}: {what} has {area} features, not {width} channels on a square grid")
    return side


def _resnet_widest(area: int, what: str, where: str) -> int:
    """The channels of a ``resnet`` network's 4x4 base, from its ``fc`` size ``area``."""
    if area % 16 or area < 16:
        raise ConversionError(f"{where}: {what} has {area} features, not a whole number of 4x4 channels")
    return area // 16


def _resnet_cap(widest: int, nfilter: int, depth: int, kind: str, inferred: dict, notes: list[str]) -> int:
    """``nfilter_max`` of a ``resnet`` network whose widest layer has ``widest`` channels: that
    width when the cap bites, else (any cap from ``widest`` up builds the same network) the
    constructor's default, or ``widest`` when the default is smaller."""
    if widest < nfilter * 2**depth:
        inferred["nfilter_max"] = widest
        return widest
    cap = max(RESNET_CAP_DEFAULT[kind], widest)
    notes.append(f"nfilter_max={cap}: not recoverable from tensors (the widths never reach the cap; any value "
                 f">= {widest} builds the same network)")  # fmt: skip
    return cap


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())


def _size_and_cap(arch: str, names: list[str], fc_width: int, nfilter: int, role: str, inferred: dict,
                  later: list[str], where: str) -> tuple[int, int | None]:  # fmt: skip
    """``size`` and the ``resnet`` width cap (None for the other variants) of a network whose
    ``fc`` has ``fc_width`` features on its image side (G's outputs, D's inputs)."""
    if arch == "resnet":
        depth = _sequential_depth(names, where)
        cap = _resnet_cap(_resnet_widest(fc_width, "fc.weight", where), nfilter, depth, role, inferred, later)
        return 4 * 2**depth, cap
    divisor, g_in, d_out = stage_layout(arch)
    return divisor * _base_side(fc_width, (g_in if role == "G" else d_out) * nfilter, "fc.weight", where), None


def infer_generator_kwargs(state_dict: Mapping[str, torch.Tensor], where: str = "generator") -> tuple[dict, list[str]]:
    """Infers the :class:`~ganzoo.architectures.gpgan.networks.Generator` kwargs of a state dict
    (``module.`` removed).

    From tensors: ``arch`` (from the block names), ``nlabels`` and ``embed_size``
    (``embedding.weight``), ``z_dim`` (``fc.weight``'s inputs less the embedding), ``nfilter``
    (``conv_img.weight``'s inputs), ``size`` (``fc.weight``'s outputs over the base width, for
    ``resnet`` the number of blocks) and, for ``resnet``, ``nfilter_max``.

    Returns:
        (kwargs, notes).

    Raises:
        ConversionError: the tensors do not describe a GP-GAN generator.
    """
    names = list(state_dict)
    arch = _variant(names, where, "generator")
    nlabels, embed_size = tensor_shape(state_dict, "embedding.weight", 2, where)
    fc_out, fc_in = tensor_shape(state_dict, "fc.weight", 2, where)
    z_dim = fc_in - embed_size
    if z_dim < 1:
        raise ConversionError(f"{where}: fc.weight has {fc_in} inputs, no more than the class embedding's {embed_size}")
    out_channels, nfilter = tensor_shape(state_dict, "conv_img.weight", 4, where)[:2]
    if out_channels != 3:
        raise ConversionError(f"{where}: conv_img.weight makes {out_channels} channels; GP-GANs make RGB images")
    inferred: dict[str, Any] = {"arch": arch, "z_dim": z_dim, "nlabels": nlabels, "embed_size": embed_size,
                                "nfilter": nfilter}  # fmt: skip
    later: list[str] = []
    size, cap = _size_and_cap(arch, names, fc_out, nfilter, "G", inferred, later, where)
    if cap is None:
        later.append(f"nfilter_max: not used by {arch} (GAN_stability's configs may pass it; it changes nothing)")
    inferred["size"] = size
    kwargs: dict[str, Any] = {"arch": arch, "z_dim": z_dim, "nlabels": nlabels, "size": size,
                              "embed_size": embed_size, "nfilter": nfilter}  # fmt: skip
    if cap is not None:
        kwargs["nfilter_max"] = cap
    return kwargs, [f"inferred from tensors: {_describe(inferred)}", *later]


def infer_discriminator_kwargs(
    state_dict: Mapping[str, torch.Tensor], where: str = "discriminator", embed_size: int | None = None
) -> tuple[dict, list[str]]:
    """Infers the :class:`~ganzoo.architectures.gpgan.networks.Discriminator` kwargs of a state
    dict (``module.`` removed).

    From tensors: ``arch``, ``nfilter`` (``conv_img.weight``'s outputs), ``nlabels``
    (``fc.weight``'s outputs), ``size`` (``fc.weight``'s inputs over the last width, for
    ``resnet`` the number of blocks) and, for ``resnet``, ``nfilter_max``. D has no embedding:
    ``embed_size`` (unused by D) is the generator's when given, else GAN_stability's default.

    Returns:
        (kwargs, notes).

    Raises:
        ConversionError: the tensors do not describe a GP-GAN discriminator.
    """
    names = list(state_dict)
    arch = _variant(names, where, "discriminator")
    nfilter, in_channels = tensor_shape(state_dict, "conv_img.weight", 4, where)[:2]
    if in_channels != 3:
        raise ConversionError(f"{where}: conv_img.weight reads {in_channels} channels; GP-GANs read RGB images")
    nlabels, fc_in = tensor_shape(state_dict, "fc.weight", 2, where)
    inferred: dict[str, Any] = {"arch": arch, "nlabels": nlabels, "nfilter": nfilter}
    later: list[str] = []
    size, cap = _size_and_cap(arch, names, fc_in, nfilter, "D", inferred, later, where)
    inferred["size"] = size
    kwargs: dict[str, Any] = {"arch": arch, "nlabels": nlabels, "size": size,
                              "embed_size": embed_size or _D_EMBED_DEFAULT, "nfilter": nfilter}  # fmt: skip
    if cap is not None:
        kwargs["nfilter_max"] = cap
    why = "D has no embedding tensor and does not use it"
    if embed_size:
        later.append(f"embed_size={embed_size} taken from the generator ({why})")
    else:
        later.append(f"embed_size={_D_EMBED_DEFAULT}: GAN_stability's default ({why})")
    return kwargs, [f"inferred from tensors: {_describe(inferred)}", *later]


# ----------------------------------------------------------------------------------------------
# The reader


def _is_tensor_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _strip_wrapper(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """Removes ``nn.DataParallel``'s ``module.`` from every name (when all names have it)."""
    if all(name.startswith(_WRAPPER) for name in state_dict):
        return {name[len(_WRAPPER):]: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}, True
    return {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}, False


def _check_config(config: Any, where: str) -> dict[str, Mapping[str, Any]]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConversionError(f"{where}: config must be a JSON object with 'generator'/'discriminator' entries")
    for key in ("generator", "discriminator"):
        if key in config and config[key] is not None and not isinstance(config[key], Mapping):
            raise ConversionError(f"{where}: config[{key!r}] must be a JSON object of constructor kwargs")
    return {key: config[key] for key in ("generator", "discriminator") if config.get(key)}


def read_gan_stability_file(path: str | os.PathLike, config: Mapping[str, Any] | None = None) -> ForeignCheckpoint:
    """Reads a GAN_stability checkpoint (or a ``ganzoo export`` of a ``gpgan`` checkpoint).

    Args:
        path: the ``.pt`` file.
        config: constructor kwargs per network, ``{"generator": {...}, "discriminator": {...}}``,
            laid over the inferred ones (a value given wins).

    Returns:
        The networks, each checked against the network its kwargs build (names and shapes).

    Raises:
        ConversionError: no GP-GAN network in the file, settings that cannot be inferred, or a
            tensor missing, unexpected or of the wrong shape (one line, naming the file).
        UnsafeCheckpointError: the file asks to run code (from ``load_torch_file``).
    """
    from ganzoo.readers.safe_pickle import load_torch_file

    where = os.fspath(path)
    given_config = _check_config(config, where)
    obj = load_torch_file(path)
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{where}: expected a dict of state dicts (GAN_stability's CheckpointIO.save), "
                              f"found {type(obj).__name__}")  # fmt: skip
    found = _found_state_dicts(obj, where)
    stored = obj.get("init_kwargs") if isinstance(obj.get("init_kwargs"), Mapping) else {}
    result = ForeignCheckpoint(format=FORMAT, architecture="gpgan")
    _record_entries(result, obj, found, stored)
    if "G_ema" not in found:
        found["G_ema"] = found.pop("G")
        result.notes.append(f"no parameter average ('generator_test') in the file: its {found['G_ema'][0]!r} is G_ema")
    elif found["G_ema"][0] == "generator_test":
        result.notes.append("G_ema is 'generator_test', the parameter average GAN_stability samples from"
                            + ("; G is 'generator'" if "G" in found else ""))  # fmt: skip

    g_embed: int | None = None
    for role in ("G_ema", "G", "D"):
        if role not in found:
            continue
        key, raw = found[role]
        spec, notes = _network_spec(role, raw, f"{where} [{key}]", stored.get(role), given_config, g_embed)
        if role != "D" and g_embed is None:
            g_embed = int(spec.init_kwargs.get("embed_size") or 0) or None
        setattr(result, role, spec)
        result.notes.append(f"{role}: " + "; ".join(notes))
    return result


def _found_state_dicts(obj: Mapping, where: str) -> dict[str, tuple[str, dict[str, torch.Tensor]]]:
    """Role -> (the file's key, its state dict) for every role the file has; a generator is required."""
    found: dict[str, tuple[str, dict[str, torch.Tensor]]] = {}
    for role, keys in _ROLE_KEYS.items():
        key = next((k for k in keys if k in obj), None)
        if key is None:
            continue
        if not _is_tensor_dict(obj[key]):
            raise ConversionError(f"{where}: entry {key!r} is not a state dict of tensors")
        found[role] = (key, obj[key])
    if "G_ema" not in found and "G" not in found:
        keys = format_names([repr(k) for k in obj])
        raise ConversionError(
            f"{where}: no generator state dict (expected 'generator_test' or 'generator'; found {keys})"
        )
    return found


def _record_entries(result: ForeignCheckpoint, obj: Mapping, found: dict[str, tuple[str, Any]],
                    stored: Mapping) -> None:  # fmt: skip
    """Records in ``result`` where the networks were, the iteration, and the entries left unread."""
    used = {key for key, _ in found.values()} | ({"init_kwargs"} if stored else set())
    ignored = [str(k) for k in obj if k not in used]
    result.extra["layout"] = "networks under keys " + ", ".join(repr(key) for key, _ in found.values())
    if isinstance(obj.get("it"), int) and not isinstance(obj.get("it"), bool):
        result.extra["it"] = int(obj["it"])
    if ignored:
        result.extra["ignored_entries"] = ignored
        result.notes.append(f"ignored non-network entries: {format_names([repr(k) for k in ignored])}")


def _network_spec(role: str, raw: dict[str, torch.Tensor], label: str, stored: Any, given_config: dict[str, Any],
                  g_embed: int | None) -> tuple[NetworkSpec, list[str]]:  # fmt: skip
    """One role's network and notes on its kwargs: those stored in the file, else inferred from its
    tensors (D's embedding size from G's), with the config's laid over; its state dict (the
    wrapper's prefix removed) is checked against the network the kwargs build."""
    state_dict, stripped = _strip_wrapper(raw)
    is_d = role == "D"
    cls, class_name = (Discriminator, "Discriminator") if is_d else (Generator, "Generator")
    given = given_config.get("discriminator" if is_d else "generator")
    if isinstance(stored, Mapping):
        kwargs, notes = copy.deepcopy(dict(stored)), ["constructor kwargs read from the file's 'init_kwargs'"]
    else:
        try:
            if is_d:
                kwargs, notes = infer_discriminator_kwargs(state_dict, label, embed_size=g_embed)
            else:
                kwargs, notes = infer_generator_kwargs(state_dict, label)
        except ConversionError:
            if given is None:
                raise
            kwargs, notes = {}, ["could not infer the kwargs from tensors"]
    if given is not None:
        kwargs = {**kwargs, **copy.deepcopy(dict(given))}
        notes.append(f"given by config (override): {', '.join(sorted(given))}")
    if stripped:
        notes.append(f"removed tensor-name prefix {_WRAPPER!r}")
    _, expected = network_skeleton(cls, kwargs, label)
    check_state_dict(state_dict, expected, label)
    return NetworkSpec(class_name=class_name, init_kwargs=kwargs, state_dict=state_dict), notes
