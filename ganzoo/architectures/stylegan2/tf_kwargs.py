"""The constructor kwargs of a TF StyleGAN2 network pickle's networks, from its build functions'
static kwargs (TF names), for :mod:`ganzoo.architectures.stylegan2.tf_pickle`.

``fmap_base`` F with ``fmap_decay`` 1 gives ``min(F / 2**(log2(res) - 1), fmap_max)`` channels,
which is ``min(2F // res, fmap_max)``, so ``channel_base = 2 * fmap_base``; the per-resolution
counts are recomputed with the TF formula and verified (a different fitting pair is used if
``fmap_decay``/``fmap_min`` make 2F wrong, an error if none fits). A key absent from the static
kwargs takes the build function's default, and the notes say which did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ganzoo._build import format_names
from ganzoo.architectures.stylegan2.state_dict import fit_channel_base_max
from ganzoo.errors import ConversionError

STYLEGAN2 = "stylegan2"
STYLEGAN2_ADA_TF = "stylegan2-ada-tf"

# ----------------------------------------------------------------------------------------------
# TF build-function defaults, used when a key is absent from static_kwargs.
# Sources: NVlabs/stylegan2 training/networks_stylegan2.py (G_main, G_mapping,
# G_synthesis_stylegan2, D_stylegan2) and NVlabs/stylegan2-ada training/networks.py (G_main,
# G_mapping, G_synthesis, D_main).

_G_DEFAULTS_COMMON: dict[str, Any] = {
    "latent_size": 512,
    "label_size": 0,
    "dlatent_size": 512,
    "resolution": 1024,
    "num_channels": 3,
    "mapping_layers": 8,
    "mapping_lrmul": 0.01,
    "mapping_nonlinearity": "lrelu",
    "normalize_latents": True,
    "dlatent_avg_beta": 0.995,
    "fmap_base": 16 << 10,
    "fmap_decay": 1.0,
    "fmap_min": 1,
    "fmap_max": 512,
    "architecture": "skip",
    "nonlinearity": "lrelu",
    "resample_kernel": [1, 3, 3, 1],
}
_G_DEFAULTS: dict[str, dict[str, Any]] = {
    # mapping_fmaps defaults to 512 in networks_stylegan2.py; when absent it is read from the
    # stored Dense0 weight instead (see _mapping_width), which agrees for every public file.
    STYLEGAN2: {**_G_DEFAULTS_COMMON, "mapping_fmaps": None},
    STYLEGAN2_ADA_TF: {
        **_G_DEFAULTS_COMMON,
        "mapping_fmaps": None,
        "label_fmaps": None,
        "use_noise": True,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "fmap_const": None,
    },
}
# Evaluation-time or training-time switches that do not change the network's function or tensors.
_G_RUNTIME_KWARGS = frozenset({
    "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
    "style_mixing_prob", "randomize_noise", "fused_modconv", "dtype", "structure", "is_training",
    "is_validation", "return_dlatents", "is_template_graph", "force_clean_graph", "dlatent_broadcast",
    "mapping_func", "synthesis_func", "w_avg_beta",
})  # fmt: skip

_D_DEFAULTS_COMMON: dict[str, Any] = {
    "label_size": 0,
    "resolution": 1024,
    "num_channels": 3,
    "fmap_base": 16 << 10,
    "fmap_decay": 1.0,
    "fmap_min": 1,
    "fmap_max": 512,
    "architecture": "resnet",
    "nonlinearity": "lrelu",
    "mbstd_num_features": 1,
    "resample_kernel": [1, 3, 3, 1],
}
_D_DEFAULTS: dict[str, dict[str, Any]] = {
    STYLEGAN2: {**_D_DEFAULTS_COMMON, "mbstd_group_size": 4},
    STYLEGAN2_ADA_TF: {
        **_D_DEFAULTS_COMMON,
        "mbstd_group_size": None,
        "mapping_layers": 0,
        "mapping_fmaps": None,
        "mapping_lrmul": 0.1,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "use_pagan": False,
        "use_spectral_norm": False,
        "adaptive_dropout": 0,
        "score_size": 1,
        "score_max": 1,
    },
}
_D_RUNTIME_KWARGS = frozenset({
    "dtype", "structure", "is_template_graph", "augment_strength", "pagan_num", "pagan_fade",
    "freeze_layers",
})  # fmt: skip

# ----------------------------------------------------------------------------------------------
# Kwargs


class _Kwargs:
    """Reads TF static kwargs with the build function's defaults, recording what was defaulted."""

    def __init__(self, given: Mapping[str, Any], defaults: Mapping[str, Any], runtime: frozenset[str], where: str):
        unknown = sorted(set(given) - set(defaults) - runtime)
        if unknown:
            raise ConversionError(f"{where}: unknown TF build kwargs {format_names(unknown)}; cannot convert safely")
        self.given = dict(given)
        self.defaults = defaults
        self.defaulted: dict[str, Any] = {}
        self.from_tensors: dict[str, Any] = {}

    def note(self) -> str:
        """One line: which absent kwargs took TF defaults and which were read from tensors."""
        text = f"TF defaults applied for absent kwargs: {_describe(self.defaulted)}"
        if self.from_tensors:
            text += f"; absent kwargs read from stored tensors: {_describe(self.from_tensors)}"
        return text

    def __getitem__(self, name: str) -> Any:
        if name in self.given:
            return self.given[name]
        self.defaulted[name] = self.defaults[name]
        return self.defaults[name]


