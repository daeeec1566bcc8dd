"""ganzoo's StyleGAN2 generator and discriminator.

The networks of Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020),
with the training-time details of "Training Generative Adversarial Networks with Limited Data"
(2020): mixed precision in the highest-resolution blocks, clamped convolution outputs, and the
projection discriminator for labels.

Compatibility is the contract of this module: class names, constructor arguments and defaults,
``init_kwargs``, module and tensor names (``mapping.fc0.weight``, ``synthesis.b16.conv0.affine.bias``,
``b64.skip.weight``, ...), tensor shapes and forward signatures are those of the StyleGAN2-ADA
PyTorch release, so its checkpoints load with ``strict=True`` and compute the same outputs.
Everything runs through the plain-PyTorch operations in :mod:`ganzoo.ops`.

Precision: a block marked for float16 computes in float16 only on CUDA and unless
``force_fp32`` is given; on CPU everything is float32.

The classes live in :mod:`~ganzoo.architectures.stylegan2.layers` (equalized-learning-rate
layers, the mapping network), :mod:`~ganzoo.architectures.stylegan2.generator` and
:mod:`~ganzoo.architectures.stylegan2.discriminator`; this module is where they are imported from.
"""

from __future__ import annotations

import copy

from torch import nn

from ganzoo.architectures.stylegan2.discriminator import (
    Discriminator,
    DiscriminatorBlock,
    DiscriminatorEpilogue,
    MinibatchStdLayer,
)
from ganzoo.architectures.stylegan2.generator import (
    Generator,
    SynthesisBlock,
    SynthesisLayer,
    SynthesisNetwork,
    ToRGBLayer,
)

# The private helpers are also imported from here (StyleGAN3's networks build on them).
from ganzoo.architectures.stylegan2.layers import (  # noqa: F401
    CPU_CHANNELS_LAST_MIN_RES,
    LOWPASS_TAPS,
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    _Module,
    _at_scale,
    _block_dtype,
    _fan_in_gain,
    _filled,
    _recorded,
)

__all__ = [
    "CPU_CHANNELS_LAST_MIN_RES", "Conv2dLayer", "Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue",
    "FullyConnectedLayer", "Generator", "LOWPASS_TAPS", "MappingNetwork", "MinibatchStdLayer", "NETWORK_CLASSES",
    "SynthesisBlock", "SynthesisLayer", "SynthesisNetwork", "ToRGBLayer", "build_network",
]  # fmt: skip


NETWORK_CLASSES = {"Generator": Generator, "Discriminator": Discriminator}


def build_network(class_name: str, init_kwargs: dict) -> nn.Module:
    """A fresh network of class ``class_name`` ('Generator' or 'Discriminator') from its
    StyleGAN2-ADA constructor kwargs (copied, never modified)."""
    if class_name not in NETWORK_CLASSES:
        raise ValueError(f"unknown StyleGAN2 network class {class_name!r}")
    return NETWORK_CLASSES[class_name](**copy.deepcopy(init_kwargs))
