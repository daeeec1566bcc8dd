"""StyleGAN2's plain state dicts: which network a state dict is, and the constructor kwargs its
tensors imply.

Many StyleGAN2 checkpoints are published not as pickled networks but as ``torch.save``-d state
dicts: the ImageNet StyleGAN2-ADA checkpoints of Grigoryev et al. (``imagenet-{128,256,512}-state.pt``
from yandex-research/gan-transfer: a dict of StyleGAN2-ADA state dicts, read by the scripts that
use them as ``torch.load(f)['G']`` and ``['D']``), training snapshots with optimizer states beside
the networks, or a single network's state dict. Such files carry tensors but no constructor
kwargs; the generic reader (:mod:`ganzoo.readers.state_dict`) finds the state dicts and asks this
family (:meth:`StyleGAN2.state_dict_role`, :meth:`StyleGAN2.infer_kwargs`) to recognize them and
infer the kwargs (:func:`infer_generator_kwargs`, :func:`infer_discriminator_kwargs`), saying which
values could only be defaulted. The TF reader shares the channel fitting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from ganzoo._build import network_skeleton
from ganzoo.architectures.stylegan2.networks import NETWORK_CLASSES
from ganzoo.errors import ConversionError
from ganzoo.readers.base import tensor_shape

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


def _layout(state_dict: Mapping[str, torch.Tensor], resolutions: list[int], rgb: str, skip: str, label: str,
            where: str) -> str:  # fmt: skip
    """``resnet``, ``skip`` or ``orig``: from the blocks that have a skip conv (``skip`` names
    one, ``{res}`` for the resolution) and those that have an RGB layer (``rgb``; ``label``
    names that layer in the error)."""
    top = resolutions[-1]
    with_rgb = [res for res in resolutions if rgb.format(res=res) in state_dict]
    if any(skip.format(res=res) in state_dict for res in resolutions):
        return "resnet"
    if with_rgb == resolutions:
        return "skip"
    if with_rgb == [top]:
        return "orig"
    raise ConversionError(f"{where}: {label} layers at {with_rgb} match no StyleGAN2 architecture")


def _notes(inferred: Mapping[str, Any], defaulted: Mapping[str, Any]) -> list[str]:
    return [
        f"inferred from tensors: {_describe(inferred)}",
        f"defaulted (not recoverable from tensors; StyleGAN2-ADA paper-config values): {_describe(defaulted)}",
    ]


def _generator_mapping(state_dict: Mapping[str, torch.Tensor], where: str) -> dict[str, int]:
    """The mapping network's sizes: ``num_layers``, ``w_dim``, ``fc0_out``, ``z_dim``, ``c_dim``
    and ``embed_features`` (0 when unconditional)."""
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
    return {"num_layers": num_layers, "w_dim": w_dim, "fc0_out": fc0_out, "z_dim": z_dim, "c_dim": c_dim,
            "embed_features": embed_features}  # fmt: skip


def infer_generator_kwargs(
    state_dict: Mapping[str, torch.Tensor], where: str = "generator"
) -> tuple[dict[str, Any], list[str]]:
    """Infers StyleGAN2-ADA ``Generator`` constructor kwargs from a state dict.

    Inferred from tensors: ``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``, ``img_channels``,
    the mapping depth and widths, ``channel_base``/``channel_max``, the architecture,
    ``use_noise``, whether ``w_avg`` is tracked, and the resample filter (from its buffer).
    Defaulted (see :data:`PAPER_DEFAULTS`): ``num_fp16_res``, ``conv_clamp``, the mapping lr
    multiplier, the activation and the ``w_avg_beta`` value.

    Returns:
        (kwargs, notes): JSON-able kwargs, and two notes: what was inferred, what was defaulted.

    Raises:
        ConversionError: the tensors do not describe a StyleGAN2 generator.
    """
    resolutions = _block_resolutions(list(state_dict), r"synthesis\.b(\d+)\.", where)
    img_resolution = resolutions[-1]
    m = _generator_mapping(state_dict, where)
    if f"synthesis.b{img_resolution}.torgb.weight" not in state_dict:
        raise ConversionError(f"{where}: missing tensor synthesis.b{img_resolution}.torgb.weight")
    img_channels = tensor_shape(state_dict, f"synthesis.b{img_resolution}.torgb.weight", 4, where)[0]
    architecture = _layout(state_dict, resolutions, "synthesis.b{res}.torgb.weight", "synthesis.b{res}.skip.weight",
                           "ToRGB", where)
    channels = {res: tensor_shape(state_dict, f"synthesis.b{res}.conv1.weight", 4, where)[0] for res in resolutions}
    channel_base, channel_max = _fit_channels(channels, where)
    use_noise = any(name.endswith("noise_strength") for name in state_dict)
    tracks_w_avg = "mapping.w_avg" in state_dict
    resample_filter, filter_inferred = _resample_filter(
        {k: v for k, v in state_dict.items() if k.startswith("synthesis.")}, where
    )

    mapping_kwargs: dict[str, Any] = {"num_layers": m["num_layers"]}
    if m["num_layers"] > 1 and m["fc0_out"] != m["w_dim"]:
        mapping_kwargs["layer_features"] = m["fc0_out"]
    if m["c_dim"] > 0 and m["embed_features"] != m["w_dim"]:
        mapping_kwargs["embed_features"] = m["embed_features"]
    mapping_kwargs["lr_multiplier"] = PAPER_DEFAULTS["mapping_lr_multiplier"]
    mapping_kwargs["activation"] = PAPER_DEFAULTS["activation"]
    mapping_kwargs["w_avg_beta"] = PAPER_DEFAULTS["w_avg_beta"] if tracks_w_avg else None
    synthesis_kwargs: dict[str, Any] = {
        "channel_base": channel_base, "channel_max": channel_max, "num_fp16_res": PAPER_DEFAULTS["num_fp16_res"],
        "conv_clamp": PAPER_DEFAULTS["conv_clamp"], "architecture": architecture, "resample_filter": resample_filter,
        "use_noise": use_noise, "activation": PAPER_DEFAULTS["activation"],
    }  # fmt: skip
    kwargs = {"z_dim": m["z_dim"], "c_dim": m["c_dim"], "w_dim": m["w_dim"], "img_resolution": img_resolution,
              "img_channels": img_channels, "mapping_kwargs": mapping_kwargs, "synthesis_kwargs": synthesis_kwargs}  # fmt: skip
    return kwargs, _generator_notes(kwargs, filter_inferred, tracks_w_avg)


def _generator_notes(kwargs: dict[str, Any], filter_inferred: bool, tracks_w_avg: bool) -> list[str]:
    """What :func:`infer_generator_kwargs` read from the tensors, and what it defaulted."""
    mapping_kwargs, synthesis_kwargs = kwargs["mapping_kwargs"], kwargs["synthesis_kwargs"]
    inferred = {key: kwargs[key] for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    inferred["mapping_kwargs.num_layers"] = mapping_kwargs["num_layers"]
    for key in ("layer_features", "embed_features"):
        if key in mapping_kwargs:
            inferred[f"mapping_kwargs.{key}"] = mapping_kwargs[key]
    for key in ("channel_base", "channel_max", "architecture", "use_noise"):
        inferred[f"synthesis_kwargs.{key}"] = synthesis_kwargs[key]
    defaulted = {
        "synthesis_kwargs.num_fp16_res": synthesis_kwargs["num_fp16_res"],
        "synthesis_kwargs.conv_clamp": synthesis_kwargs["conv_clamp"],
        "synthesis_kwargs.activation": synthesis_kwargs["activation"],
        "mapping_kwargs.lr_multiplier": mapping_kwargs["lr_multiplier"],
        "mapping_kwargs.activation": mapping_kwargs["activation"],
    }
    (inferred if filter_inferred else defaulted)["synthesis_kwargs.resample_filter"] = synthesis_kwargs["resample_filter"]
    if tracks_w_avg:
        defaulted["mapping_kwargs.w_avg_beta"] = mapping_kwargs["w_avg_beta"]
    else:
        inferred["mapping_kwargs.w_avg_beta"] = None
    return _notes(inferred, defaulted)


def _discriminator_mapping(state_dict: Mapping[str, torch.Tensor], where: str) -> tuple[int, int | None, dict[str, Any]]:
    """``(c_dim, cmap_dim, mapping_kwargs)`` of a discriminator's label mapping (0, None, {}
    when unconditional)."""
    if "mapping.embed.weight" not in state_dict:
        return 0, None, {}
    embed_features, c_dim = tensor_shape(state_dict, "mapping.embed.weight", 2, where)
    cmap_dim = tensor_shape(state_dict, "b4.out.weight", 2, where)[0]
    num_layers = _count_layers(state_dict, "mapping.", where)
    mapping_kwargs: dict[str, Any] = {"num_layers": num_layers}
    if embed_features != cmap_dim:
        mapping_kwargs["embed_features"] = embed_features
    if num_layers > 1:
        layer_features = tensor_shape(state_dict, "mapping.fc0.weight", 2, where)[0]
        if layer_features != cmap_dim:
            mapping_kwargs["layer_features"] = layer_features
    mapping_kwargs["lr_multiplier"] = PAPER_DEFAULTS["mapping_lr_multiplier"]
    mapping_kwargs["activation"] = PAPER_DEFAULTS["activation"]
    return c_dim, cmap_dim, mapping_kwargs


def infer_discriminator_kwargs(
    state_dict: Mapping[str, torch.Tensor], where: str = "discriminator"
) -> tuple[dict[str, Any], list[str]]:
    """Infers StyleGAN2-ADA ``Discriminator`` constructor kwargs from a state dict.

    Inferred from tensors: ``c_dim``, ``img_resolution``, ``img_channels``, the architecture,
    ``channel_base``/``channel_max``, ``cmap_dim`` and the label-mapping depth and widths,
    ``mbstd_num_channels``, and the resample filter (from its buffer). Defaulted (see
    :data:`PAPER_DEFAULTS`): ``num_fp16_res``, ``conv_clamp``, ``mbstd_group_size``, the
    activation and the label-mapping lr multiplier.

    Returns:
        (kwargs, notes): JSON-able kwargs, and two notes: what was inferred, what was defaulted.

    Raises:
        ConversionError: the tensors do not describe a StyleGAN2 discriminator.
    """
    resolutions = _block_resolutions(list(state_dict), r"b(\d+)\.", where)
    img_resolution = resolutions[-1]
    if img_resolution == 4:
        raise ConversionError(f"{where}: a discriminator needs blocks above 4x4")
    img_channels = tensor_shape(state_dict, f"b{img_resolution}.fromrgb.weight", 4, where)[1]
    architecture = _layout(state_dict, resolutions, "b{res}.fromrgb.weight", "b{res}.skip.weight", "FromRGB", where)
    conv_out, conv_in = tensor_shape(state_dict, "b4.conv.weight", 4, where)[:2]
    channels = {res: tensor_shape(state_dict, f"b{res}.conv0.weight", 4, where)[0] for res in resolutions if res > 4}
    channels[4] = conv_out
    channel_base, channel_max = _fit_channels(channels, where)
    mbstd_num_channels = conv_in - conv_out
    if mbstd_num_channels < 0:
        raise ConversionError(f"{where}: b4.conv.weight has fewer inputs than outputs")
    c_dim, cmap_dim, mapping_kwargs = _discriminator_mapping(state_dict, where)
    resample_filter, filter_inferred = _resample_filter(state_dict, where)

    kwargs: dict[str, Any] = {
        "c_dim": c_dim, "img_resolution": img_resolution, "img_channels": img_channels, "architecture": architecture,
        "channel_base": channel_base, "channel_max": channel_max, "num_fp16_res": PAPER_DEFAULTS["num_fp16_res"],
        "conv_clamp": PAPER_DEFAULTS["conv_clamp"],
    }  # fmt: skip
    if c_dim > 0:
        kwargs["cmap_dim"] = cmap_dim
        kwargs["mapping_kwargs"] = mapping_kwargs
    kwargs["block_kwargs"] = {"activation": PAPER_DEFAULTS["activation"], "resample_filter": resample_filter}
    kwargs["epilogue_kwargs"] = {"mbstd_group_size": PAPER_DEFAULTS["mbstd_group_size"],
                                 "mbstd_num_channels": mbstd_num_channels, "activation": PAPER_DEFAULTS["activation"]}  # fmt: skip
    return kwargs, _discriminator_notes(kwargs, filter_inferred)


def _discriminator_notes(kwargs: dict[str, Any], filter_inferred: bool) -> list[str]:
    """What :func:`infer_discriminator_kwargs` read from the tensors, and what it defaulted."""
    mbstd_num_channels = kwargs["epilogue_kwargs"]["mbstd_num_channels"]
    inferred: dict[str, Any] = {key: kwargs[key] for key in ("c_dim", "img_resolution", "img_channels", "architecture",
                                                             "channel_base", "channel_max")}  # fmt: skip
    inferred["epilogue_kwargs.mbstd_num_channels"] = mbstd_num_channels
    defaulted: dict[str, Any] = {
        "num_fp16_res": kwargs["num_fp16_res"],
        "conv_clamp": kwargs["conv_clamp"],
        "block_kwargs.activation": PAPER_DEFAULTS["activation"],
        "epilogue_kwargs.activation": PAPER_DEFAULTS["activation"],
    }
    if mbstd_num_channels > 0:
        defaulted["epilogue_kwargs.mbstd_group_size"] = PAPER_DEFAULTS["mbstd_group_size"]
    if kwargs["c_dim"] > 0:
        mapping_kwargs = kwargs["mapping_kwargs"]
        inferred["cmap_dim"] = kwargs["cmap_dim"]
        for key in ("num_layers", "embed_features", "layer_features"):
            if key in mapping_kwargs:
                inferred[f"mapping_kwargs.{key}"] = mapping_kwargs[key]
        defaulted["mapping_kwargs.lr_multiplier"] = mapping_kwargs["lr_multiplier"]
        defaulted["mapping_kwargs.activation"] = mapping_kwargs["activation"]
    (inferred if filter_inferred else defaulted)["block_kwargs.resample_filter"] = kwargs["block_kwargs"]["resample_filter"]
    return _notes(inferred, defaulted)


def state_dict_role(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """``"generator"`` (``mapping.*`` and ``synthesis.*`` tensors), ``"discriminator"``
    (``b4.conv.weight`` or ``b4.out.weight``) or None, from the tensor names alone."""
    names = list(state_dict)
    if any(name.startswith("synthesis.") for name in names) and any(name.startswith("mapping.") for name in names):
        return "generator"
    if "b4.out.weight" in state_dict or "b4.conv.weight" in state_dict:
        return "discriminator"
    return None
