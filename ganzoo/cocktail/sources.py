"""The models a merge merges and their samples: the procedural data of every stage.

A source generator is the only data a merge has: image ``n`` of a stream is drawn on the fly from
a latent (and, for a conditional source, a class) seeded by ``(seed, stream, n)``, resampled to
the root's size, so every stage sees the same images again on resume.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.streams import ProceduralImages

# Stream salts: rooting data, union data and evaluation samples never share a latent.
ROOT_STREAM, UNION_STREAM, EVAL_STREAM = 1, 2, 3
_RENDER_CHUNK = 32


@dataclass
class Source:
    """One model to merge.

    Attributes:
        label: how it was given (registry name, Hub id, directory, or ``<in-memory GAN k>``).
        name: its class name in the merged model.
        gan: the loaded checkpoint.
        fingerprint: sha256 of its generator weights (identifies the procedural data).
    """

    label: str
    name: str
    gan: GAN
    fingerprint: str


def _class_name(source: Any, gan: GAN, index: int) -> str:
    registry = (gan.config.get("source") or {}).get("registry") if isinstance(gan.config.get("source"), dict) else None
    if isinstance(source, str) and not os.path.exists(source):
        return source.rstrip("/").split("/")[-1]
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).resolve()
        return path.stem if path.is_file() else path.name
    return str(registry) if registry else f"class{index}"


def load_sources(sources: Sequence[Any], class_names: Sequence[str] | None = None) -> list[Source]:
    """Loads the models to merge (anything :func:`ganzoo.load` takes, or GAN objects), AdaFM
    models folded into their plain family (as ``push`` and ``export`` publish them).

    Args:
        sources: registry names or aliases, Hub ids, checkpoint directories, foreign files or
            :class:`~ganzoo.checkpoint.GAN` objects.
        class_names: the class names (default: the registry name, or the directory name).

    Raises:
        GanzooError: fewer than two sources, an unloadable source, or duplicate class names.
    """
    from ganzoo.api import load
    from ganzoo.metrics.cache import gan_fingerprint

    if len(sources) < 2:
        raise GanzooError("merge: give at least two sources")
    if class_names is not None and len(class_names) != len(sources):
        raise GanzooError(f"merge: {len(class_names)} class names for {len(sources)} sources")
    out = []
    for index, source in enumerate(sources):
        if isinstance(source, GAN):
            gan, label = source, f"<in-memory GAN {index}>"
        else:
            gan, label = load(source, device="cpu"), str(source)
        # As published: an AdaFM-finetuned source becomes its plain family (gamma, beta folded
        # into the kernels; the same images), so the rooted models average like any others.
        gan, _ = gan.architecture.for_upload(gan)
        gan.architecture.require("merge")
        name = class_names[index] if class_names is not None else _class_name(source, gan, index)
        out.append(Source(label, name, gan, gan_fingerprint(gan)))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise GanzooError(f"merge: class names must differ ({', '.join(names)}); pass class_names")
    return out


class SourceSampler:
    """Samples of one source generator at a target size: image ``n`` of stream ``key`` comes
    from the latent (and, for conditional sources, the class) seeded by ``(seed, *key, n)``.

    Args:
        gan: the source.
        resolution, channels: the target image size (resampled / channel-converted if needed).
        seed: the merge seed.
        key: the stream's salt (keeps rooting, union and evaluation samples apart).
        device: where the generator runs (a copy is moved there; the source stays put).
    """

    def __init__(self, gan: GAN, resolution: int, channels: int, seed: int, key: Sequence[int], device: str = "cpu"):
        self.G = gan.G_ema.eval() if gan.device == torch.device(device) else copy.deepcopy(gan.G_ema).to(device).eval()
        self.architecture, self.meta = gan.architecture, gan.metadata
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.seed = int(seed)
        self.key = [int(k) for k in key]

    def _latents(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        z_dim, c_dim = self.meta.latent_dim, self.meta.num_classes
        z = np.empty([len(indices), z_dim], dtype=np.float32)
        c = np.zeros([len(indices), c_dim], dtype=np.float32)
        for row, index in enumerate(indices):
            state = np.random.SeedSequence([self.seed, *self.key, int(index)]).generate_state(1)[0]
            rng = np.random.RandomState(state)
            z[row] = rng.randn(z_dim)
            if c_dim:
                c[row, rng.randint(c_dim)] = 1
        return torch.from_numpy(z), torch.from_numpy(c)

    @torch.no_grad()
    def __call__(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 images ``[N, channels, resolution, resolution]`` of stream ``indices``."""
        device = next(self.G.parameters()).device
        out = []
        for start in range(0, len(indices), _RENDER_CHUNK):
            z, c = self._latents(indices[start : start + _RENDER_CHUNK])
            img = self.architecture.generate(self.G, z.to(device), c.to(device), seeds=(), truncation_psi=1.0,
                                             truncation_cutoff=None, noise_mode="const").float()  # [NCHW]  # fmt: skip
            if img.shape[-1] != self.resolution:
                mode = "area" if img.shape[-1] > self.resolution else "bilinear"
                img = torch.nn.functional.interpolate(img, size=(self.resolution, self.resolution), mode=mode)
            if img.shape[1] != self.channels:
                img = img.mean(dim=1, keepdim=True) if self.channels == 1 else img[:, :1].expand(-1, self.channels, -1, -1)
            out.append((img * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu())
        if not out:
            return torch.zeros([0, self.channels, self.resolution, self.resolution], dtype=torch.uint8)
        return torch.cat(out)


def _stream_definition(sources: Sequence[Source], seed: int, resolution: int, channels: int, kind: str) -> dict:
    return {"kind": kind, "sources": [s.label for s in sources], "fingerprints": [s.fingerprint for s in sources],
            "seed": int(seed), "resolution": int(resolution), "channels": int(channels)}  # fmt: skip


def rooting_stream(source: Source, seed: int, resolution: int, channels: int, device: str = "cpu") -> ProceduralImages:
    """Unlabeled samples of one source (the data of its rooting stage)."""
    sampler = SourceSampler(source.gan, resolution, channels, seed, (ROOT_STREAM,), device)
    return ProceduralImages(lambda idx: (sampler(idx), None), resolution, channels, f"merge-samples:{source.name}",
                            _stream_definition([source], seed, resolution, channels, "merge-rooting"))  # fmt: skip


def union_stream(sources: Sequence[Source], seed: int, resolution: int, channels: int, device: str = "cpu") -> ProceduralImages:
    """Labeled samples of every source: image ``n`` is of class ``n % N`` (source ``n % N``)."""
    samplers = [SourceSampler(s.gan, resolution, channels, seed, (UNION_STREAM, k), device) for k, s in enumerate(sources)]
    num = len(sources)

    def labels(indices: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.from_numpy(indices % num), num).to(torch.float32)

    def render(indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.zeros([len(indices), channels, resolution, resolution], dtype=torch.uint8)
        for k, sampler in enumerate(samplers):
            rows = np.nonzero(indices % num == k)[0]
            if len(rows):
                images[torch.from_numpy(rows)] = sampler(indices[rows] // num)
        return images, labels(indices)

    return ProceduralImages(render, resolution, channels, "merge-samples:" + "+".join(s.name for s in sources),
                            _stream_definition(sources, seed, resolution, channels, "merge-union"),
                            label_fn=labels)  # fmt: skip
