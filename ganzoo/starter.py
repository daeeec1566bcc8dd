"""The bundled starter zoo: small checkpoints that ship inside the package, so the main jobs
(``generate``, ``rank``, ``finetune``, ``merge``) run on a fresh machine with no network.

Five 32x32 models, trained here on CPU with ganzoo itself (``python scripts/train_starter_zoo.py``).
Three unconditional StyleGAN2s:

* ``primitives-ps-stylegan2-32``: pretrained on synthetic Primitives-PS images (Baek & Shim,
  CVPR 2022), the generic privacy-free source;
* ``discs-stylegan2-32`` and ``stripes-stylegan2-32``: two narrow, clearly different synthetic
  domains (a soft disc on a plain background; coloured sinusoidal stripes), so that ``rank`` has
  something to choose between and ``merge`` something to merge, and so that the filter diversity
  of a generic source can be compared with a narrow one of the same size.

and two class-conditional models of the other architectures, whose classes are the three
starter domains (:data:`CLASSES`: discs, stripes, Primitives-PS), so ``--class discs`` works
offline: ``gpgan-starter-32`` (a GP-GAN, GAN_stability's ``resnet`` layout: widths doubling
from 16 at 32² to 128 at 4²) and
``biggan-starter-32`` (a BigGAN at 32²).

They are small demonstration models, not research-grade checkpoints. The two narrow domains
are defined here (:func:`render_domain`) so that targets for them can be made anywhere
(``ganzoo synth`` makes the paper's four kinds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The narrow toy domains of the starter zoo (the paper's kinds live in :mod:`ganzoo.synth`).
DOMAINS = ("discs", "stripes")
RESOLUTION = 32
DOMAIN_SEED = 0


@dataclass(frozen=True)
class StarterModel:
    """How one bundled model is trained."""

    name: str
    data: str  # ``synth:KIND``, ``domain:NAME`` or ``classes:NAME,NAME,...``
    description: str
    architecture: str = "stylegan2"
    #: Constructor arguments of G and D (``pretrain``'s small StyleGAN2 when empty).
    generator: dict | None = None
    discriminator: dict | None = None
    #: Training settings over the architecture's defaults.
    options: dict | None = None


MODELS = (
    StarterModel("primitives-ps-stylegan2-32", "synth:primitives-ps",
                 "pretrained on synthetic Primitives-PS images (no real images)"),  # fmt: skip
    StarterModel("discs-stylegan2-32", "domain:discs", "trained on a narrow synthetic domain: one soft disc on a plain background"),
    StarterModel("stripes-stylegan2-32", "domain:stripes", "trained on a narrow synthetic domain: coloured sinusoidal stripes"),
    StarterModel("gpgan-starter-32", "classes:discs,stripes,primitives-ps",
                 "trained class-conditionally on three synthetic domains: discs, stripes, Primitives-PS (no real images)",
                 "gpgan", {"arch": "resnet", "z_dim": 64, "nlabels": 3, "size": 32, "embed_size": 32, "nfilter": 16,
                           "nfilter_max": 128},
                 {"arch": "resnet", "z_dim": 64, "nlabels": 3, "size": 32, "embed_size": 32, "nfilter": 16,
                  "nfilter_max": 128},
                 # GAN_stability's objective and average, at 4x its learning rate and batch 16: its
                 # 1e-4 (tuned for ~10^5 iterations) left G near its init after the ~800 steps of
                 # 25 kimg at batch 32 here
                 {"lr_G": 4e-4, "lr_D": 4e-4, "batch": 16}),  # fmt: skip
    StarterModel("biggan-starter-32", "classes:discs,stripes,primitives-ps",
                 "trained class-conditionally on three synthetic domains: discs, stripes, Primitives-PS (no real images)",
                 "biggan", {"G_ch": 16, "dim_z": 64, "bottom_width": 4, "resolution": 32, "G_attn": "0", "n_classes": 3,
                            "shared_dim": 32, "hier": True},
                 {"D_ch": 16, "resolution": 32, "D_attn": "0", "n_classes": 3},
                 # G's EMA from 1000 minibatches on, as the release's CIFAR recipe (--ema_start 1000)
                 {"ema_start_kimg": 32.0}),  # fmt: skip
)

#: The classes of the class-conditional starter models, in label order: the two toy domains
#: and the synthetic Primitives-PS kind.
CLASSES = ("discs", "stripes", "primitives-ps")


def render_domain(name: str, indices, resolution: int = RESOLUTION, seed: int = DOMAIN_SEED) -> np.ndarray:
    """Images of a narrow toy domain, uint8 ``[N, R, R, 3]``; image i depends only on (name, seed, i).

    ``discs``: one soft-edged disc of random colour, radius (15-35 % of the side) and position
    on a random gray background. ``stripes``: a sinusoidal grating of random orientation,
    frequency (1.5-4 periods per side) and phase, between two random colours.
    """
    if name not in DOMAINS:
        from ganzoo.errors import GanzooError

        raise GanzooError(f"unknown toy domain {name!r}; choose from {', '.join(DOMAINS)}")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    kind = DOMAINS.index(name)
    params = np.stack([np.random.default_rng([seed, int(i), 1000 + kind]).random(9) for i in indices]) if len(indices) else np.zeros([0, 9])
    yy, xx = (np.mgrid[0:resolution, 0:resolution] + 0.5) / resolution  # [R, R] in (0, 1)
    p = params[:, :, None, None]
    if name == "discs":
        cx, cy = 0.3 + 0.4 * p[:, 0], 0.3 + 0.4 * p[:, 1]
        radius = 0.15 + 0.2 * p[:, 2]
        mask = 1 / (1 + np.exp((np.hypot(xx - cx, yy - cy) - radius) * resolution * 1.5))  # ~1 px soft edge
        background = 0.1 + 0.8 * p[:, 3]
        color = params[:, 4:7, None, None]
        img = background[:, None] * (1 - mask[:, None]) + color * mask[:, None]
    else:
        angle = np.pi * p[:, 0]
        freq = 1.5 + 2.5 * p[:, 1]
        phase = 2 * np.pi * p[:, 2]
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        c0 = params[:, 3:6, None, None]
        c1 = np.roll(params[:, 3:6], 1, axis=1)[:, :, None, None] * 0.5 + params[:, 6:7, None, None] * 0.5
        img = c0 * wave[:, None] + c1 * (1 - wave[:, None])
    return np.clip(np.rint(img.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)


def domain_stream(name: str, resolution: int = RESOLUTION, channels: int = 3, seed: int = DOMAIN_SEED):
    """A toy domain as an endless training stream (:class:`ganzoo.streams.ProceduralImages`)."""
    from ganzoo.streams import ProceduralImages, rgb_batch
    from ganzoo.train.pretrain import DOMAIN_PREFIX

    def render(indices: np.ndarray):
        return rgb_batch(render_domain(name, indices, resolution, seed), channels), None

    return ProceduralImages(render, resolution, channels, f"{DOMAIN_PREFIX}{name}", {"domain": name, "seed": seed, "version": 1})


def write_domain(name: str, n: int, out: str | os.PathLike, resolution: int = RESOLUTION, seed: int = DOMAIN_SEED) -> Path:
    """Writes ``n`` images of a toy domain as PNGs into a new folder (atomically)."""
    from PIL import Image

    from ganzoo._io import atomic_directory

    out = Path(out)
    with atomic_directory(out) as tmp:
        for start in range(0, n, 256):
            batch = render_domain(name, range(start, min(start + 256, n)), resolution, seed)
            for offset, img in enumerate(batch):
                Image.fromarray(img).save(tmp / f"{start + offset:08d}.png")
    return out


def _render_named(name: str, indices: np.ndarray, resolution: int, seed: int) -> np.ndarray:
    """Images ``indices`` of a toy domain or of a :mod:`ganzoo.synth` kind (uint8 ``[N, R, R, 3]``)."""
    if name in DOMAINS:
        return render_domain(name, indices, resolution, seed)
    from ganzoo.synth._render import render

    return render(name, indices, resolution, seed)


def classes_stream(names=CLASSES, resolution: int = RESOLUTION, channels: int = 3, seed: int = DOMAIN_SEED):
    """A class-conditional training stream over starter domains: draw ``n`` is image ``n // K`` of
    domain ``n % K`` (``K = len(names)``) with the one-hot label of class ``n % K``. ``names`` are
    toy domains (:data:`DOMAINS`) or :mod:`ganzoo.synth` kinds (e.g. ``primitives-ps``)."""
    import torch

    from ganzoo.streams import ProceduralImages, rgb_batch
    from ganzoo.train.pretrain import CLASSES_PREFIX

    names = tuple(names)
    count = len(names)

    def labels(indices: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.from_numpy(indices % count), count).to(torch.float32)

    def render(indices: np.ndarray):
        images = np.zeros([len(indices), resolution, resolution, 3], dtype=np.uint8)
        for k, name in enumerate(names):
            rows = np.nonzero(indices % count == k)[0]
            if len(rows):
                images[rows] = _render_named(name, indices[rows] // count, resolution, seed)
        return rgb_batch(images, channels), labels(indices)

    definition = {"classes": list(names), "seed": seed, "version": 1}
    return ProceduralImages(render, resolution, channels, CLASSES_PREFIX + ",".join(names), definition, label_fn=labels)


def build_model(model: StarterModel):
    """An untrained GAN (seeded with 0) for a non-StyleGAN2 starter model, with its class names."""
    import torch

    from ganzoo.architectures import get_architecture
    from ganzoo.checkpoint import GAN
    from ganzoo.train.pretrain import CLASSES_PREFIX, OWN_LICENSE

    family = get_architecture(model.architecture)
    torch.manual_seed(0)
    G = family.generator_class(**model.generator)
    D = family.discriminator_class(**model.discriminator)
    config = {"license": OWN_LICENSE}
    if model.data.startswith(CLASSES_PREFIX):
        config["class_names"] = model.data[len(CLASSES_PREFIX) :].split(",")
    return GAN(G.eval(), None, D.eval(), config=config)
