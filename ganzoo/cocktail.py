"""``ganzoo.merge`` (this module is ``ganzoo.cocktail``): GAN Cocktail (Avrahami, Lischinski & Fried, ECCV 2022) and its baselines.

N pretrained GANs become one class-conditional GAN of the root's size without their training
data: the source generators are the only data ("procedural data", drawn on the fly and seeded).

* Stage 1, model rooting: for every source ``i`` other than the root ``r``, a copy of GAN_r (G
  and D) is trained on samples of G_i (resampled to r's resolution), giving GAN_{r→i}, which
  shares r's ancestry and stays close to r in weight space.
* Stage 2, merging: the weights of r and every r→i are averaged (G, G_ema, D), the average is
  made class-conditional with N classes (:func:`make_conditional`, which keeps the averaged
  behaviour exactly at the start), and the result is fine-tuned on samples of every G_i labeled
  with its class.

Baselines with the same engine and the same budget (images shown to D: ``(N-1)·root_kimg +
merge_kimg``), all trained on the labeled samples of every source: ``scratch`` (random init of
the root's architecture), ``transfer`` (TransferGAN: the root made conditional), ``freezed``
(transfer with FreezeD) and ``ewc`` (transfer plus the Fisher-weighted penalty
``λ Σ F_k (θ_k − θ_S,k)²`` with the Fisher of the root's own G/D under the BCE loss).

The output directory ``OUT``::

    OUT/merge.json          the plan (sources, root, method, budgets, seed, engine options)
    OUT/stages/NN-NAME/     one training run per stage (a ganzoo.finetune run directory)
    OUT/stages/ewc-fisher.safetensors   (ewc) the anchor weights and their Fisher
    OUT/config.json, *.safetensors, README.md   the merged conditional checkpoint (config.json last)
    OUT/merge_summary.json  classes, stages, weight distances d(r, i) and d(r, r→i), metrics
    OUT/merge_grid.png      rows per class, cross-class interpolation, style mixing between classes

Every stage writes atomic snapshots; ``resume=True`` skips completed stages and continues the
running one from its newest snapshot, giving the bytes of an uninterrupted merge.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ganzoo import __version__
from ganzoo._io import atomic_path, atomic_write_text, check_output
from ganzoo._build import build_strict
from ganzoo.checkpoint import CARD_NAME, CONFIG_NAME, GAN, WEIGHT_FILES
from ganzoo.errors import GanzooError
from ganzoo.streams import ProceduralImages

METHODS = ("cocktail", "scratch", "transfer", "ewc", "freezed")
PLAN_FILE = "merge.json"
SUMMARY_FILE = "merge_summary.json"
GRID_FILE = "merge_grid.png"
STAGES = "stages"
FISHER_FILE = "ewc-fisher.safetensors"
# Stream salts: rooting data, union data and evaluation samples never share a latent.
_ROOT_STREAM, _UNION_STREAM, _EVAL_STREAM = 1, 2, 3
_GRID_COLUMNS = 8
_RENDER_CHUNK = 32


# ----------------------------------------------------------------------------------------------
# Sources and their samples


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
    """Loads the models to merge (anything :func:`ganzoo.load` takes, or GAN objects).

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
    sampler = SourceSampler(source.gan, resolution, channels, seed, (_ROOT_STREAM,), device)
    return ProceduralImages(lambda idx: (sampler(idx), None), resolution, channels, f"merge-samples:{source.name}",
                            _stream_definition([source], seed, resolution, channels, "merge-rooting"))  # fmt: skip


def union_stream(sources: Sequence[Source], seed: int, resolution: int, channels: int, device: str = "cpu") -> ProceduralImages:
    """Labeled samples of every source: image ``n`` is of class ``n % N`` (source ``n % N``)."""
    samplers = [SourceSampler(s.gan, resolution, channels, seed, (_UNION_STREAM, k), device) for k, s in enumerate(sources)]
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


# ----------------------------------------------------------------------------------------------
# Weight averaging and the conditional conversion


