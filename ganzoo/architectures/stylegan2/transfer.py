"""What the transfer recipes and merge need of the StyleGAN2 family (StyleGAN3 shares it: its D
is StyleGAN2's, its mapping network has the same ``embed``/``fc0`` layers).

* D's blocks ``b{res}`` from the image inwards, and a copy of D with its first layers frozen
  (the ``freeze_layers`` block argument: frozen layers keep their weights as buffers);
* fresh, seeded networks of a source's shapes (the ``scratch`` recipe, ``--allow-random-d``);
* the class-conditional versions of an unconditional G and D that give the same output for
  every class (merge's starting point).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from ganzoo import ops
from ganzoo._build import build_strict


def d_blocks(D: Any) -> list[tuple[int, int]]:
    """``(resolution, number of layers)`` of D's blocks, from the image input inwards."""
    return [(res, getattr(D, f"b{res}").num_layers) for res in D.block_resolutions]


def detached_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``net``'s state dict."""
    return {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}


def freeze_d(D: Any, layers: int) -> Any:
    """A copy of ``D`` (same class) with its first ``layers`` layers from the image frozen."""
    kwargs = copy.deepcopy(D.init_kwargs)
    block_kwargs = dict(kwargs.get("block_kwargs") or {})
    if layers:
        block_kwargs["freeze_layers"] = int(layers)
    else:
        block_kwargs.pop("freeze_layers", None)
    kwargs["block_kwargs"] = block_kwargs
    return build_strict(type(D), kwargs, detached_state(D), "discriminator")


def d_kwargs_for(G: Any, discriminator_class: type) -> dict:
    """Discriminator kwargs that match a generator (``--allow-random-d``, ``scratch`` without D)."""
    synth = G.init_kwargs.get("synthesis_kwargs") or G.init_kwargs
    kwargs = dict(c_dim=G.c_dim, img_resolution=G.img_resolution, img_channels=G.img_channels)
    for key in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp"):
        if key in synth:
            kwargs[key] = synth[key]
    return kwargs


def fresh_networks(G: Any, D: Any | None, seed: int, generator_class: type, discriminator_class: type) -> tuple[Any, Any]:
    """Seeded random networks of ``G``'s and ``D``'s shapes (D matched to G when None)."""
    g_kwargs = {k: copy.deepcopy(v) for k, v in G.init_kwargs.items() if k != "adafm_resolutions"}
    if D is not None:
        d_kwargs = copy.deepcopy(D.init_kwargs)
        (d_kwargs.get("block_kwargs") or {}).pop("freeze_layers", None)
    else:
        d_kwargs = d_kwargs_for(G, discriminator_class)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new_G = generator_class(**g_kwargs)
        new_D = discriminator_class(**d_kwargs)
    return new_G.requires_grad_(False), new_D.requires_grad_(False)


def fresh_discriminator(G: Any, seed: int, discriminator_class: type) -> Any:
    """A seeded random D matching ``G`` (``--allow-random-d``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return discriminator_class(**d_kwargs_for(G, discriminator_class)).requires_grad_(False)


# ----------------------------------------------------------------------------------------------
# Class-conditional versions that keep the unconditional behaviour (merge)


def _constant_embedding(mapping: torch.nn.Module, gen: torch.Generator) -> torch.Tensor:
    """Makes a mapping network's label embedding class-independent: zero weights, a random
    bias. Returns the normalized embedding every label then gives, ``[embed_features]``."""
    with torch.no_grad():
        mapping.embed.weight.zero_()
        mapping.embed.bias.copy_(torch.randn(mapping.embed.bias.shape, generator=gen))
        return ops.normalize_2nd_moment(mapping.embed(torch.zeros([1, mapping.c_dim])))[0]


def _widened(net: Any, num_classes: int, seed: int, replaced: tuple[str, ...]) -> Any:
    """A seeded copy of ``net`` built with ``c_dim=num_classes``, holding ``net``'s tensors
    except the ``replaced`` ones (which change shape)."""
    kwargs = copy.deepcopy(net.init_kwargs)
    kwargs["c_dim"] = int(num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = type(net)(**kwargs)
    state = new.state_dict()
    for key, value in net.state_dict().items():
        if key not in replaced:
            state[key] = value.detach().clone()
    new.load_state_dict(state, strict=True)
    return new


def conditional_generator(G: Any, num_classes: int, seed: int) -> Any:
    """``G`` with a class embedding concatenated to the normalized z, ignored at the start.

    The embedding starts class-independent (zero weights, random bias), so its normalized
    output is one constant vector ``y0``; ``mapping.fc0`` keeps random (seeded) input columns
    for it, and its bias absorbs their constant contribution, while the old columns are
    rescaled for fc0's larger fan-in (equalized learning rate). Every class then gives the
    unconditional G's output, yet every new parameter gets a gradient from the first step (the
    embedding trains at the full learning rate; zero fc0 columns would leave the class signal
    to the mapping's 0.01 learning-rate multiplier and, measured at toy scale, never separate
    the classes).
    """
    new = _widened(G, num_classes, seed, ("mapping.fc0.weight", "mapping.fc0.bias"))
    y0 = _constant_embedding(new.mapping, torch.Generator().manual_seed(seed))
    old_fc, new_fc = G.mapping.fc0, new.mapping.fc0
    z_dim = old_fc.weight.shape[1]
    with torch.no_grad():
        new_fc.weight[:, :z_dim] = old_fc.weight * (old_fc.weight_gain / new_fc.weight_gain)
        constant = new_fc.weight[:, z_dim:].double() @ y0.double() * new_fc.weight_gain
        new_fc.bias.copy_(((old_fc.bias.double() * old_fc.bias_gain - constant) / new_fc.bias_gain).float())
    return new.requires_grad_(False).train(G.training)


def conditional_discriminator(D: Any, num_classes: int, seed: int) -> Any:
    """``D`` as a projection discriminator whose logits equal the old ones for every class.

    The label embedding starts class-independent (zero weights, random bias), so the mapped
    label is one constant vector ``m0`` (through the random, seeded mapping layers); the
    output layer ``out`` starts random and is corrected along ``m0`` so that the projection
    ``<out(x), m0> / sqrt(cmap_dim)`` is the old scalar logit.
    """
    new = _widened(D, num_classes, seed + 1, ("b4.out.weight", "b4.out.bias"))
    _constant_embedding(new.mapping, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        m0 = new.mapping(None, torch.zeros([1, num_classes]))[0].double()  # [cmap_dim]
        old_out, out = D.b4.out, new.b4.out
        scale = math.sqrt(new.cmap_dim)
        # Stored weights: both layers have in_channels inputs, hence the same weight gain.
        target_w = old_out.weight[0].double() * scale  # want m0 @ W = target (per input)
        weight = out.weight.double()
        weight += torch.outer(m0, target_w - m0 @ weight) / (m0 @ m0)
        bias = out.bias.double() * out.bias_gain
        bias += m0 * (old_out.bias[0].double() * old_out.bias_gain * scale - m0 @ bias) / (m0 @ m0)
        out.weight.copy_(weight.float())
        out.bias.copy_((bias / out.bias_gain).float())
    return new.requires_grad_(False).train(D.training)


def rescaled_inputs(old: Any, new: Any) -> dict[str, tuple[int, float]]:
    """fc0's old input columns, rescaled by :func:`conditional_generator`."""
    scale = old.mapping.fc0.weight_gain / new.mapping.fc0.weight_gain
    return {"mapping.fc0.weight": (old.mapping.fc0.weight.shape[1], float(scale))}
