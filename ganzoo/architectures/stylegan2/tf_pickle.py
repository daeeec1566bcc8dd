"""Reader for network pickles of the TensorFlow StyleGAN2 code (and of StyleGAN2-ADA's TF code).

The public LSUN cat/church/horse/car and FFHQ config-f StyleGAN2 checkpoints exist only in this
format: a pickled tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` objects. Each object's
state holds the build function's keyword arguments (``static_kwargs``, TF names), sub-networks
(``components``: the generator's ``mapping`` and ``synthesis``), and ``variables``: a list of
``(name, numpy array)`` in TF layouts. Unpickling such a file normally executes the embedded TF
source (``build_module_src``); here it is read by :func:`ganzoo.readers.safe_pickle.load_pickle`,
which never runs code, and the source is ignored.

Two build-function families are supported, told apart by ``build_func_name``:

* ``"stylegan2"`` -- NVlabs/stylegan2 ``training/networks_stylegan2.py``: ``G_main`` +
  ``G_mapping`` + ``G_synthesis_stylegan2``, ``D_stylegan2`` (configs E and F).
* ``"stylegan2-ada-tf"`` -- NVlabs/stylegan2-ada ``training/networks.py``: ``G_main`` +
  ``G_mapping`` + ``G_synthesis``, ``D_main`` (adds label embeddings, ``conv_clamp``, fp16).

Conversion to the StyleGAN2-ADA PyTorch networks (ganzoo's ``Generator``/``Discriminator``):

* kwargs: from the static kwargs, with the build functions' defaults
  (:mod:`ganzoo.architectures.stylegan2.tf_kwargs`).
* tensors (a declarative table, :data:`GENERATOR_RULES`/:data:`DISCRIMINATOR_RULES`): dense
  weights ``[in, out]`` are transposed to ``[out, in]``; conv weights ``[kh, kw, in, out]`` become
  ``[out, in, kh, kw]``, after a spatial flip for the up-sampling convs (``Conv0_up``) and the
  generator's resnet ``Skip`` convs, which TF applies as transposed convolutions; ``mod_bias``
  gets its implicit +1 added back; ``noise{i}`` becomes the ``noise_const`` buffer of layer i;
  ``dlatent_avg`` becomes ``mapping.w_avg``. ``resample_filter`` buffers, which TF does not store,
  are computed from the resample kernel. Every target tensor must be matched and every TF
  variable used (``lod``, a progressive-growing scalar, excepted), otherwise ConversionError.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
from ganzoo._build import check_state_dict, format_names
from ganzoo.architectures.stylegan2.state_dict import expected_state_shapes
from ganzoo.architectures.stylegan2.tf_kwargs import (
    STYLEGAN2,
    STYLEGAN2_ADA_TF,
    discriminator_kwargs_from_tf,
    generator_kwargs_from_tf,
)
from ganzoo.errors import ConversionError

FORMAT = "stylegan2-tf-pkl"


# Build functions per family: (generator main, mapping, synthesis, discriminator).
_BUILD_FUNCS = {
    STYLEGAN2: ("G_main", "G_mapping", "G_synthesis_stylegan2", "D_stylegan2"),
    STYLEGAN2_ADA_TF: ("G_main", "G_mapping", "G_synthesis", "D_main"),
}
# TF variables with no PyTorch counterpart that carry nothing needed for inference.
_IGNORED_VARIABLE = re.compile(r"(?:.*/)?lod")


# ----------------------------------------------------------------------------------------------
# Declarative tensor tables


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _dense(x: np.ndarray) -> np.ndarray:
    """TF dense ``[in, out]`` -> PyTorch ``[out, in]``."""
    return x.T


def _conv(x: np.ndarray) -> np.ndarray:
    """TF conv ``[kh, kw, in, out]`` -> PyTorch ``[out, in, kh, kw]``."""
    return x.transpose(3, 2, 0, 1)


def _conv_flipped(x: np.ndarray) -> np.ndarray:
    """As :func:`_conv`, after a spatial flip: TF runs up-sampling convs as transposed
    convolutions, whose kernel is the mirror image of the one StyleGAN2-ADA applies."""
    return x[::-1, ::-1].transpose(3, 2, 0, 1)


def _mod_bias(x: np.ndarray) -> np.ndarray:
    """TF adds the style bias' initial 1 in the graph; StyleGAN2-ADA stores it in the bias."""
    return x + 1


