"""Transfer recipes: how the networks to train are made from a source checkpoint.

* ``full`` (TransferGAN, Wang et al. 2018): G, G_ema and D start from the source; all train.
* ``freezed`` (FreezeD, Mo et al. 2020): as ``full``, but the first ``freeze_d`` discriminator
  layers counted from the image input stay frozen (by default the layers of the three
  highest-resolution blocks: K = 10 at 256², the value the StyleGAN2-ADA paper found best).
* ``adafm`` (Zhao et al. 2020): the synthesis convolutions of the ``general_g``
  highest-resolution G blocks keep their weights frozen and learn AdaFM's per-(output,
  input)-channel scale and shift; the ``general_d`` D blocks closest to the image are frozen
  (the paper's G4D2 split in StyleGAN2's resolution blocks); everything else trains.
* ``scratch``: the source's architecture with a seeded random init, the baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from ganzoo.checkpoint import GAN, build_strict
from ganzoo.errors import GanzooError
from ganzoo.architectures.stylegan2.adafm import ARCHITECTURE as ADAFM_ARCHITECTURE, AdaFMGenerator, fold_adafm
from ganzoo.architectures.stylegan2.networks import Discriminator, Generator

RECIPES = ("full", "freezed", "adafm", "scratch")
DEFAULT_FROZEN_D_BLOCKS = 3
DEFAULT_GENERAL_G = 4
DEFAULT_GENERAL_D = 2


@dataclass
class PreparedNetworks:
    """The networks a recipe hands to the trainer, and what the lineage must say about them."""

    G: Generator
    G_ema: Generator
    D: Discriminator
    architecture: str = "stylegan2"
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def d_block_layers(D: Discriminator) -> list[tuple[int, int]]:
    """``(resolution, number of layers)`` of D's blocks, from the image input inwards."""
    return [(res, getattr(D, f"b{res}").num_layers) for res in D.block_resolutions]


def default_freeze_d(D: Discriminator) -> int:
    """Layers of the three highest-resolution D blocks (10 at 256² with the resnet D), keeping
    at least one block trainable on small models."""
    blocks = d_block_layers(D)
    count = min(DEFAULT_FROZEN_D_BLOCKS, max(len(blocks) - 1, 0))
    return sum(n for _, n in blocks[:count])


def _rebuild_d(D: Discriminator, freeze_layers: int) -> Discriminator:
    kwargs = copy.deepcopy(D.init_kwargs)
    block_kwargs = dict(kwargs.get("block_kwargs") or {})
    if freeze_layers:
        block_kwargs["freeze_layers"] = int(freeze_layers)
    else:
        block_kwargs.pop("freeze_layers", None)
    kwargs["block_kwargs"] = block_kwargs
    state = {k: v.detach().to("cpu").clone() for k, v in D.state_dict().items()}
    return build_strict(Discriminator, kwargs, state, "discriminator")


def _clone_g(G: Generator) -> Generator:
    state = {k: v.detach().to("cpu").clone() for k, v in G.state_dict().items()}
    return build_strict(type(G), copy.deepcopy(G.init_kwargs), state, "generator")


def _d_kwargs_from_g(G: Generator) -> dict:
    """Discriminator kwargs matching a generator (for ``--allow-random-d``)."""
    synth = G.init_kwargs.get("synthesis_kwargs") or {}
    kwargs = dict(c_dim=G.c_dim, img_resolution=G.img_resolution, img_channels=G.img_channels)
    for key in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp"):
        if key in synth:
            kwargs[key] = synth[key]
    return kwargs


