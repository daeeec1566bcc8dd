"""Transfer recipes: how the networks to train are made from a source checkpoint.

* ``full`` (TransferGAN, Wang et al. 2018): G, G_ema and D start from the source; all train.
* ``freezed`` (FreezeD, Mo et al. 2020): as ``full``, but the first ``freeze_d`` discriminator
  layers counted from the image input stay frozen (by default the layers of the three
  highest-resolution blocks: K = 10 at 256², the value the StyleGAN2-ADA paper found best).
* ``adafm`` (Zhao et al. 2020): the synthesis convolutions of the ``general_g``
  highest-resolution G blocks keep their weights frozen and learn AdaFM's per-(output,
  input)-channel scale and shift; the ``general_d`` D blocks closest to the image are frozen
  (the paper's G4D2 split, in the blocks by resolution the architecture names); everything else trains.
  ``adafm_variant='paper'`` (where the architecture defines :meth:`Architecture.adafm_paper`):
  the split as the authors' code builds it, e.g. for GP-GAN the part of G below the general
  blocks and D's head rebuilt from ``seed`` and only γ, β training in the general part.
* ``scratch``: the source's architecture with a seeded random init, the baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ganzoo.architectures import Architecture, architecture_of
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError

RECIPES = ("full", "freezed", "adafm", "scratch")
#: The ``adafm`` recipe's variants: ``keep`` (the default: every transferred block, AdaFM on the
#: general ones) and ``paper`` (:meth:`~ganzoo.architectures.Architecture.adafm_paper`).
ADAFM_VARIANTS = ("keep", "paper")
DEFAULT_FROZEN_D_BLOCKS = 3


@dataclass
class PreparedNetworks:
    """The networks a recipe hands to the trainer, and what the lineage must say about them."""

    G: Any
    G_ema: Any
    D: Any
    architecture: str
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_freeze_d(architecture: Architecture, D: Any) -> int:
    """Layers of the three highest-resolution D blocks (10 at 256² with StyleGAN2's resnet D),
    keeping at least one block trainable on small models."""
    blocks = architecture.d_blocks(D)
    count = min(DEFAULT_FROZEN_D_BLOCKS, max(len(blocks) - 1, 0))
    return sum(n for _, n in blocks[:count])


def _clone(net: Any) -> Any:
    """An independent copy of a network (same class, kwargs and tensors, on the CPU)."""
    from ganzoo._build import build_strict

    state = {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}
    return build_strict(type(net), copy.deepcopy(net.init_kwargs), state, "network")


def prepare(
    source: GAN,
    recipe: str,
    seed: int = 0,
    freeze_d: int | None = None,
    general_g: int | None = None,
    general_d: int | None = None,
    allow_random_d: bool = False,
    adafm_variant: str | None = None,
) -> PreparedNetworks:
    """Builds the networks of ``recipe`` from ``source`` (which is not modified), through the
    source architecture's hooks (:class:`~ganzoo.architectures.Architecture`).

    Args:
        source: the source checkpoint (any AdaFM in it is folded first).
        recipe: ``'full'``, ``'freezed'``, ``'adafm'`` or ``'scratch'``.
        seed: seed of every random init (``scratch``, ``--allow-random-d``).
        freeze_d: ``freezed``: D layers to freeze (None = :func:`default_freeze_d`).
        general_g: ``adafm``: number of highest-resolution G blocks with AdaFM (None = the
            architecture's ``adafm_defaults``, 4 for StyleGAN, at most all but one).
        general_d: ``adafm``: number of D blocks next to the image to freeze (None = 2, at
            most all but one).
        allow_random_d: start D from scratch when the source has none (else refuse).
        adafm_variant: ``adafm``: ``'keep'`` (None: the default) or ``'paper'``
            (:meth:`~ganzoo.architectures.Architecture.adafm_paper`; its own default split,
            ``adafm_paper_defaults``).

    Raises:
        GanzooError: unknown recipe or one the architecture lacks, a source without D (and no
            ``allow_random_d``), or settings out of range.
    """
    _check_recipe(recipe, adafm_variant)
    source, _ = source.architecture.for_upload(source)  # any AdaFM folded into plain kernels
    arch = source.architecture
    arch.require("finetune", recipe)
    notes: list[str] = []
    settings: dict = {}
    if recipe == "scratch":
        G, D = arch.fresh_networks(source.G_ema, source.D, seed)
        settings["init"] = "random"
        return _prepared(G, _clone(G), D, settings, notes)
    G, G_ema, D_src = _transferred(source, seed, allow_random_d, settings, notes)
    if recipe == "full":
        # A source trained with FreezeD carries its frozen layers in D's kwargs: unfreeze them.
        # A family without the freezed recipe has nothing frozen and is not asked.
        return _prepared(G, G_ema, arch.freeze_d(D_src, 0) if "freezed" in arch.recipes else _clone(D_src), settings, notes)
    if recipe == "freezed":
        blocks = arch.d_blocks(D_src)
        k = default_freeze_d(arch, D_src) if freeze_d is None else int(freeze_d)
        total = sum(n for _, n in blocks)
        if not 0 <= k <= total:
            raise GanzooError(f"--freeze-d {k}: the discriminator has {total} layers before its 4x4 head")
        settings["freeze_d"] = k
        return _prepared(G, G_ema, arch.freeze_d(D_src, k), settings, notes)
    return _adafm(arch, G, G_ema, D_src, general_g, general_d, adafm_variant == "paper", seed, settings, notes)


def _check_recipe(recipe: str, adafm_variant: str | None) -> None:
    """Refuses an unknown recipe or ``adafm_variant``, and a variant for another recipe."""
    if recipe not in RECIPES:
        raise GanzooError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if adafm_variant is not None and adafm_variant not in ADAFM_VARIANTS:
        raise GanzooError(f"--adafm-variant {adafm_variant}: choose from {', '.join(ADAFM_VARIANTS)}")
    if adafm_variant not in (None, "keep") and recipe != "adafm":
        raise GanzooError(f"--adafm-variant {adafm_variant} applies to --recipe adafm, not {recipe}")


def _prepared(G: Any, G_ema: Any, D: Any, settings: dict, notes: list[str]) -> PreparedNetworks:
    return PreparedNetworks(G, G_ema, D, architecture=architecture_of(G_ema, G, D), settings=settings, notes=notes)


def _transferred(source: GAN, seed: int, allow_random_d: bool, settings: dict, notes: list[str]) -> tuple[Any, Any, Any]:
    """Copies of the source's G and G_ema, and its D (a random one from ``seed + 1`` with
    ``allow_random_d`` when it has none), noting what stood in for what."""
    arch, G_src = source.architecture, source.G_ema
    if source.D is None:
        if not allow_random_d:
            raise GanzooError(
                "the source has no discriminator (some releases ship only G): recipes start D from the source; "
                "pass --allow-random-d to start D from scratch instead"
            )
        D_src = arch.fresh_discriminator(G_src, seed + 1)
        notes.append("the source has no discriminator: D started from a random init (--allow-random-d)")
        settings["random_d"] = True
    else:
        D_src = source.D
    if source.G is None:
        notes.append("the source has no raw G: G started from the source's G_ema")
    return _clone(source.G if source.G is not None else G_src), _clone(G_src), D_src


def _adafm(arch: Architecture, G: Any, G_ema: Any, D_src: Any, general_g: int | None, general_d: int | None,
           paper: bool, seed: int, settings: dict, notes: list[str]) -> PreparedNetworks:  # fmt: skip
    """The ``adafm`` recipe: AdaFM in G's ``general_g`` highest-resolution blocks, D's
    ``general_d`` blocks next to the image frozen (``paper``: the authors' split)."""
    blocks = arch.d_blocks(D_src)
    g_blocks = arch.g_blocks(G_ema)
    default_g, default_d = arch.adafm_paper_defaults if paper else arch.adafm_defaults
    n_g = min(default_g, len(g_blocks) - 1) if general_g is None else int(general_g)
    n_d = min(default_d, len(blocks) - 1) if general_d is None else int(general_d)
    if not 0 <= n_g <= len(g_blocks):
        raise GanzooError(f"--general-g {n_g}: the generator has {len(g_blocks)} blocks")
    if not 0 <= n_d <= len(blocks):
        raise GanzooError(f"--general-d {n_d}: the discriminator has {len(blocks)} blocks before its head")
    resolutions = g_blocks[len(g_blocks) - n_g :]
    frozen_d_layers = sum(n for _, n in blocks[:n_d])
    settings.update(general_g=n_g, general_d=n_d, adafm_resolutions=resolutions, freeze_d=frozen_d_layers,
                    adafm_variant="paper" if paper else "keep")  # fmt: skip
    if paper:
        # One source generator for G and G_ema (the authors' G_ema starts as a copy of their G).
        G, D = arch.adafm_paper(G, D_src, resolutions, seed)
        notes.append(f"--adafm-variant paper: the generator outside its general blocks {resolutions} and D's head "
                     f"rebuilt from seed {seed}, as the AdaFM authors' code builds them")  # fmt: skip
        return _prepared(G, _clone(G), arch.freeze_d(D, frozen_d_layers), settings, notes)
    return _prepared(arch.with_adafm(G, resolutions), arch.with_adafm(G_ema, resolutions),
                     arch.freeze_d(D_src, frozen_d_layers), settings, notes)  # fmt: skip
