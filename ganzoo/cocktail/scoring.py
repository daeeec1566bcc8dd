"""Scoring a merged model: per-class and union FID/KID against samples of each source
(:func:`evaluate_merge`, ``merge --eval``) and the sample grid of its classes (:func:`sample_grid`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ganzoo._io import atomic_path
from ganzoo.checkpoint import GAN
from ganzoo.cocktail.sources import EVAL_STREAM, Source, SourceSampler
from ganzoo.errors import GanzooError

_GRID_COLUMNS = 8


def _nhwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


def evaluate_merge(gan: GAN, sources: Sequence[Source], num_gen: int = 1000, seed: int = 0,
                   feature_extractor: str = "inception-fid", allow_random_weights: bool = False,
                   device: str = "cpu", progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """FID and KID of each class of a merged model (and of the union of its classes) against
    samples of each source generator.

    The references are *generated* images (``num_gen`` samples of each source, from a stream no
    training stage saw), not the sources' real training data, which merging never has.

    Args:
        gan: the merged conditional GAN (class ``k`` = ``sources[k]``).
        sources: the merged sources.
        num_gen: images per class and per source.
        seed: seed of the samples (the merged model's seeds are ``seed·10⁶ + i``).
        feature_extractor: :func:`ganzoo.metrics.features.get_extractor` name.
        allow_random_weights: random-weight extractor (tests; values are then only relative).
        device: where the extractor runs.
        progress: progress bars.

    Returns:
        ``{"fid": {class: {source: value}}, "kid": {...}, "fid_union", "kid_union", "num_gen",
        "extractor", "reference"}``; ``fid[k][k]`` is class k against its own source.
    """
    from ganzoo.metrics.features import get_extractor
    from ganzoo.metrics.scores import fid, kid

    if num_gen < 2:
        raise GanzooError("merge --eval: --num-gen must be at least 2")
    extractor = get_extractor(feature_extractor, device=device, allow_random_weights=allow_random_weights, progress=progress)
    res, channels = gan.metadata.resolution, gan.metadata.channels
    indices = np.arange(num_gen, dtype=np.int64)
    reference = [extractor(_nhwc(SourceSampler(s.gan, res, channels, seed, (EVAL_STREAM, k), device)(indices)))
                 for k, s in enumerate(sources)]  # fmt: skip
    seeds = [seed * 10**6 + i for i in range(num_gen)]
    generated = [extractor(gan.sample(seeds=seeds, class_idx=k, noise_mode="const")) for k in range(len(sources))]
    subset = min(num_gen, 1000)
    names = [s.name for s in sources]
    out: dict[str, Any] = {"fid": {}, "kid": {}}
    for k, gen_features in enumerate(generated):
        out["fid"][names[k]] = {names[j]: fid(ref, gen_features) for j, ref in enumerate(reference)}
        out["kid"][names[k]] = {names[j]: kid(ref, gen_features, subset_size=subset, seed=seed) for j, ref in enumerate(reference)}
    all_ref, all_gen = np.concatenate(reference), np.concatenate(generated)
    out["fid_union"] = fid(all_ref, all_gen)
    out["kid_union"] = kid(all_ref, all_gen, subset_size=min(len(all_ref), 1000), seed=seed)
    out.update(num_gen=int(num_gen), extractor=extractor.name, random_weights=extractor.random_weights,
               reference="generated samples of each source GAN (no real data)")  # fmt: skip
    return out


def metric_records(evaluation: dict[str, Any]) -> dict[str, dict]:
    """config.json ``metrics`` entries (the card's model-index) from :func:`evaluate_merge`."""
    what = f"{evaluation['num_gen']} generated samples of source"
    records = {}
    for metric in ("fid", "kid"):
        for name, row in evaluation[metric].items():
            records[f"{metric}_{name}"] = {"value": float(row[name]), "dataset": f"{what} {name}",
                                           "source": f"ganzoo merge --eval ({evaluation['extractor']})"}  # fmt: skip
        records[f"{metric}_union"] = {"value": float(evaluation[f"{metric}_union"]), "dataset": f"{what}s (union)",
                                      "source": f"ganzoo merge --eval ({evaluation['extractor']})"}  # fmt: skip
    return records


# ----------------------------------------------------------------------------------------------
# The sample grid


@torch.no_grad()
def sample_grid(gan: GAN, seed: int = 0, columns: int = _GRID_COLUMNS) -> np.ndarray:
    """uint8 ``[H, W, C]`` grid: one row per class (same latents in every row), then for each
    pair of neighbouring classes a row interpolating in W from class a to class b with one
    latent, and a style-mixing row (coarse styles of a class-a sample with the fine styles of
    a class-b sample, and the reverse)."""
    G, arch, meta = gan.G_ema, gan.architecture, gan.metadata
    num = meta.num_classes
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.randn(columns, meta.latent_dim).astype(np.float32)).to(gan.device)
    eye = torch.eye(num, device=gan.device)

    def ws_of(latents: torch.Tensor, cls: int) -> torch.Tensor:
        return arch.styles(G, latents, eye[cls].expand(len(latents), -1))

    rows = [arch.render_styles(G, ws_of(z, k)) for k in range(num)]
    cutoff = max(ws_of(z[:1], 0).shape[1] // 2, 1)
    for a in range(num):
        b = (a + 1) % num
        if num == 2 and a == 1:
            break
        w_a, w_b = ws_of(z[:1], a), ws_of(z[:1], b)
        steps = torch.linspace(0, 1, columns, device=gan.device).reshape(-1, 1, 1)
        rows.append(arch.render_styles(G, w_a.lerp(w_b, steps)))
        pairs = columns // 4
        wa, wb = ws_of(z[:pairs], a), ws_of(z[pairs : 2 * pairs], b)
        ab = torch.cat([wa[:, :cutoff], wb[:, cutoff:]], dim=1)
        ba = torch.cat([wb[:, :cutoff], wa[:, cutoff:]], dim=1)
        mixed = torch.stack([wa, wb, ab, ba], dim=1).flatten(0, 1)
        rows.append(arch.render_styles(G, mixed))
    images = [(r.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy() for r in rows]
    res, channels = meta.resolution, meta.channels
    grid = np.zeros([len(images) * res, columns * res, channels], dtype=np.uint8)
    for r, row in enumerate(images):
        for c, img in enumerate(row[:columns]):
            grid[r * res : (r + 1) * res, c * res : (c + 1) * res] = img
    return grid


def write_grid(grid: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(tmp, format="PNG")