def average_gans(gans: Sequence[GAN]) -> GAN:
    """The element-wise mean of the weights (G, G_ema and D) of GANs of one architecture.

    A GAN without a raw G contributes its G_ema in G's place. Non-float buffers are taken from
    the first GAN. The config is the first GAN's.

    Raises:
        GanzooError: the GANs differ in tensor names or shapes, or one has no D.
    """
    def mean_of(nets: list[torch.nn.Module], role: str) -> torch.nn.Module:
        states = [net.state_dict() for net in nets]
        first = states[0]
        for state in states[1:]:
            if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
                raise GanzooError(f"merge: the {role} networks to average differ in architecture")
        avg = {}
        for key, tensor in first.items():
            if tensor.is_floating_point():
                avg[key] = torch.stack([s[key].detach().cpu().float() for s in states]).mean(dim=0).to(tensor.dtype)
            else:
                avg[key] = tensor.detach().cpu().clone()
        return build_strict(type(nets[0]), copy.deepcopy(nets[0].init_kwargs), avg, role)

    if any(g.D is None for g in gans):
        raise GanzooError("merge: every model to average needs a discriminator")
    G_ema = mean_of([g.G_ema for g in gans], "generator")
    G = mean_of([g.G if g.G is not None else g.G_ema for g in gans], "generator")
    D = mean_of([g.D for g in gans], "discriminator")
    return GAN(G_ema, G, D, config=copy.deepcopy(gans[0].config))


def make_conditional(gan: GAN, class_names: Sequence[str], seed: int = 0) -> GAN:
    """An unconditional GAN turned class-conditional with ``len(class_names)`` classes whose
    G output and D logits are, for every class, those of ``gan`` (up to float rounding).

    Args:
        gan: an unconditional GAN with D.
        class_names: the classes (recorded as ``class_names``).
        seed: seed of the new parameters' random init.

    Raises:
        GanzooError: ``gan`` is conditional already, or has no D.
    """
    if gan.metadata.num_classes:
        raise GanzooError(f"merge: the root must be unconditional (it has {gan.metadata.num_classes} classes)")
    if gan.D is None:
        raise GanzooError("merge: the root has no discriminator (rooting trains D as well)")
    num = len(class_names)
    arch = gan.architecture
    arch.require("merge")
    G_ema = arch.conditional(gan.G_ema, "G_ema", num, seed)
    G = arch.conditional(gan.G, "G", num, seed) if gan.G is not None else None
    D = arch.conditional(gan.D, "D", num, seed)
    config = copy.deepcopy(gan.config)
    config["class_names"] = list(class_names)
    return GAN(G_ema, G, D, config=config)


# ----------------------------------------------------------------------------------------------
# EWC