def _tf_channels(kw: _Kwargs, stage: int) -> int:
    """TF's ``nf(stage)``: channels of the layers at resolution ``2**(stage + 1)``."""
    count = int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"])))
    return int(np.clip(count, kw["fmap_min"], kw["fmap_max"]))


def _channel_kwargs(kw: _Kwargs, resolution: int, where: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` reproducing TF's channel count at every resolution."""
    channels = {2**log2: _tf_channels(kw, log2 - 1) for log2 in range(2, int(math.log2(resolution)) + 1)}
    direct = (2 * int(kw["fmap_base"]), int(kw["fmap_max"]))
    if all(min(direct[0] // res, direct[1]) == count for res, count in channels.items()):
        return direct
    fitted = fit_channel_base_max(channels)
    if fitted is None:
        counts = ", ".join(f"{res}: {count}" for res, count in channels.items())
        raise ConversionError(
            f"{where}: TF channel counts ({counts}) cannot be expressed as min(channel_base // res, channel_max)"
        )
    return fitted


def _resolution(kw: _Kwargs, where: str) -> int:
    resolution = int(kw["resolution"])
    if resolution < 4 or resolution & (resolution - 1):
        raise ConversionError(f"{where}: resolution {resolution} is not a power of two >= 4")
    return resolution


def _filter(kw: _Kwargs) -> list[float]:
    kernel = kw["resample_kernel"]
    # TF's upfirdn_2d treats None as the box filter [1, 1] for factor-2 resampling.
    return [1, 1] if kernel is None else [float(v) if not float(v).is_integer() else int(v) for v in kernel]


def _mapping_width(kw: _Kwargs, variables: Mapping[str, np.ndarray], w_dim: int, num_layers: int) -> int | None:
    """Width of the hidden mapping layers for StyleGAN2-ADA's ``layer_features``.

    When ``mapping_fmaps`` is absent, the stored ``Dense0`` weight tells the width (TF's own
    default is 512 for networks_stylegan2.py and ``dlatent_size`` for StyleGAN2-ADA's TF code).
    """
    if num_layers < 2:
        return None
    if "mapping_fmaps" in kw.given and kw.given["mapping_fmaps"] is not None:
        return int(kw.given["mapping_fmaps"])
    dense0 = variables.get("mapping/Dense0/weight")
    if dense0 is not None and dense0.ndim == 2:
        kw.from_tensors["mapping_fmaps"] = int(dense0.shape[1])
        return int(dense0.shape[1])
    return w_dim


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in sorted(values.items())) or "none"


def generator_kwargs_from_tf(
    static_kwargs: Mapping[str, Any], family: str, variables: Mapping[str, np.ndarray], where: str
) -> tuple[dict[str, Any], str]:
    """Translates a TF generator's static kwargs into StyleGAN2-ADA ``Generator`` kwargs.

    Args:
        static_kwargs: the ``G_main`` network's static kwargs (TF names).
        family: :data:`STYLEGAN2` or :data:`STYLEGAN2_ADA_TF`.
        variables: the network's variables (to read the mapping width when it is implicit).
        where: file/network named in error messages.

    Returns:
        (kwargs, note): the kwargs, and a note naming the TF kwargs that took their defaults.

    Raises:
        ConversionError: the kwargs describe something StyleGAN2-ADA networks cannot express.
    """
    kw = _Kwargs(static_kwargs, _G_DEFAULTS[family], _G_RUNTIME_KWARGS, where)
    resolution = _resolution(kw, where)
    z_dim, c_dim, w_dim = int(kw["latent_size"]), int(kw["label_size"]), int(kw["dlatent_size"])
    if c_dim > 0 and family == STYLEGAN2:
        raise ConversionError(
            f"{where}: conditional networks_stylegan2.py generators embed labels before normalizing "
            "(mapping/LabelConcat); StyleGAN2-ADA networks cannot represent that exactly"
        )
    if not kw["normalize_latents"]:
        raise ConversionError(f"{where}: normalize_latents=False has no StyleGAN2-ADA equivalent")
    architecture = kw["architecture"]
    if architecture not in ("orig", "skip", "resnet"):
        raise ConversionError(f"{where}: unknown synthesis architecture {architecture!r}")
    channel_base, channel_max = _channel_kwargs(kw, resolution, where)
    if family == STYLEGAN2_ADA_TF:
        fmap_const = kw["fmap_const"]
        if fmap_const is not None and int(fmap_const) != min(channel_base // 4, channel_max):
            raise ConversionError(f"{where}: fmap_const={fmap_const} differs from the 4x4 channel count")
    num_layers = int(kw["mapping_layers"])
    beta = kw["dlatent_avg_beta"]

    mapping_kwargs: dict[str, Any] = {"num_layers": num_layers}
    layer_features = _mapping_width(kw, variables, w_dim, num_layers)
    if layer_features is not None and layer_features != w_dim:
        mapping_kwargs["layer_features"] = layer_features
    if c_dim > 0:
        label_fmaps = kw["label_fmaps"]
        # StyleGAN2-ADA TF embeds labels to latent_size features unless told otherwise.
        mapping_kwargs["embed_features"] = int(label_fmaps) if label_fmaps is not None else z_dim
    mapping_kwargs.update(
        activation=kw["mapping_nonlinearity"],
        lr_multiplier=float(kw["mapping_lrmul"]),
        # TF keeps dlatent_avg even when the average is frozen (beta None); beta 1 does the same.
        w_avg_beta=1.0 if beta is None else float(beta),
    )
    is_ada = family == STYLEGAN2_ADA_TF
    synthesis_kwargs = {
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": int(kw["num_fp16_res"]) if is_ada else 0,
        "conv_clamp": kw["conv_clamp"] if is_ada else None,
        "architecture": architecture,
        "resample_filter": _filter(kw),
        "use_noise": bool(kw["use_noise"]) if is_ada else True,
        "activation": kw["nonlinearity"],
    }
    kwargs = {
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "img_resolution": resolution,
        "img_channels": int(kw["num_channels"]),
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": synthesis_kwargs,
    }
    return kwargs, kw.note()


def discriminator_kwargs_from_tf(
    static_kwargs: Mapping[str, Any], family: str, where: str
) -> tuple[dict[str, Any], str]:
    """Translates a TF discriminator's static kwargs into StyleGAN2-ADA ``Discriminator`` kwargs.

    Args:
        static_kwargs: the discriminator's static kwargs (TF names).
        family: :data:`STYLEGAN2` or :data:`STYLEGAN2_ADA_TF`.
        where: file/network named in error messages.

    Returns:
        (kwargs, note): the kwargs, and a note naming the TF kwargs that took their defaults.

    Raises:
        ConversionError: the kwargs describe something StyleGAN2-ADA networks cannot express.
    """
    kw = _Kwargs(static_kwargs, _D_DEFAULTS[family], _D_RUNTIME_KWARGS, where)
    resolution = _resolution(kw, where)
    if resolution < 8:
        raise ConversionError(f"{where}: a discriminator needs resolution >= 8, not {resolution}")
    c_dim = int(kw["label_size"])
    if c_dim > 0 and family == STYLEGAN2:
        raise ConversionError(
            f"{where}: conditional networks_stylegan2.py discriminators project raw labels on the output "
            "layer; StyleGAN2-ADA networks cannot represent that exactly"
        )
    architecture = kw["architecture"]
    if architecture not in ("orig", "skip", "resnet"):
        raise ConversionError(f"{where}: unknown discriminator architecture {architecture!r}")
    is_ada = family == STYLEGAN2_ADA_TF
    if is_ada:
        for name, neutral in (("use_pagan", False), ("use_spectral_norm", False), ("adaptive_dropout", 0),
                              ("score_size", 1), ("score_max", 1)):  # fmt: skip
            if kw[name] != neutral:
                raise ConversionError(
                    f"{where}: {name}={kw[name]!r} (a comparison method) has no StyleGAN2-ADA equivalent"
                )
    channel_base, channel_max = _channel_kwargs(kw, resolution, where)
    if _tf_channels(kw, 0) != _tf_channels(kw, 1):
        raise ConversionError(
            f"{where}: TF Dense0 has {_tf_channels(kw, 0)} features but StyleGAN2-ADA uses the 4x4 channel "
            f"count {_tf_channels(kw, 1)}"
        )
    group_size = kw["mbstd_group_size"]
    num_features = int(kw["mbstd_num_features"])
    if not is_ada and (group_size is None or int(group_size) <= 1):
        num_features = 0  # networks_stylegan2.py skips the layer unless the group size exceeds 1
    activation = kw["nonlinearity"]
    kwargs: dict[str, Any] = {
        "c_dim": c_dim,
        "img_resolution": resolution,
        "img_channels": int(kw["num_channels"]),
        "architecture": architecture,
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": int(kw["num_fp16_res"]) if is_ada else 0,
        "conv_clamp": kw["conv_clamp"] if is_ada else None,
    }
    if c_dim > 0:
        cmap_dim = kw["mapping_fmaps"]
        cmap_dim = _tf_channels(kw, 0) if cmap_dim is None else int(cmap_dim)
        kwargs["cmap_dim"] = cmap_dim
        kwargs["mapping_kwargs"] = {
            "num_layers": int(kw["mapping_layers"]),
            "embed_features": cmap_dim,
            "layer_features": cmap_dim,
            "activation": activation,
            "lr_multiplier": float(kw["mapping_lrmul"]),
        }
    kwargs["block_kwargs"] = {"activation": activation, "resample_filter": _filter(kw)}
    kwargs["epilogue_kwargs"] = {
        "mbstd_group_size": None if group_size is None else int(group_size),
        "mbstd_num_channels": num_features,
        "activation": activation,
    }
    return kwargs, kw.note()