def prepare(
    source: GAN,
    recipe: str,
    seed: int = 0,
    freeze_d: int | None = None,
    general_g: int | None = None,
    general_d: int | None = None,
    allow_random_d: bool = False,
) -> PreparedNetworks:
    """Builds the networks of ``recipe`` from ``source`` (which is not modified).

    Args:
        source: the source checkpoint (any AdaFM in it is folded first).
        recipe: ``'full'``, ``'freezed'``, ``'adafm'`` or ``'scratch'``.
        seed: seed of every random init (``scratch``, ``--allow-random-d``).
        freeze_d: ``freezed``: D layers to freeze (None = :func:`default_freeze_d`).
        general_g: ``adafm``: number of highest-resolution G blocks with AdaFM (None = 4,
            at most all but one).
        general_d: ``adafm``: number of D blocks next to the image to freeze (None = 2, at
            most all but one).
        allow_random_d: start D from scratch when the source has none (else refuse).

    Raises:
        GanzooError: unknown recipe, a source without D (and no ``allow_random_d``), or
            settings out of range.
    """
    if recipe not in RECIPES:
        raise GanzooError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    source = fold_adafm(source)
    notes: list[str] = []
    settings: dict = {}
    G_src = source.G_ema
    g_kwargs = {k: v for k, v in G_src.init_kwargs.items() if k != "adafm_resolutions"}

    if recipe == "scratch":
        gen = torch.random.fork_rng(devices=[])
        with gen:
            torch.manual_seed(seed)
            G = Generator(**copy.deepcopy(g_kwargs))
            d_kwargs = copy.deepcopy(source.D.init_kwargs) if source.D is not None else _d_kwargs_from_g(G_src)
            (d_kwargs.get("block_kwargs") or {}).pop("freeze_layers", None)
            D = Discriminator(**d_kwargs)
        G_ema = _clone_g(G)
        for net in (G, D):
            net.requires_grad_(False)
        settings["init"] = "random"
        return PreparedNetworks(G, G_ema, D, settings=settings, notes=notes)

    if source.D is None:
        if not allow_random_d:
            raise GanzooError(
                "the source has no discriminator (some releases ship only G): recipes start D from the source; "
                "pass --allow-random-d to start D from scratch instead"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            D_src = Discriminator(**_d_kwargs_from_g(G_src)).requires_grad_(False)
        notes.append("the source has no discriminator: D started from a random init (--allow-random-d)")
        settings["random_d"] = True
    else:
        D_src = source.D
    if source.G is None:
        notes.append("the source has no raw G: G started from the source's G_ema")
    G = _clone_g(source.G if source.G is not None else G_src)
    G_ema = _clone_g(G_src)

    if recipe == "full":
        return PreparedNetworks(G, G_ema, _rebuild_d(D_src, 0), settings=settings, notes=notes)

    blocks = d_block_layers(D_src)
    if recipe == "freezed":
        k = default_freeze_d(D_src) if freeze_d is None else int(freeze_d)
        total = sum(n for _, n in blocks)
        if not 0 <= k <= total:
            raise GanzooError(f"--freeze-d {k}: the discriminator has {total} layers before its 4x4 head")
        settings["freeze_d"] = k
        return PreparedNetworks(G, G_ema, _rebuild_d(D_src, k), settings=settings, notes=notes)

    # adafm
    g_blocks = list(G_src.synthesis.block_resolutions)
    n_g = min(DEFAULT_GENERAL_G, len(g_blocks) - 1) if general_g is None else int(general_g)
    n_d = min(DEFAULT_GENERAL_D, len(blocks) - 1) if general_d is None else int(general_d)
    if not 0 <= n_g <= len(g_blocks):
        raise GanzooError(f"--general-g {n_g}: the generator has {len(g_blocks)} blocks")
    if not 0 <= n_d <= len(blocks):
        raise GanzooError(f"--general-d {n_d}: the discriminator has {len(blocks)} blocks before its head")
    resolutions = g_blocks[len(g_blocks) - n_g :]
    frozen_d_layers = sum(n for _, n in blocks[:n_d])
    settings.update(general_g=n_g, general_d=n_d, adafm_resolutions=resolutions, freeze_d=frozen_d_layers)
    G = AdaFMGenerator.from_generator(G, resolutions)
    G_ema = AdaFMGenerator.from_generator(G_ema, resolutions)
    return PreparedNetworks(G, G_ema, _rebuild_d(D_src, frozen_d_layers), architecture=ADAFM_ARCHITECTURE,
                            settings=settings, notes=notes)  # fmt: skip