def _first(x: np.ndarray) -> np.ndarray:
    """Drops TF's leading batch dimension (const ``[1, C, 4, 4]``)."""
    return x[0]


def _noise(x: np.ndarray) -> np.ndarray:
    """TF noise ``[1, 1, H, W]`` -> ``noise_const [H, W]``."""
    return x[0, 0]


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of a conversion table.

    Attributes:
        target: regular expression for StyleGAN2-ADA tensor names (full match, named groups).
        source: TF variable name template, formatted with the match's groups plus ``up_noise``
            and ``noise`` (the noise-input indices of a block's conv0 and conv1); None for
            tensors computed from the kwargs rather than read.
        transform: turns the TF array into the PyTorch layout.
    """

    target: str
    source: str | None
    transform: Callable[[np.ndarray], np.ndarray] = _same

    def source_name(self, match: re.Match) -> str:
        fields = dict(match.groupdict())
        if "res" in fields:
            log2 = int(math.log2(int(fields["res"])))
            # TF numbers noise inputs over all layers: 4x4/Conv is 0, then two per resolution.
            fields["up_noise"] = 2 * log2 - 5
            fields["noise"] = 2 * log2 - 4
        return self.source.format(**fields)


_MOD_LAYER_RULES = [  # (ADA suffix, TF suffix, transform) for every modulated conv layer
    ("bias", "bias", _same),
    ("noise_strength", "noise_strength", _same),
    ("affine.weight", "mod_weight", _dense),
    ("affine.bias", "mod_bias", _mod_bias),
]

GENERATOR_RULES: list[Rule] = [
    Rule(r"mapping\.w_avg", "dlatent_avg"),
    Rule(r"mapping\.embed\.weight", "mapping/LabelEmbed/weight", _dense),
    Rule(r"mapping\.embed\.bias", "mapping/LabelEmbed/bias"),
    Rule(r"mapping\.fc(?P<i>\d+)\.weight", "mapping/Dense{i}/weight", _dense),
    Rule(r"mapping\.fc(?P<i>\d+)\.bias", "mapping/Dense{i}/bias"),
    Rule(r"synthesis\.b4\.const", "synthesis/4x4/Const/const", _first),
    Rule(r"synthesis\.b4\.conv1\.weight", "synthesis/4x4/Conv/weight", _conv),
    Rule(r"synthesis\.b4\.conv1\.noise_const", "synthesis/noise0", _noise),
    *[Rule(rf"synthesis\.b4\.conv1\.{re.escape(a)}", f"synthesis/4x4/Conv/{t}", f) for a, t, f in _MOD_LAYER_RULES],
    Rule(r"synthesis\.b(?P<res>\d+)\.conv0\.weight", "synthesis/{res}x{res}/Conv0_up/weight", _conv_flipped),
    Rule(r"synthesis\.b(?P<res>\d+)\.conv0\.noise_const", "synthesis/noise{up_noise}", _noise),
    *[
        Rule(rf"synthesis\.b(?P<res>\d+)\.conv0\.{re.escape(a)}", f"synthesis/{{res}}x{{res}}/Conv0_up/{t}", f)
        for a, t, f in _MOD_LAYER_RULES
    ],
    Rule(r"synthesis\.b(?P<res>\d+)\.conv1\.weight", "synthesis/{res}x{res}/Conv1/weight", _conv),
    Rule(r"synthesis\.b(?P<res>\d+)\.conv1\.noise_const", "synthesis/noise{noise}", _noise),
    *[
        Rule(rf"synthesis\.b(?P<res>\d+)\.conv1\.{re.escape(a)}", f"synthesis/{{res}}x{{res}}/Conv1/{t}", f)
        for a, t, f in _MOD_LAYER_RULES
    ],
    Rule(r"synthesis\.b(?P<res>\d+)\.torgb\.weight", "synthesis/{res}x{res}/ToRGB/weight", _conv),
    Rule(r"synthesis\.b(?P<res>\d+)\.torgb\.bias", "synthesis/{res}x{res}/ToRGB/bias"),
    Rule(r"synthesis\.b(?P<res>\d+)\.torgb\.affine\.weight", "synthesis/{res}x{res}/ToRGB/mod_weight", _dense),
    Rule(r"synthesis\.b(?P<res>\d+)\.torgb\.affine\.bias", "synthesis/{res}x{res}/ToRGB/mod_bias", _mod_bias),
    Rule(r"synthesis\.b(?P<res>\d+)\.skip\.weight", "synthesis/{res}x{res}/Skip/weight", _conv_flipped),
    Rule(r"(?:.*\.)?resample_filter", None),
]

DISCRIMINATOR_RULES: list[Rule] = [
    Rule(r"b(?P<res>\d+)\.fromrgb\.weight", "{res}x{res}/FromRGB/weight", _conv),
    Rule(r"b(?P<res>\d+)\.fromrgb\.bias", "{res}x{res}/FromRGB/bias"),
    Rule(r"b(?P<res>\d+)\.conv0\.weight", "{res}x{res}/Conv0/weight", _conv),
    Rule(r"b(?P<res>\d+)\.conv0\.bias", "{res}x{res}/Conv0/bias"),
    # TF down-samples after the conv with the filter applied first, as StyleGAN2-ADA does: no flip.
    Rule(r"b(?P<res>\d+)\.conv1\.weight", "{res}x{res}/Conv1_down/weight", _conv),
    Rule(r"b(?P<res>\d+)\.conv1\.bias", "{res}x{res}/Conv1_down/bias"),
    Rule(r"b(?P<res>\d+)\.skip\.weight", "{res}x{res}/Skip/weight", _conv),
    Rule(r"b4\.conv\.weight", "4x4/Conv/weight", _conv),
    Rule(r"b4\.conv\.bias", "4x4/Conv/bias"),
    Rule(r"b4\.fc\.weight", "4x4/Dense0/weight", _dense),
    Rule(r"b4\.fc\.bias", "4x4/Dense0/bias"),
    Rule(r"b4\.out\.weight", "Output/weight", _dense),
    Rule(r"b4\.out\.bias", "Output/bias"),
    Rule(r"mapping\.embed\.weight", "LabelEmbed/weight", _dense),
    Rule(r"mapping\.embed\.bias", "LabelEmbed/bias"),
    Rule(r"mapping\.fc(?P<i>\d+)\.weight", "Mapping{i}/weight", _dense),
    Rule(r"mapping\.fc(?P<i>\d+)\.bias", "Mapping{i}/bias"),
    Rule(r"(?:.*\.)?resample_filter", None),
]


# ----------------------------------------------------------------------------------------------
# Container access


def _network_state(net: Any, where: str, what: str) -> dict[str, Any]:
    """The state dict of a TFNetwork from ``load_pickle``, validated."""
    state = getattr(net, "state", None)
    if not isinstance(state, Mapping):
        raise ConversionError(f"{where}: {what} is not a dnnlib.tflib Network (found {type(net).__name__})")
    for key in ("version", "static_kwargs", "components", "build_func_name", "variables"):
        if key not in state:
            raise ConversionError(f"{where}: {what} network state lacks {key!r}")
    version = state["version"]
    if not isinstance(version, int) or version < 4:
        raise ConversionError(f"{where}: {what} has TF network version {version!r}; only version >= 4 is supported")
    return dict(state)


def _static_kwargs(state: Mapping[str, Any], where: str, what: str) -> dict[str, Any]:
    kwargs = state["static_kwargs"]
    if not isinstance(kwargs, Mapping):
        raise ConversionError(f"{where}: {what} static_kwargs is not a dict")
    return {str(k): v for k, v in kwargs.items()}


def _collect_variables(net: Any, where: str, what: str, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a network and its components, named ``component/…/variable``."""
    state = _network_state(net, where, what)
    variables: dict[str, np.ndarray] = {}
    for item in state["variables"]:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConversionError(f"{where}: {what} has a malformed variable entry")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise ConversionError(f"{where}: {what} variable {name!r} is not a numpy array")
        if value.dtype.kind != "f":
            raise ConversionError(f"{where}: {what} variable {name} has dtype {value.dtype}, expected float")
        variables[prefix + name] = value
    components = state["components"]
    if not isinstance(components, Mapping):
        raise ConversionError(f"{where}: {what} components is not a dict")
    for comp_name, comp in components.items():
        variables.update(_collect_variables(comp, where, f"{what}/{comp_name}", prefix + f"{comp_name}/"))
    return variables


def _component(state: Mapping[str, Any], name: str, where: str, what: str) -> dict[str, Any]:
    components = state["components"]
    if not isinstance(components, Mapping) or name not in components:
        raise ConversionError(f"{where}: {what} has no '{name}' component")
    return _network_state(components[name], where, f"{what}/{name}")


def _generator_family(state: Mapping[str, Any], variables: Mapping[str, np.ndarray], where: str, what: str) -> str:
    mapping_func = _component(state, "mapping", where, what)["build_func_name"]
    synthesis_func = _component(state, "synthesis", where, what)["build_func_name"]
    funcs = (state["build_func_name"], mapping_func, synthesis_func)
    for family, (main, mapping, synthesis, _) in _BUILD_FUNCS.items():
        if funcs == (main, mapping, synthesis):
            # StyleGAN (v1) also names its synthesis function G_synthesis; it has no modulation.
            if family == STYLEGAN2_ADA_TF and not any(name.endswith("/mod_weight") for name in variables):
                break
            return family
    raise ConversionError(
        f"{where}: {what} is built by {'/'.join(map(str, funcs))}, not a StyleGAN2 generator "
        "(supported: G_main with G_mapping and G_synthesis_stylegan2 or StyleGAN2-ADA's G_synthesis)"
    )


def _discriminator_family(state: Mapping[str, Any], where: str, what: str) -> str:
    func = state["build_func_name"]
    for family, funcs in _BUILD_FUNCS.items():
        if func == funcs[3]:
            return family
    raise ConversionError(
        f"{where}: {what} is built by {func}, not a StyleGAN2 discriminator (supported: D_stylegan2, D_main)"
    )


# ----------------------------------------------------------------------------------------------
# Tensors


def convert_variables(
    variables: Mapping[str, np.ndarray],
    rules: list[Rule],
    expected: Mapping[str, tuple[int, ...]],
    resample_filter: list[float],
    where: str,
) -> dict[str, torch.Tensor]:
    """Builds a StyleGAN2-ADA state dict from TF variables with a conversion table.

    Args:
        variables: TF variable name -> array.
        rules: the table; the first rule whose target matches a tensor name wins.
        expected: the target network's tensor names and shapes.
        resample_filter: taps for the computed ``resample_filter`` buffers.
        where: file/network named in error messages.

    Returns:
        tensor name -> float32 tensor, for every expected name.

    Raises:
        ConversionError: a target tensor matches no rule or its TF variable is absent, a TF
            variable is left unused, or a shape differs.
    """
    from ganzoo.ops import setup_filter

    compiled = [(re.compile(rule.target), rule) for rule in rules]
    state_dict: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    unmatched: list[str] = []
    absent: list[str] = []
    for name in expected:
        for pattern, rule in compiled:
            match = pattern.fullmatch(name)
            if match:
                break
        else:
            unmatched.append(name)
            continue
        if rule.source is None:
            state_dict[name] = setup_filter(resample_filter).to(torch.float32)
            continue
        source = rule.source_name(match)
        if source not in variables:
            absent.append(f"{name} <- {source}")
            continue
        used.add(source)
        # np.array (not ascontiguousarray, which turns scalars into [1]) copies flipped views.
        array = np.array(rule.transform(np.asarray(variables[source])), dtype=np.float32, order="C", copy=True)
        state_dict[name] = torch.from_numpy(array)
    unused = sorted(n for n in variables if n not in used and not _IGNORED_VARIABLE.fullmatch(n))
    problems = []
    if unmatched:
        problems.append(f"target tensors with no conversion rule: {format_names(unmatched)}")
    if absent:
        problems.append(f"TF variables missing for: {format_names(absent)}")
    if unused:
        problems.append(f"TF variables left unused: {format_names(unused)}")
    if problems:
        raise ConversionError(f"{where}: " + "; ".join(problems))
    check_state_dict(state_dict, expected, where)
    return state_dict


def _convert_generator(net: Any, where: str, slot: str) -> tuple[NetworkSpec, str]:
    label = f"{where} [{slot}]"
    state = _network_state(net, where, slot)
    variables = _collect_variables(net, where, slot)
    family = _generator_family(state, variables, where, slot)
    kwargs, note = generator_kwargs_from_tf(_static_kwargs(state, where, slot), family, variables, label)
    expected = expected_state_shapes("Generator", kwargs, label)
    state_dict = convert_variables(
        variables, GENERATOR_RULES, expected, kwargs["synthesis_kwargs"]["resample_filter"], label
    )
    return NetworkSpec("Generator", kwargs, state_dict), f"{slot}: {family} TF generator; {note}"


def _convert_discriminator(net: Any, where: str, slot: str) -> tuple[NetworkSpec, str]:
    label = f"{where} [{slot}]"
    state = _network_state(net, where, slot)
    variables = _collect_variables(net, where, slot)
    family = _discriminator_family(state, where, slot)
    kwargs, note = discriminator_kwargs_from_tf(_static_kwargs(state, where, slot), family, label)
    expected = expected_state_shapes("Discriminator", kwargs, label)
    state_dict = convert_variables(
        variables, DISCRIMINATOR_RULES, expected, kwargs["block_kwargs"]["resample_filter"], label
    )
    return NetworkSpec("Discriminator", kwargs, state_dict), f"{slot}: {family} TF discriminator; {note}"


def read_stylegan2_tf_pickle(path: str | os.PathLike) -> ForeignCheckpoint:
    """Reads a TensorFlow StyleGAN2 network pickle into StyleGAN2-ADA networks, without running code.

    The pickle holds ``(G, D, Gs)`` (a training snapshot or public release; ``Gs`` becomes
    ``G_ema``) or a lone ``Gs`` network.

    Args:
        path: the ``.pkl`` file.

    Returns:
        A :class:`ForeignCheckpoint` of format ``"stylegan2-tf-pkl"`` with kwargs and state dicts
        that load into ganzoo's ``Generator``/``Discriminator`` with ``strict=True``; ``notes``
        name the build family and the TF defaults applied, one line per network.

    Raises:
        ConversionError: not a StyleGAN2 TF pickle, an unsupported configuration, or tensors
            that do not map one-to-one onto the PyTorch networks.
        UnsafeCheckpointError: the pickle asks for anything beyond data (from ``load_pickle``).
    """
    from ganzoo.readers.safe_pickle import load_pickle

    return convert_tf_networks(load_pickle(path), os.fspath(path))


def convert_tf_networks(data: Any, where: str) -> ForeignCheckpoint:
    """Converts already unpickled TF networks (see :func:`read_stylegan2_tf_pickle`).

    Args:
        data: what ``load_pickle`` returned: a ``(G, D, Gs)`` tuple or a lone ``Gs``, each an
            object whose ``state`` is the TF network state dict.
        where: the file named in error messages.

    Returns:
        The converted networks.

    Raises:
        ConversionError: as for :func:`read_stylegan2_tf_pickle`.
    """
    result = ForeignCheckpoint(format=FORMAT, architecture=STYLEGAN2)
    if isinstance(data, (tuple, list)) and len(data) == 3:
        tf_g, tf_d, tf_gs = data
        result.G_ema, note_gs = _convert_generator(tf_gs, where, "G_ema")
        result.G, note_g = _convert_generator(tf_g, where, "G")
        result.D, note_d = _convert_discriminator(tf_d, where, "D")
        result.notes += [note_gs, note_g, note_d]
    elif hasattr(data, "state") and not isinstance(data, (tuple, list, dict)):
        result.G_ema, note_gs = _convert_generator(data, where, "G_ema")
        result.notes.append(note_gs)
    else:
        raise ConversionError(
            f"{where}: expected a pickled (G, D, Gs) tuple of TF networks, found {type(data).__name__}"
        )
    return result
