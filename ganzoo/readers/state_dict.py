"""Reader for plain torch state-dict files (``.pt``/``.pth``) of StyleGAN2-ADA networks.

Many StyleGAN2 checkpoints are published not as pickled networks but as ``torch.save``-d state
dicts: the ImageNet StyleGAN2-ADA checkpoints of Grigoryev et al. (``imagenet-{128,256,512}-state.pt``
from yandex-research/gan-transfer: a dict of StyleGAN2-ADA state dicts, read by the scripts that
use them as ``torch.load(f)['G']`` and ``['D']``), training snapshots with optimizer states beside
the networks, or a single network's state dict. Such files carry tensors but no
constructor kwargs, so this module also infers the kwargs from tensor names and shapes
(:func:`infer_generator_kwargs`, :func:`infer_discriminator_kwargs`) and says which values could
only be defaulted.

The file is loaded with :func:`ganzoo.readers.safe_pickle.load_torch_file`, which never runs code.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from ganzoo._build import check_state_dict, format_names, network_skeleton
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec, tensor_shape
from ganzoo.errors import ConversionError

FORMAT = "state-dict-pt"
STYLEGAN2 = "stylegan2"  # the family whose networks this reader infers (others: their export's 'architecture')

# Top-level keys under which files store each network, in order of preference.
_NETWORK_KEYS: dict[str, tuple[str, ...]] = {
    "G_ema": ("G_ema", "g_ema", "generator_ema", "Gs"),
    "G": ("G", "g", "generator"),
    "D": ("D", "d", "discriminator"),
}
# Prefixes that wrappers add to every tensor name: DataParallel/DDP and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")

# Values that cannot be recovered from tensors. They are the settings StyleGAN2-ADA's train.py
# uses for every paper config (``num_fp16_res = 4``, ``conv_clamp = 256``; the minibatch-std
# group of the default 'auto' config, ``min(batch_per_gpu, 4)``, is 4) and the constructor
# defaults of its networks (mapping lr multiplier 0.01, leaky ReLU, ``w_avg_beta`` 0.995).
PAPER_DEFAULTS: dict[str, Any] = {
    "num_fp16_res": 4,
    "conv_clamp": 256,
    "mbstd_group_size": 4,
    "mapping_lr_multiplier": 0.01,
    "activation": "lrelu",
    "w_avg_beta": 0.995,
    "resample_filter": [1, 3, 3, 1],
}



# ----------------------------------------------------------------------------------------------
# Helpers shared with the other readers


def expected_state_shapes(class_name: str, init_kwargs: dict[str, Any], where: str) -> dict[str, tuple[int, ...]]:
    """Returns the state-dict names and shapes of the ganzoo network the kwargs describe.

    Raises:
        ConversionError: the kwargs do not describe a valid network.
    """
    from ganzoo.architectures.stylegan2.networks import NETWORK_CLASSES

    if class_name not in NETWORK_CLASSES:
        raise ConversionError(f"{where}: unknown network class {class_name!r}")
    _, expected = network_skeleton(NETWORK_CLASSES[class_name], init_kwargs, where)
    return {name: shape for name, (shape, _) in expected.items()}


def fit_channel_base_max(channels: Mapping[int, int]) -> tuple[int, int] | None:
    """Finds ``(channel_base, channel_max)`` with ``min(channel_base // res, channel_max)``
    equal to ``channels[res]`` for every resolution.

    ``channel_max`` is the largest count (the smallest value that fits). ``channel_base`` is the
    smallest power of two in the feasible range, or the range's lower end when no power of two
    fits; any value in the range builds the same network.

    Args:
        channels: resolution -> channel count.

    Returns:
        The pair, or None when no pair reproduces the counts.
    """
    if not channels or any(count < 1 for count in channels.values()):
        return None
    channel_max = max(channels.values())
    low, high = 1, None  # feasible channel_base values: low <= base < high
    for res, count in channels.items():
        low = max(low, count * res)
        if count < channel_max:
            bound = (count + 1) * res
            high = bound if high is None else min(high, bound)
    if high is not None and low >= high:
        return None
    power = 1 << (low - 1).bit_length()
    channel_base = power if high is None or power < high else low
    if any(min(channel_base // res, channel_max) != count for res, count in channels.items()):
        return None
    return channel_base, channel_max


def filter_taps_from_buffer(buffer: torch.Tensor) -> list[float] | None:
    """Recovers 1-D filter taps from a stored ``resample_filter`` buffer (outer(f, f) / sum²).

    Returns:
        Taps scaled so the first is 1 (integers when they are), or None when the buffer is not
        a separable symmetric filter of that form.
    """
    filt = buffer.detach().to("cpu", torch.float64)
    if filt.ndim != 2 or filt.shape[0] != filt.shape[1] or filt[0, 0] <= 0:
        return None
    taps = filt[0] / filt[0, 0]
    rebuilt = torch.outer(taps, taps)
    rebuilt = rebuilt / rebuilt.sum()
    if not torch.allclose(rebuilt, filt, rtol=1e-4, atol=1e-7):
        return None
    values = [float(v) for v in taps]
    if all(abs(v - round(v)) < 1e-4 for v in values):
        return [int(round(v)) for v in values]
    return values


def _block_resolutions(names: list[str], pattern: str, where: str) -> list[int]:
    """Sorted block resolutions named in ``names``; must be 4, 8, …, R."""
    found = sorted({int(m.group(1)) for name in names if (m := re.match(pattern, name))})
    if not found:
        raise ConversionError(f"{where}: no resolution blocks (b4, b8, …) found")
    top = found[-1]
    if top < 4 or top & (top - 1):
        raise ConversionError(f"{where}: block resolution {top} is not a power of two >= 4")
    wanted = [2**i for i in range(2, int(math.log2(top)) + 1)]
    if found != wanted:
        raise ConversionError(f"{where}: block resolutions {found} are not the full chain 4..{top}")
    return found


def _count_layers(state_dict: Mapping[str, torch.Tensor], prefix: str, where: str) -> int:
    """Number of ``{prefix}fc{i}.weight`` layers; they must be numbered 0..n-1."""
    pattern = re.compile(re.escape(prefix) + r"fc(\d+)\.weight")
    indices = sorted(int(m.group(1)) for name in state_dict if (m := pattern.fullmatch(name)))
    if indices != list(range(len(indices))):
        raise ConversionError(f"{where}: mapping layers {indices} are not numbered 0..{len(indices) - 1}")
    return len(indices)



def _fit_channels(channels: dict[int, int], where: str) -> tuple[int, int]:
    fitted = fit_channel_base_max(channels)
    if fitted is None:
        counts = ", ".join(f"{res}: {count}" for res, count in sorted(channels.items()))
        raise ConversionError(
            f"{where}: channel counts per resolution ({counts}) do not follow "
            "min(channel_base // res, channel_max) for any channel_base/channel_max"
        )
    return fitted


def _resample_filter(state_dict: Mapping[str, torch.Tensor], where: str) -> tuple[list[float], bool]:
    """The resample filter taps from any stored ``resample_filter`` buffer, or the default.

    Returns:
        (taps, inferred): ``inferred`` is False when the default was used.
    """
    buffers = [tensor for name, tensor in state_dict.items() if name.endswith("resample_filter")]
    if not buffers:
        return list(PAPER_DEFAULTS["resample_filter"]), False
    taps = filter_taps_from_buffer(buffers[0])
    if taps is None:
        raise ConversionError(f"{where}: stored resample_filter is not a separable FIR filter")
    return taps, True


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())


# ----------------------------------------------------------------------------------------------
# Kwarg inference


def infer_generator_kwargs(
    state_dict: Mapping[str, torch.Tensor], where: str = "generator"
) -> tuple[dict[str, Any], list[str]]:
    """Infers StyleGAN2-ADA ``Generator`` constructor kwargs from a state dict.

    Inferred from tensors: ``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``, ``img_channels``,
    the mapping depth and widths, ``channel_base``/``channel_max``, the architecture,
    ``use_noise``, whether ``w_avg`` is tracked, and the resample filter (from its buffer).
    Defaulted (see :data:`PAPER_DEFAULTS`): ``num_fp16_res``, ``conv_clamp``, the mapping lr
    multiplier, the activation and the ``w_avg_beta`` value.

    Args:
        state_dict: tensor name -> tensor, StyleGAN2-ADA names (``mapping.fc0.weight``, …).
        where: file/network named in error messages.

    Returns:
        (kwargs, notes): JSON-able kwargs, and two notes: what was inferred, what was defaulted.

    Raises:
        ConversionError: the tensors do not describe a StyleGAN2 generator.
    """
    names = list(state_dict)
    resolutions = _block_resolutions(names, r"synthesis\.b(\d+)\.", where)
    img_resolution = resolutions[-1]

    num_layers = _count_layers(state_dict, "mapping.", where)
    if num_layers == 0:
        raise ConversionError(f"{where}: no mapping layers (mapping.fc0.weight) found")
    w_dim = tensor_shape(state_dict, f"mapping.fc{num_layers - 1}.weight", 2, where)[0]
    fc0_out, fc0_in = tensor_shape(state_dict, "mapping.fc0.weight", 2, where)
    c_dim = embed_features = 0
    if "mapping.embed.weight" in state_dict:
        embed_features, c_dim = tensor_shape(state_dict, "mapping.embed.weight", 2, where)
    z_dim = fc0_in - embed_features
    if z_dim < 0:
        raise ConversionError(f"{where}: mapping.fc0.weight has fewer inputs than the label embedding")

    torgb = [res for res in resolutions if f"synthesis.b{res}.torgb.weight" in state_dict]
    if img_resolution not in torgb:
        raise ConversionError(f"{where}: missing tensor synthesis.b{img_resolution}.torgb.weight")
    img_channels = tensor_shape(state_dict, f"synthesis.b{img_resolution}.torgb.weight", 4, where)[0]
    if any(f"synthesis.b{res}.skip.weight" in state_dict for res in resolutions):
        architecture = "resnet"
    elif torgb == resolutions:
        architecture = "skip"
    elif torgb == [img_resolution]:
        architecture = "orig"
    else:
        raise ConversionError(f"{where}: ToRGB layers at {torgb} match no StyleGAN2 architecture")

    channels = {res: tensor_shape(state_dict, f"synthesis.b{res}.conv1.weight", 4, where)[0] for res in resolutions}
    channel_base, channel_max = _fit_channels(channels, where)
    use_noise = any(name.endswith("noise_strength") for name in names)
    tracks_w_avg = "mapping.w_avg" in state_dict
    resample_filter, filter_inferred = _resample_filter(
        {k: v for k, v in state_dict.items() if k.startswith("synthesis.")}, where
    )

    mapping_kwargs: dict[str, Any] = {"num_layers": num_layers}
    if num_layers > 1 and fc0_out != w_dim:
        mapping_kwargs["layer_features"] = fc0_out
    if c_dim > 0 and embed_features != w_dim:
        mapping_kwargs["embed_features"] = embed_features
    mapping_kwargs["lr_multiplier"] = PAPER_DEFAULTS["mapping_lr_multiplier"]
    mapping_kwargs["activation"] = PAPER_DEFAULTS["activation"]
    mapping_kwargs["w_avg_beta"] = PAPER_DEFAULTS["w_avg_beta"] if tracks_w_avg else None
    synthesis_kwargs: dict[str, Any] = {
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": PAPER_DEFAULTS["num_fp16_res"],
        "conv_clamp": PAPER_DEFAULTS["conv_clamp"],
        "architecture": architecture,
        "resample_filter": resample_filter,
        "use_noise": use_noise,
        "activation": PAPER_DEFAULTS["activation"],
    }
    kwargs = {
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "img_resolution": img_resolution,
        "img_channels": img_channels,
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": synthesis_kwargs,
    }

    inferred = {
        "z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "img_resolution": img_resolution,
        "img_channels": img_channels, "mapping_kwargs.num_layers": num_layers,
    }  # fmt: skip
    for key in ("layer_features", "embed_features"):
        if key in mapping_kwargs:
            inferred[f"mapping_kwargs.{key}"] = mapping_kwargs[key]
    inferred.update({
        "synthesis_kwargs.channel_base": channel_base, "synthesis_kwargs.channel_max": channel_max,
        "synthesis_kwargs.architecture": architecture, "synthesis_kwargs.use_noise": use_noise,
    })  # fmt: skip
    defaulted = {
        "synthesis_kwargs.num_fp16_res": synthesis_kwargs["num_fp16_res"],
        "synthesis_kwargs.conv_clamp": synthesis_kwargs["conv_clamp"],
        "synthesis_kwargs.activation": synthesis_kwargs["activation"],
        "mapping_kwargs.lr_multiplier": mapping_kwargs["lr_multiplier"],
        "mapping_kwargs.activation": mapping_kwargs["activation"],
    }
    (inferred if filter_inferred else defaulted)["synthesis_kwargs.resample_filter"] = resample_filter
    if tracks_w_avg:
        defaulted["mapping_kwargs.w_avg_beta"] = mapping_kwargs["w_avg_beta"]
    else:
        inferred["mapping_kwargs.w_avg_beta"] = None
    notes = [
        f"inferred from tensors: {_describe(inferred)}",
        f"defaulted (not recoverable from tensors; StyleGAN2-ADA paper-config values): {_describe(defaulted)}",
    ]
    return kwargs, notes


def infer_discriminator_kwargs(
    state_dict: Mapping[str, torch.Tensor], where: str = "discriminator"
) -> tuple[dict[str, Any], list[str]]:
    """Infers StyleGAN2-ADA ``Discriminator`` constructor kwargs from a state dict.

    Inferred from tensors: ``c_dim``, ``img_resolution``, ``img_channels``, the architecture,
    ``channel_base``/``channel_max``, ``cmap_dim`` and the label-mapping depth and widths,
    ``mbstd_num_channels``, and the resample filter (from its buffer). Defaulted (see
    :data:`PAPER_DEFAULTS`): ``num_fp16_res``, ``conv_clamp``, ``mbstd_group_size``, the
    activation and the label-mapping lr multiplier.

    Args:
        state_dict: tensor name -> tensor, StyleGAN2-ADA names (``b64.conv0.weight``, …).
        where: file/network named in error messages.

    Returns:
        (kwargs, notes): JSON-able kwargs, and two notes: what was inferred, what was defaulted.

    Raises:
        ConversionError: the tensors do not describe a StyleGAN2 discriminator.
    """
    names = list(state_dict)
    resolutions = _block_resolutions(names, r"b(\d+)\.", where)
    img_resolution = resolutions[-1]
    if img_resolution == 4:
        raise ConversionError(f"{where}: a discriminator needs blocks above 4x4")

    img_channels = tensor_shape(state_dict, f"b{img_resolution}.fromrgb.weight", 4, where)[1]
    fromrgb = [res for res in resolutions if f"b{res}.fromrgb.weight" in state_dict]
    if any(f"b{res}.skip.weight" in state_dict for res in resolutions):
        architecture = "resnet"
    elif fromrgb == resolutions:
        architecture = "skip"
    elif fromrgb == [img_resolution]:
        architecture = "orig"
    else:
        raise ConversionError(f"{where}: FromRGB layers at {fromrgb} match no StyleGAN2 architecture")

    conv_out, conv_in = tensor_shape(state_dict, "b4.conv.weight", 4, where)[:2]
    channels = {res: tensor_shape(state_dict, f"b{res}.conv0.weight", 4, where)[0] for res in resolutions if res > 4}
    channels[4] = conv_out
    channel_base, channel_max = _fit_channels(channels, where)
    mbstd_num_channels = conv_in - conv_out
    if mbstd_num_channels < 0:
        raise ConversionError(f"{where}: b4.conv.weight has fewer inputs than outputs")

    c_dim = 0
    cmap_dim = None
    mapping_kwargs: dict[str, Any] = {}
    if "mapping.embed.weight" in state_dict:
        embed_features, c_dim = tensor_shape(state_dict, "mapping.embed.weight", 2, where)
        cmap_dim = tensor_shape(state_dict, "b4.out.weight", 2, where)[0]
        num_layers = _count_layers(state_dict, "mapping.", where)
        mapping_kwargs["num_layers"] = num_layers
        if embed_features != cmap_dim:
            mapping_kwargs["embed_features"] = embed_features
        if num_layers > 1:
            layer_features = tensor_shape(state_dict, "mapping.fc0.weight", 2, where)[0]
            if layer_features != cmap_dim:
                mapping_kwargs["layer_features"] = layer_features
        mapping_kwargs["lr_multiplier"] = PAPER_DEFAULTS["mapping_lr_multiplier"]
        mapping_kwargs["activation"] = PAPER_DEFAULTS["activation"]
    resample_filter, filter_inferred = _resample_filter(state_dict, where)

    kwargs: dict[str, Any] = {
        "c_dim": c_dim,
        "img_resolution": img_resolution,
        "img_channels": img_channels,
        "architecture": architecture,
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": PAPER_DEFAULTS["num_fp16_res"],
        "conv_clamp": PAPER_DEFAULTS["conv_clamp"],
    }
    if c_dim > 0:
        kwargs["cmap_dim"] = cmap_dim
        kwargs["mapping_kwargs"] = mapping_kwargs
    kwargs["block_kwargs"] = {"activation": PAPER_DEFAULTS["activation"], "resample_filter": resample_filter}
    kwargs["epilogue_kwargs"] = {
        "mbstd_group_size": PAPER_DEFAULTS["mbstd_group_size"],
        "mbstd_num_channels": mbstd_num_channels,
        "activation": PAPER_DEFAULTS["activation"],
    }

    inferred: dict[str, Any] = {
        "c_dim": c_dim, "img_resolution": img_resolution, "img_channels": img_channels,
        "architecture": architecture, "channel_base": channel_base, "channel_max": channel_max,
        "epilogue_kwargs.mbstd_num_channels": mbstd_num_channels,
    }  # fmt: skip
    defaulted: dict[str, Any] = {
        "num_fp16_res": kwargs["num_fp16_res"],
        "conv_clamp": kwargs["conv_clamp"],
        "block_kwargs.activation": PAPER_DEFAULTS["activation"],
        "epilogue_kwargs.activation": PAPER_DEFAULTS["activation"],
    }
    if mbstd_num_channels > 0:
        defaulted["epilogue_kwargs.mbstd_group_size"] = PAPER_DEFAULTS["mbstd_group_size"]
    if c_dim > 0:
        inferred["cmap_dim"] = cmap_dim
        for key in ("num_layers", "embed_features", "layer_features"):
            if key in mapping_kwargs:
                inferred[f"mapping_kwargs.{key}"] = mapping_kwargs[key]
        defaulted["mapping_kwargs.lr_multiplier"] = mapping_kwargs["lr_multiplier"]
        defaulted["mapping_kwargs.activation"] = mapping_kwargs["activation"]
    (inferred if filter_inferred else defaulted)["block_kwargs.resample_filter"] = resample_filter
    notes = [
        f"inferred from tensors: {_describe(inferred)}",
        f"defaulted (not recoverable from tensors; StyleGAN2-ADA paper-config values): {_describe(defaulted)}",
    ]
    return kwargs, notes


# ----------------------------------------------------------------------------------------------
# The reader


def _is_tensor_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _strip_wrapper_prefix(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Removes prefixes that DataParallel/DDP (``module.``) or torch.compile add to every name."""
    result = dict(state_dict)
    stripped = []
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if result and all(name.startswith(prefix) for name in result):
                result = {name[len(prefix):]: tensor for name, tensor in result.items()}
                stripped.append(prefix)
                changed = True
    return result, stripped


def _looks_like(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """``"Generator"``, ``"Discriminator"`` or None, from the tensor names alone."""
    names = list(state_dict)
    if any(name.startswith("synthesis.") for name in names) and any(name.startswith("mapping.") for name in names):
        return "Generator"
    if "b4.out.weight" in state_dict or "b4.conv.weight" in state_dict:
        return "Discriminator"
    return None


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merges ``override`` into a copy of ``base`` (nested dicts merge, other values replace)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _find_networks(obj: Any, where: str) -> tuple[dict[str, dict[str, torch.Tensor]], list[str], str]:
    """Splits a loaded file into network state dicts.

    Returns:
        (networks, ignored, layout): slot (``G_ema``/``G``/``D``) -> raw state dict, the
        top-level keys that were ignored, and a description of the layout.
    """
    if _is_tensor_dict(obj):
        stripped, _ = _strip_wrapper_prefix(obj)
        kind = _looks_like(stripped)
        if kind is None:
            raise ConversionError(
                f"{where}: a single state dict that is neither a StyleGAN2 generator (mapping.*, synthesis.*) "
                "nor a discriminator (b4.conv.weight, b4.out.weight)"
            )
        slot = "G_ema" if kind == "Generator" else "D"
        return {slot: dict(obj)}, [], f"a single {kind.lower()} state dict"
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{where}: expected a dict of state dicts, found {type(obj).__name__}")
    if _is_tensor_dict(obj.get("state_dict")):
        networks, ignored, layout = _find_networks(obj["state_dict"], where)
        ignored += [str(key) for key in obj if key != "state_dict"]
        return networks, ignored, f"{layout} under 'state_dict'"

    networks: dict[str, dict[str, torch.Tensor]] = {}
    used_keys: list[str] = []
    for slot, candidates in _NETWORK_KEYS.items():
        for key in candidates:
            if key in obj:
                value = obj[key]
                if not _is_tensor_dict(value):
                    raise ConversionError(f"{where}: entry {key!r} is not a state dict of tensors")
                networks[slot] = dict(value)
                used_keys.append(key)
                break
    if not networks:
        keys = format_names([repr(k) for k in obj])
        raise ConversionError(
            f"{where}: no network state dict found (expected keys G/D/G_ema, g/d/g_ema or "
            f"generator/discriminator; found {keys})"
        )
    ignored = [str(key) for key in obj if key not in used_keys]
    return networks, ignored, "networks under keys " + ", ".join(repr(k) for k in used_keys)


def read_state_dict_file(path: str | os.PathLike, config: Mapping[str, Any] | None = None) -> ForeignCheckpoint:
    """Reads a torch state-dict file of StyleGAN2-ADA networks into a :class:`ForeignCheckpoint`.

    Accepted layouts: a dict of state dicts under ``G``/``D``/``G_ema`` (also ``g``/``d``/``g_ema``
    and ``generator``/``discriminator``/``generator_ema``), possibly beside non-network entries
    (optimizer states, counters: ignored, with a note); a single network's state dict (generator
    or discriminator, told apart by tensor names); either wrapped in ``{"state_dict": ...}``.
    A ``module.`` (DataParallel/DDP) or ``_orig_mod.`` (torch.compile) prefix on every tensor name
    is removed. A file with only a raw generator ``G`` puts it in the ``G_ema`` slot, as the
    generator to sample from.

    Constructor kwargs: a file entry ``init_kwargs`` (role -> kwargs, as ``ganzoo export`` writes)
    is used as stored; otherwise they are inferred from the tensors (:func:`infer_generator_kwargs`,
    :func:`infer_discriminator_kwargs`). ``config`` (``{"generator": {...}, "discriminator":
    {...}}``, e.g. a ganzoo ``config.json``) is deep-merged over either, so it can fix just the
    values tensors cannot tell (``conv_clamp``, ``mbstd_group_size``, …). ``notes`` holds one line
    per network saying which kwargs were inferred, defaulted, stored or given.

    Args:
        path: the ``.pt``/``.pth`` file.
        config: optional constructor kwargs per network.

    Returns:
        The networks found, with state dicts checked against the networks the kwargs build.

    Raises:
        ConversionError: no network found, kwargs cannot be inferred, or a tensor is missing,
            unexpected or of the wrong shape.
        UnsafeCheckpointError: the file asks to run code (from ``load_torch_file``).
    """
    from ganzoo.readers.safe_pickle import load_torch_file

    where = os.fspath(path)
    if config is not None and not isinstance(config, Mapping):
        raise ConversionError(f"{where}: config must be a JSON object with 'generator'/'discriminator' entries")
    config = dict(config or {})
    for key in ("generator", "discriminator"):
        if key in config and not isinstance(config[key], Mapping):
            raise ConversionError(f"{where}: config[{key!r}] must be a JSON object of constructor kwargs")

    obj = load_torch_file(path)
    raw_networks, ignored, layout = _find_networks(obj, where)
    # ganzoo's own export stores each network's kwargs under 'init_kwargs' (role -> kwargs).
    file_kwargs: dict[str, Any] = {}
    if isinstance(obj, Mapping) and "init_kwargs" in ignored and isinstance(obj["init_kwargs"], Mapping):
        file_kwargs = {str(role): value for role, value in obj["init_kwargs"].items() if isinstance(value, Mapping)}
        ignored.remove("init_kwargs")
    family = obj.get("architecture") if isinstance(obj, Mapping) else None
    if isinstance(family, str) and "architecture" in ignored:
        ignored.remove("architecture")  # ganzoo's export names the family of its networks
    result = ForeignCheckpoint(format=FORMAT, architecture=STYLEGAN2)
    result.extra["layout"] = layout
    if ignored:
        result.extra["ignored_entries"] = ignored
        result.notes.append(f"ignored non-network entries: {format_names([repr(k) for k in ignored])}")
    if isinstance(family, str) and family != STYLEGAN2 and file_kwargs:
        return _read_family_export(result, family, raw_networks, file_kwargs, config, where)
    source_role = {slot: slot for slot in raw_networks}
    if "G_ema" not in raw_networks and "G" in raw_networks:
        raw_networks["G_ema"] = raw_networks.pop("G")
        source_role = {"G_ema": "G", **({"D": "D"} if "D" in raw_networks else {})}
        result.notes.append("no EMA generator in the file; its only generator G is used as G_ema")

    for slot in ("G_ema", "G", "D"):
        if slot not in raw_networks:
            continue
        label = f"{where} [{slot}]"
        state_dict, stripped = _strip_wrapper_prefix(raw_networks[slot])
        state_dict = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
        kind = _looks_like(state_dict)
        expected_kind = "Discriminator" if slot == "D" else "Generator"
        if kind != expected_kind:
            raise ConversionError(f"{label}: tensor names are not those of a StyleGAN2 {expected_kind.lower()}")
        config_key = "discriminator" if slot == "D" else "generator"
        given = config.get(config_key)
        stored = file_kwargs.get(source_role[slot])
        infer = infer_discriminator_kwargs if slot == "D" else infer_generator_kwargs
        if stored is not None:
            kwargs, notes = copy.deepcopy(dict(stored)), ["constructor kwargs read from the file's 'init_kwargs'"]
        else:
            try:
                kwargs, notes = infer(state_dict, label)
            except ConversionError:
                if given is None:
                    raise
                kwargs, notes = {}, ["could not infer kwargs from tensors"]
        if given is not None:
            kwargs = _merge(kwargs, given)
            notes.append(f"given by config (override): {', '.join(sorted(given))}")
        if stripped:
            notes.append(f"removed tensor-name prefix {''.join(stripped)!r}")
        check_state_dict(state_dict, expected_state_shapes(expected_kind, kwargs, label), label)
        spec = NetworkSpec(class_name=expected_kind, init_kwargs=kwargs, state_dict=state_dict)
        setattr(result, slot, spec)
        result.notes.append(f"{slot}: " + "; ".join(notes))
    return result


def _read_family_export(result: ForeignCheckpoint, family: str, raw_networks: dict[str, dict[str, torch.Tensor]],
                        file_kwargs: dict[str, Any], config: Mapping[str, Any], where: str) -> ForeignCheckpoint:  # fmt: skip
    """The networks of a file ``ganzoo export`` wrote for any other family (``architecture`` and
    ``init_kwargs`` stored beside the state dicts): built with that family's classes."""
    from ganzoo.architectures import get_architecture
    from ganzoo.errors import GanzooError

    try:
        architecture = get_architecture(family)
    except GanzooError as exc:
        raise ConversionError(f"{where}: {exc}") from None
    result.architecture = architecture.name
    for slot, raw in raw_networks.items():
        label = f"{where} [{slot}]"
        kwargs = file_kwargs.get(slot)
        if kwargs is None:
            raise ConversionError(f"{label}: no constructor kwargs stored for it under 'init_kwargs'")
        given = config.get("discriminator" if slot == "D" else "generator")
        kwargs = _merge(copy.deepcopy(dict(kwargs)), given) if given is not None else copy.deepcopy(dict(kwargs))
        state_dict, _ = _strip_wrapper_prefix(raw)
        state_dict = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
        cls = architecture.network_class(slot)
        _, expected = network_skeleton(cls, kwargs, label)
        check_state_dict(state_dict, expected, label)
        setattr(result, slot, NetworkSpec(class_name=cls.__name__, init_kwargs=kwargs, state_dict=state_dict))
        result.notes.append(f"{slot}: {architecture.name} constructor kwargs read from the file's 'init_kwargs'")
    return result