def fisher_information(gan: GAN, num_samples: int = 256, batch: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the GAN's own G and D under the BCE loss.

    The loss is ``softplus(-D(G(z)))`` (the non-saturating G loss, i.e. BCE with the source's
    own samples labeled real); the Fisher of each parameter is the mean over minibatches of
    its squared gradient.

    Returns:
        ``{"G.<name>": F, "D.<name>": F}`` for every parameter of the raw G (or G_ema) and D.
    """
    G = copy.deepcopy(gan.G if gan.G is not None else gan.G_ema).requires_grad_(True)
    meta = gan.metadata
    D = copy.deepcopy(gan.D).requires_grad_(True)
    params = {f"G.{k}": p for k, p in G.named_parameters()} | {f"D.{k}": p for k, p in D.named_parameters()}
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    gen = torch.Generator().manual_seed(seed)
    rounds = max(num_samples // batch, 1)
    for _ in range(rounds):
        z = torch.randn([batch, meta.latent_dim], generator=gen)
        c = torch.zeros([batch, meta.num_classes])
        img = gan.architecture.generate(G, z, c, seeds=(), truncation_psi=1.0, truncation_cutoff=None, noise_mode="const")
        loss = torch.nn.functional.softplus(-D(img, c)).mean()
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (key, _), grad in zip(params.items(), grads):
            if grad is not None:
                fisher[key] += grad.detach().square() / rounds
    return fisher


def _conditional_fisher(fisher: dict[str, torch.Tensor], uncond: GAN, cond: GAN) -> dict[str, torch.Tensor]:
    """The Fisher of the unconditional source mapped onto the conditional model's parameters:
    inherited entries keep theirs (rescaled where :func:`make_conditional` rescaled the weight),
    new entries get 0 (they are free to learn the classes), and so does D's output layer, which
    the projection head re-parameterizes."""
    G_old = uncond.G if uncond.G is not None else uncond.G_ema
    G_new = cond.G if cond.G is not None else cond.G_ema
    rescaled = {f"G.{name}": how for name, how in cond.architecture.rescaled_inputs(G_old, G_new).items()}
    out = {}
    for prefix, net in (("G", G_new), ("D", cond.D)):
        for key, param in net.named_parameters():
            name = f"{prefix}.{key}"
            value = torch.zeros_like(param)
            old = fisher.get(name)
            if old is not None and old.shape == param.shape:
                value = old.clone()
            elif name in rescaled and old is not None:
                columns, scale = rescaled[name]
                value[:, :columns] = old / scale**2
            out[name] = value
    return out


def write_ewc_anchor(path: Path, source: GAN, cond: GAN, num_samples: int, seed: int) -> Path:
    """Writes the EWC penalty file of :class:`~ganzoo.train.loss.AnchorPenalty`: the
    conditional model's starting weights (``anchor.G.*``, ``anchor.D.*``) and their Fisher
    (``fisher.G.*``, ``fisher.D.*``), atomically."""
    from safetensors.torch import save_file

    fisher = _conditional_fisher(fisher_information(source, num_samples=num_samples, seed=seed), source, cond)
    tensors = {}
    for prefix, net in (("G", cond.G if cond.G is not None else cond.G_ema), ("D", cond.D)):
        for key, param in net.named_parameters():
            tensors[f"anchor.{prefix}.{key}"] = param.detach().cpu().contiguous().clone()
            tensors[f"fisher.{prefix}.{key}"] = fisher[f"{prefix}.{key}"].contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    return path


# ----------------------------------------------------------------------------------------------
# Evaluation


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
    reference = [extractor(_nhwc(SourceSampler(s.gan, res, channels, seed, (_EVAL_STREAM, k), device)(indices)))
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


def _metric_records(evaluation: dict[str, Any]) -> dict[str, dict]:
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


def _write_grid(grid: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(tmp, format="PNG")


# ----------------------------------------------------------------------------------------------
# The merge


@dataclass
class _Stage:
    name: str  # folder under OUT/stages
    kind: str  # "root" or "union"
    kimg: float
    recipe: str
    source: int | None = None  # rooting: the source index


def _plan_stages(method: str, num: int, root: int, root_kimg: float, merge_kimg: float) -> list[_Stage]:
    if method == "cocktail":
        others = [i for i in range(num) if i != root]
        stages = [_Stage(f"{n:02d}-root-{i}", "root", root_kimg, "full", i) for n, i in enumerate(others)]
        return stages + [_Stage(f"{len(others):02d}-merge", "union", merge_kimg, "full")]
    budget = (num - 1) * root_kimg + merge_kimg  # the images cocktail shows D in both stages
    recipe = {"scratch": "scratch", "transfer": "full", "ewc": "full", "freezed": "freezed"}[method]
    return [_Stage(f"00-{method}", "union", budget, recipe)]


def _stage_done(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file()  # finetune writes OUT/config.json last


def _run_stage(path: Path, source: Callable[[], GAN], data: ProceduralImages, recipe: str, kimg: float,
               settings: dict, progress: bool, callback, label: str = "merge") -> GAN:  # fmt: skip
    """Runs (or continues, or skips) one finetune stage; returns its final checkpoint (``label``:
    what its progress says)."""
    from ganzoo.train.runner import finetune, latest_snapshot

    if not _stage_done(path):
        if latest_snapshot(path) is not None:
            finetune(resume=path, data=data, progress=progress, progress_label=label, callback=callback, device=settings.get("device", "cpu"),
                     resume_hint=settings.get("resume_hint"), tick_kimg=settings.get("tick_kimg", 4.0),
                     keep_snapshots=settings.get("keep_snapshots"))  # fmt: skip
        else:
            shutil.rmtree(path, ignore_errors=True)  # killed before its first snapshot: nothing to keep
            finetune(source(), data, path, recipe=recipe, kimg=kimg, progress=progress, progress_label=label,
                     callback=callback, **settings)  # fmt: skip
    return GAN.load(path)


def _distances(root: GAN, sources: Sequence[Source], rooted: dict[int, GAN], root_index: int) -> dict[str, dict]:
    from ganzoo.analysis import distance

    out = {}
    for i, source in enumerate(sources):
        if i == root_index:
            continue
        row: dict[str, Any] = {}
        try:
            row["d(r,i)"] = distance(root, source.gan)["mean"]
        except GanzooError as exc:  # another architecture: no weight-space distance to the root
            row["d(r,i)"] = None
            row["note"] = f"d(r, i) undefined: {exc}"
        if i in rooted:
            row["d(r,r->i)"] = distance(root, rooted[i])["mean"]
        out[source.name] = row
    return out


def _say(progress: bool, text: str) -> None:
    if progress:
        from ganzoo._console import note

        note(text)


def merge(
    sources: Sequence[Any],
    out: str | os.PathLike,
    root: str | int | None = None,
    root_kimg: float = 100.0,
    merge_kimg: float = 100.0,
    batch: int | None = None,
    seed: int = 0,
    aug: str = "ada",
    resume: bool = False,
    method: str = "cocktail",
    eval: bool = False,
    progress: bool = True,
    class_names: Sequence[str] | None = None,
    num_gen: int = 1000,
    eval_options: dict | None = None,
    ewc_lambda: float = 1e3,
    ewc_samples: int = 256,
    callback: Callable | None = None,
    **engine: Any,
) -> Path:
    """Merges pretrained GANs into one class-conditional GAN (GAN Cocktail, or a baseline).

    Args:
        sources: the models (registry names or aliases, Hub ids, checkpoint directories,
            foreign files, or :class:`~ganzoo.checkpoint.GAN` objects); class ``k`` is
            ``sources[k]``.
        out: the output directory (a checkpoint directory in the end; see the module docs).
        root: the root model, by class name, source label or index (default: the first).
            It must be unconditional and have a discriminator.
        root_kimg: length of each rooting stage (thousands of images shown to D).
        merge_kimg: length of the union fine-tuning stage.
        batch: minibatch size (None: the engine's default for the resolution).
        seed: the seed of everything (samples, new parameters, training).
        aug: ``'ada'``, ``'fixed'`` or ``'none'``.
        resume: continue ``out`` if it holds an unfinished merge of the same plan.
        method: ``'cocktail'``, or a baseline at the same budget: ``'scratch'``,
            ``'transfer'``, ``'ewc'``, ``'freezed'``.
        eval: compute per-class and union FID/KID against samples of each source
            (:func:`evaluate_merge`) into ``config.json``, the card and the summary.
        progress: progress bars and stage headers.
        class_names: class names (default: from the sources).
        num_gen: ``eval``: images per class and per source.
        eval_options: further :func:`evaluate_merge` arguments (``feature_extractor``,
            ``allow_random_weights``, ``device``).
        ewc_lambda: ``ewc``: λ of the Fisher penalty.
        ewc_samples: ``ewc``: generated samples for the Fisher estimate.
        callback: ``callback(trainer, stats)`` after every minibatch of every stage.
        **engine: further :func:`ganzoo.finetune` settings (``snap``, ``lr``, ``gamma``,
            ``batch_gpu``, ``ema_kimg``, ``device``, ``tick_kimg``, ...).

    Returns:
        ``out``.

    Raises:
        GanzooError: unknown method, bad sources or root, an existing ``out`` without
            ``resume``, or a plan that differs from the one ``out`` was started with.
    """
    from ganzoo.train import checks
    from ganzoo.train.runner import default_batch

    if method not in METHODS:
        raise GanzooError(f"unknown merge method {method!r}; choose from {', '.join(METHODS)}")
    for flag, value in (("--root-kimg", root_kimg), ("--merge-kimg", merge_kimg)):
        checks.check_number(flag, value, low=0, open_low=True)
    if aug not in ("ada", "fixed", "none"):
        raise GanzooError(f"--aug must be ada, fixed or none, not {aug!r}")
    if aug == "fixed" and engine.get("p") is None:
        raise GanzooError("--aug fixed needs p (the augmentation probability)")
    if eval and num_gen < 2:
        raise GanzooError("merge --eval: --num-gen must be at least 2")
    if eval:
        from ganzoo.metrics.cache import check_num_samples

        check_num_samples(num_gen)  # before stage 1, not after the training
    # What a stage (or --eval, after every stage) would refuse is refused now, before the work.
    if "device" in engine:
        engine["device"] = checks.check_device(engine["device"])
    checks.check_settings(batch=batch, seed=seed, aug=aug, **engine)
    if method == "ewc":
        checks.check_number("ewc_lambda", ewc_lambda, low=0)
        checks.check_number("ewc_samples", ewc_samples, low=1, integer=True)
    if eval:
        unknown = sorted(set(eval_options or {}) - {"feature_extractor", "allow_random_weights", "device"})
        if unknown:
            raise GanzooError(f"merge: eval_options {', '.join(unknown)}: use feature_extractor, allow_random_weights, device")
        ev = dict(eval_options or {})
        checks.check_extractor(str(ev.get("feature_extractor", "inception-fid")), bool(ev.get("allow_random_weights")),
                               device=checks.check_device(ev.get("device", "cpu")), progress=progress, what="merge --eval")  # fmt: skip
    out = Path(out)
    if not resume:  # before the work: a missing or empty folder that takes files
        check_output(out, "dir", hint="choose another --out, or continue it with --resume")
    loaded = load_sources(sources, class_names)
    root_index = _root_index(root, loaded)
    root_gan = loaded[root_index].gan
    if root_gan.metadata.num_classes:
        raise GanzooError(f"merge: the root {loaded[root_index].label} must be unconditional")
    if root_gan.D is None:
        raise GanzooError(f"merge: the root {loaded[root_index].label} has no discriminator; choose another --root")
    res, channels = root_gan.metadata.resolution, root_gan.metadata.channels
    names = [s.name for s in loaded]
    batch = int(batch) if batch is not None else default_batch(res)
    stages = _plan_stages(method, len(loaded), root_index, float(root_kimg), float(merge_kimg))
    plan = {
        "method": method, "sources": [s.label for s in loaded], "fingerprints": [s.fingerprint for s in loaded],
        "class_names": names, "root": root_index, "root_kimg": float(root_kimg), "merge_kimg": float(merge_kimg),
        "batch": batch, "seed": int(seed), "aug": aug, "engine": {k: v for k, v in sorted(engine.items())},
        "ewc": {"lambda": float(ewc_lambda), "samples": int(ewc_samples)} if method == "ewc" else None,
        "stages": [{"name": s.name, "kind": s.kind, "kimg": s.kimg, "recipe": s.recipe, "source": s.source} for s in stages],
        "ganzoo_version": __version__,
    }  # fmt: skip
    _start_or_check(out, plan)
    if _stage_done(out):
        return out
    settings = dict(engine, batch=batch, seed=int(seed), aug=aug, resume_hint=f"the same merge command and --resume (into {out})")
    device = str(engine.get("device", "cpu"))  # the sources stay on the CPU; their samplers run here
    stage_dir = out / STAGES
    stage_dir.mkdir(exist_ok=True)
    rooted: dict[int, GAN] = {}
    final: GAN | None = None
    for number, stage in enumerate(stages, 1):
        path = stage_dir / stage.name
        what = f"rooting {names[root_index]} -> {names[stage.source]}" if stage.kind == "root" else f"{method}: union of {', '.join(names)}"
        _say(progress, f"stage {number}/{len(stages)}: {what} ({stage.kimg:g} kimg)")
        if stage.kind == "root":
            data = rooting_stream(loaded[stage.source], seed, res, channels, device)
            rooted[stage.source] = _run_stage(path, lambda: root_gan, data, stage.recipe, stage.kimg, settings, progress,
                                              callback, label=f"merge stage {number}/{len(stages)}")  # fmt: skip
            continue
        data = union_stream(loaded, seed, res, channels, device)
        stage_settings = dict(settings)
        if method == "ewc":
            fisher_path = stage_dir / FISHER_FILE
            if not fisher_path.is_file():
                write_ewc_anchor(fisher_path, root_gan, make_conditional(root_gan, names, seed), ewc_samples, seed)
            stage_settings.update(penalty_file=str(fisher_path.resolve()), penalty_weight=float(ewc_lambda))

        def start() -> GAN:
            base = average_gans([root_gan, *(rooted[i] for i in sorted(rooted))]) if method == "cocktail" else root_gan
            return make_conditional(base, names, seed)

        final = _run_stage(path, start, data, stage.recipe, stage.kimg, stage_settings, progress, callback,
                           label=f"merge stage {number}/{len(stages)}")  # fmt: skip
    summary = {
        "method": method, "classes": names, "sources": [s.label for s in loaded], "root": names[root_index],
        "stages": plan["stages"], "distances": _distances(root_gan, loaded, rooted, root_index) if rooted else {},
    }  # fmt: skip
    _finish(out, final, loaded, root_index, plan, summary, eval, num_gen, eval_options, progress)
    return out


def _root_index(root: str | int | None, sources: Sequence[Source]) -> int:
    if root is None:
        return 0
    if isinstance(root, int) or (isinstance(root, str) and root.isdigit() and int(root) < len(sources)):
        index = int(root)
        if not 0 <= index < len(sources):
            raise GanzooError(f"--root {root}: there are {len(sources)} sources")
        return index
    for i, source in enumerate(sources):
        if root in (source.name, source.label):
            return i
    raise GanzooError(f"--root {root!r} is not one of the sources ({', '.join(s.name for s in sources)})")


#: The flag of each plan entry (what a resumed merge must be given as it was started).
_PLAN_FLAGS = {"method": "--method", "sources": "SOURCES", "fingerprints": "SOURCES (other weights)",
               "class_names": "--class-names", "root": "--root", "root_kimg": "--root-kimg", "merge_kimg": "--merge-kimg",
               "batch": "--batch", "seed": "--seed", "aug": "--aug", "ewc": "ewc_lambda/ewc_samples"}  # fmt: skip
#: Engine settings a resumed merge may change (they change where and how it runs, not what it is).
_ENGINE_MAY_CHANGE = ("device", "tick_kimg", "keep_snapshots")


def _plan_differences(plan: dict, recorded: dict) -> list[str]:
    """``FLAG VALUE (the merge's: VALUE)`` for each setting of ``plan`` that differs from the
    recorded one (the stages only when nothing else explains them)."""

    def shown(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    out = []
    for key, value in plan.items():
        theirs = recorded.get(key)
        if key in ("ganzoo_version", "stages"):
            continue
        if key == "engine":
            mine_e = {k: v for k, v in (value or {}).items() if k not in _ENGINE_MAY_CHANGE}
            theirs_e = {k: v for k, v in (theirs or {}).items() if k not in _ENGINE_MAY_CHANGE}
            for name in sorted(set(mine_e) | set(theirs_e)):
                if mine_e.get(name) != theirs_e.get(name):
                    out.append(f"{name} {shown(mine_e.get(name))} (the merge's: {shown(theirs_e.get(name))})")
            continue
        if value == theirs:
            continue
        flag = _PLAN_FLAGS.get(key, key)
        out.append(flag if isinstance(value, (list, dict)) else f"{flag} {shown(value)} (the merge's: {shown(theirs)})")
    if not out and plan.get("stages") != recorded.get("stages"):
        out.append("its stages")
    return out


def _start_or_check(out: Path, plan: dict) -> None:
    """Writes the plan of a new merge, or checks that an existing one is the same merge."""
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        recorded = json.loads(plan_path.read_text(encoding="utf-8"))
        differ = _plan_differences(json.loads(json.dumps(plan)), recorded)
        if differ:
            raise GanzooError(f"{out}: cannot resume with {', '.join(differ)}: it was started as another merge; "
                              "resume it with its own settings, or use another --out")  # fmt: skip
        return
    if out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out}: not a merge directory (no {PLAN_FILE})")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan_path, json.dumps(plan, sort_keys=True, indent=2) + "\n")


def _finish(out: Path, final: GAN, sources: Sequence[Source], root_index: int, plan: dict, summary: dict,
            evaluate: bool, num_gen: int, eval_options: dict | None, progress: bool) -> None:  # fmt: skip
    """Writes the merged checkpoint into ``out`` (config.json last), its summary, grid and card."""
    from ganzoo.modelcard import render_card

    config = copy.deepcopy(final.config)
    stage_lineage = config.get("lineage") or []
    steps = [{"stage": s["name"], "kind": s["kind"], "kimg": s["kimg"], "recipe": s["recipe"],
              "source": None if s["source"] is None else sources[s["source"]].label} for s in plan["stages"]]  # fmt: skip
    config["lineage"] = list(copy.deepcopy(sources[root_index].gan.config.get("lineage") or [])) + [{
        "parent": ", ".join(s.label for s in sources), "recipe": f"merge:{plan['method']}", "operation": "merge",
        "method": plan["method"], "sources": [s.label for s in sources], "class_names": [s.name for s in sources],
        "root": sources[root_index].label, "root_kimg": plan["root_kimg"], "merge_kimg": plan["merge_kimg"],
        "stages": steps, "batch": plan["batch"], "seed": plan["seed"], "aug": plan["aug"],
        "final_stage": stage_lineage[-1] if stage_lineage else None,
    }]  # fmt: skip
    config["class_names"] = [s.name for s in sources]
    config["source"] = {"merge": [s.label for s in sources]}
    config["license"] = sources[root_index].gan.config.get("license", "unknown")
    config.pop("metrics", None)
    if evaluate:
        _say(progress, f"evaluating: FID/KID of each class against {num_gen} samples of each source")
        evaluation = evaluate_merge(final, sources, num_gen=num_gen, seed=plan["seed"], progress=progress, **(eval_options or {}))
        summary["eval"] = evaluation
        config["metrics"] = _metric_records(evaluation)
        config["merge_eval"] = evaluation
    gan = GAN(final.G_ema, final.G, final.D, config=config)
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, sort_keys=True, indent=2) + "\n")
    _write_grid(sample_grid(gan, seed=plan["seed"]), out / GRID_FILE)
    # The checkpoint files go into OUT beside the plan and stages, so they are written one by
    # one (each atomically) through a complete copy; config.json, which marks OUT complete, last.
    tmp_dir = out / f".{CONFIG_NAME}.checkpoint.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    gan.save(tmp_dir, card=str(render_card(gan.config, name=str(out))))  # `ganzoo push` renders it for its repo
    for name in [*WEIGHT_FILES.values(), CARD_NAME, CONFIG_NAME]:
        if (tmp_dir / name).is_file():
            with atomic_path(out / name) as target:
                shutil.copyfile(tmp_dir / name, target)
    shutil.rmtree(tmp_dir, ignore_errors=True)
