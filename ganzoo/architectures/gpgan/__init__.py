"""The GP-GAN plug-in (``"gpgan"``): the ResNet GANs of Mescheder, Geiger & Nowozin (ICML 2018,
LMescheder/GAN_stability), trained there with the R1 gradient penalty; the AdaFM paper (Zhao et
al., ICML 2020) transfers their ImageNet network.

- Networks: :mod:`ganzoo.architectures.gpgan.networks`, one ``Generator``/``Discriminator``
  class pair whose ``arch`` argument selects ``resnet``, ``resnet2``, ``resnet3`` or
  ``resnet4``, so ``config.json`` records the variant beside the other constructor arguments.
- Reader: :mod:`ganzoo.architectures.gpgan.reader`, format ``"gan-stability-pt"`` (the
  family's :meth:`GPGAN.readers`).

Classes: a model with ``nlabels > 1`` is class-conditional (``num_classes = nlabels``); the
releases with one label (CelebA, CelebA-HQ, LSUN: ``nlabels = 1``) are unconditional for ganzoo
(``num_classes = 0``) and are sampled with label 0, as GAN_stability samples them. Latents are
standard normal, as GAN_stability's ``z`` (``zdist`` "gauss"); ganzoo draws them per seed with
the default convention (``np.random.RandomState(seed).randn(z_dim)``). There is no truncation
trick: ``truncation_psi`` is ignored (``metadata().truncation`` is False). Training: GAN_stability's
objective (:mod:`ganzoo.architectures.gpgan.objective`) and settings in the shared loop; AdaFM:
:mod:`ganzoo.architectures.gpgan.adafm` (``"gpgan-adafm"``).
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch

from ganzoo._build import build_strict
from ganzoo.architectures import Architecture, Metadata, register_architecture
from ganzoo.architectures._layers import FreezableD, cpu_state
from ganzoo.architectures.gpgan.adafm import ARCHITECTURE as ARCHITECTURE_ADAFM, AdaFMGenerator
from ganzoo.architectures._adafm import fold_for_upload
from ganzoo.errors import GanzooError
from ganzoo.readers.base import Reader
from ganzoo.architectures.gpgan.networks import ARCHS, Discriminator, Generator, ResBlock, labels_from_onehot
from ganzoo.architectures.gpgan.reader import FORMAT, read_gan_stability_file, sniff

__all__ = ["ARCHS", "Discriminator", "GPGAN", "Generator", "ResBlock", "labels_from_onehot"]


class GPGAN(FreezableD, Architecture):
    """GP-GAN: ``G(z, y)`` with integer labels ``y``, images in [-1, 1]; no truncation. Trains with
    GAN_stability's objective and settings; recipes full, freezed (D's convolutions from the
    image), adafm (Zhao et al.'s blocks) and scratch; merges (class-conditioning copies the one
    label's embedding and logit row to every class)."""

    name = "gpgan"
    upstream_names = "GAN_stability's networks"
    generator_class = Generator
    discriminator_class = Discriminator
    recipes = ("full", "freezed", "adafm", "scratch")
    mergeable = True
    formats = (FORMAT,)
    #: AdaFM's default split, both variants: the 3 highest-resolution G blocks (resnet_3..5 at
    #: 128², Zhao et al.'s "general" part) and D's first resolution (``conv_img`` and
    #: ``resnet_0_*`` at 128²), what Zhao et al.'s code freezes (its ``D_Layer_FIX = 2``).
    adafm_defaults = (3, 1)
    adafm_paper_defaults = (3, 1)

    def readers(self) -> Sequence[Reader]:
        return (Reader(FORMAT, sniff, lambda path, config: read_gan_stability_file(path, config=config), takes_config=True),)

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Metadata:
        nlabels = int(generator_kwargs["nlabels"])
        return Metadata(
            resolution=int(generator_kwargs["size"]),
            channels=3,
            num_classes=nlabels if nlabels > 1 else 0,  # one label: unconditional, sampled with y = 0
            latent_dim=int(generator_kwargs["z_dim"]),
            truncation=False,
            class_names=list(class_names) if class_names else None,
        )

    def generate(self, G: Any, z: torch.Tensor, c: torch.Tensor, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> torch.Tensor:  # fmt: skip
        # No truncation and no noise inputs: psi, cutoff and noise mode change nothing.
        return G(z, labels_from_onehot(c))

    def styles(self, G: Any, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``[N, 1, z_dim + embed_size]``: the latent and the class embedding G reads (merge's
        grid interpolates these)."""
        return torch.cat([z, G.embedding(labels_from_onehot(c))], dim=1).unsqueeze(1)

    def render_styles(self, G: Any, styles: torch.Tensor) -> torch.Tensor:
        code = styles[:, 0]
        return G(code[:, : G.z_dim], code[:, G.z_dim :])

    # -- training: GAN_stability's objective and settings --------------------------------------

    def training_defaults(self, generator_kwargs: dict, batch: int, recipe: str | None = None) -> dict[str, Any]:
        # configs/default.yaml of GAN_stability: standard loss, R1 on reals with reg_param 10
        # (r1_gamma 20 in ganzoo's gamma/2 convention) in every D step, lr 1e-4 for both, Adam
        # betas (0, 0.99) (its 'adam' optimizer), parameter averaging with beta 0.999 per step.
        return {"lr_G": 1e-4, "lr_D": 1e-4, "betas": (0.0, 0.99), "r1_gamma": 20.0, "G_reg_interval": None,
                "D_reg_interval": None, "pl_weight": 0.0, "style_mixing_prob": 0.0, "ema_beta": 0.999,
                "ema_rampup": None}  # fmt: skip

    def objective(self, G: Any, D: Any, augment_pipe: Any, options: Any, penalty: Any) -> Any:
        from ganzoo.architectures.gpgan.objective import GANStabilityLoss

        return GANStabilityLoss(G, D, augment_pipe, r1_gamma=options.r1_gamma, penalty=penalty)

    def widest(self, kwargs: dict, resolution: int) -> int:
        return int(kwargs["nfilter"])  # the full-resolution layers are nfilter wide

    # -- recipes -------------------------------------------------------------------------------

    def g_blocks(self, G: Any) -> list[int]:
        return [res for res, _ in G.blocks_by_resolution()]

    def with_adafm(self, G: Any, resolutions: Sequence[int]) -> Any:
        return AdaFMGenerator.from_generator(G, resolutions)

    def adafm_paper(self, G: Any, D: Any, resolutions: Sequence[int], seed: int) -> tuple[Any, Any]:
        """Zhao et al.'s split as their code builds it (``Flower_[h]our.py`` with
        ``models/resnet2_AdaFM.py``): from the source only the general blocks (at
        ``resolutions``), G's ``conv_img`` and D's convolutions are taken; G's ``fc``,
        ``embedding`` and lower blocks (the "specific" part) and D's ``fc`` head are rebuilt
        from ``seed`` with one label (the target data is unconditional there). In the general
        part only AdaFM's γ and β train (``adafm_only``: kernels, biases, shortcuts and
        ``conv_img`` frozen). The specific part keeps GP-GAN's layout (their code puts a
        StyleGAN-like network there), so the result folds to a plain ``gpgan``."""
        g_kwargs = {k: v for k, v in copy.deepcopy(G.init_kwargs).items() if k not in ("adafm_resolutions", "adafm_only")}
        d_kwargs = {k: v for k, v in copy.deepcopy(D.init_kwargs).items() if k != "freeze_layers"}
        g_kwargs["nlabels"] = d_kwargs["nlabels"] = 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            g_state = cpu_state(Generator(**g_kwargs))
            d_state = cpu_state(Discriminator(**d_kwargs))
        general = dict(G.blocks_by_resolution())
        kept = ["conv_img."] + [f"{name}." for res in resolutions for name, _ in general[int(res)]]
        source = cpu_state(G)
        g_state.update({k: v for k, v in source.items() if k.startswith(tuple(kept))})
        d_state.update({k: v for k, v in cpu_state(D).items() if not k.startswith("fc.")})
        plain = build_strict(Generator, g_kwargs, g_state, "generator (--adafm-variant paper)")
        G_new = AdaFMGenerator.from_generator(plain, resolutions, adafm_only=True)
        return G_new, build_strict(Discriminator, d_kwargs, d_state, "discriminator (--adafm-variant paper)")

    def discriminator_kwargs(self, G: Any) -> dict:
        return _d_kwargs(G)

    # -- merge ---------------------------------------------------------------------------------

    def conditional(self, net: Any, role: str, num_classes: int, seed: int) -> Any:
        """The one-label network with ``num_classes`` labels, each a copy of the one it had: G's
        embedding row, D's ``fc`` row. Every class then gives the old images and logits."""
        if net.nlabels != 1:
            raise GanzooError(f"merge: the root must have one label (it has {net.nlabels})")
        kwargs = copy.deepcopy(net.init_kwargs)
        kwargs["nlabels"] = int(num_classes)
        state = cpu_state(net)
        # G's fc reads [z, embedding]: its shape does not depend on the number of labels.
        for key in ("fc.weight", "fc.bias") if role == "D" else ("embedding.weight",):
            state[key] = state[key].expand(int(num_classes), *state[key].shape[1:]).clone()
        built = build_strict(type(net), kwargs, state, "class-conditional network")
        return built.requires_grad_(False).train(net.training)



def _d_kwargs(G: Any) -> dict:
    """A discriminator for generator ``G``'s images and labels (same variant and widths)."""
    keep = ("arch", "z_dim", "nlabels", "size", "embed_size", "nfilter")
    return {k: G.init_kwargs[k] for k in keep if k in G.init_kwargs}


class GPGANAdaFM(GPGAN):
    """A GP-GAN finetuned with AdaFM: published and exported folded (plain ``gpgan``)."""

    name = ARCHITECTURE_ADAFM
    generator_class = AdaFMGenerator
    formats = ()  # made by the adafm recipe, never read from upstream files

    def for_upload(self, gan: Any) -> tuple[Any, list[str]]:
        return fold_for_upload(gan)


register_architecture(GPGAN())
register_architecture(GPGANAdaFM())
