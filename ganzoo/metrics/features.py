"""Feature extractors: images (uint8 ``[N, H, W, C]``) -> feature vectors for the metrics.

=================  ==========================================================================
name               network
=================  ==========================================================================
``inception-fid``  The Inception-v3 of the standard FID (TensorFlow graph of 2015-12-05), 2048-d
                   pool features, with its own TF1-exact bilinear resize to 299x299:
                   torch-fidelity's port (``FeatureExtractorInceptionV3``), whose outputs match
                   the TF graph, so FID values are comparable with published numbers.
``vgg16-pr``       VGG16 fc2 (4096-d, after ReLU) for precision/recall: torch-fidelity's
                   ``FeatureExtractorVGG16`` (torchvision's ImageNet weights, TF1-exact resize
                   to 224x224), the network its own precision/recall uses.
``timm:NAME``      any timm model as a feature extractor (``num_classes=0``: the pooled
                   pre-logits features), at the model's pretrained input size and
                   normalisation; ``timm:NAME@SIZE`` resizes to ``SIZE`` instead.
=================  ==========================================================================

Weights come through ganzoo's Hub layer: first ganzoo's cache, then the Hub repo
``ganzoo/feature-extractors`` (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, the standard HF cache), then
the upstream URL (resumable download), every file checked against its sha256 before use, and
loaded with ``torch.load(weights_only=True)`` (no code runs). timm weights come from the model's
own Hub repo as ``model.safetensors`` and are checked against the sha256 the Hub cache names
their blob by.

``allow_random_weights=True`` builds the same networks with seeded random weights instead
(variance-preserving initialisation so features carry signal), downloads nothing and warns:
for testing pipelines only; the numbers mean nothing. It is never the default.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ganzoo.errors import ChecksumMismatchError, DownloadError, GanzooError

__all__ = [
    "EXTRACTORS",
    "FeatureExtractor",
    "RandomWeightsWarning",
    "WeightsFile",
    "check_extractor_name",
    "fetch_weights",
    "get_extractor",
]

EXTRACTORS = ("inception-fid", "vgg16-pr", "timm:NAME", "pixels[@SIZE]")
HUB_REPO = "ganzoo/feature-extractors"
RANDOM_SEED = 0
#: Default side of the weight-free ``pixels`` extractor.
PIXELS_SIZE = 16
OFFLINE_HINT = " (with no network, --feature-extractor pixels needs no weights)"


class RandomWeightsWarning(UserWarning):
    """A feature extractor runs with random weights: metric values are meaningless."""


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained weight file: where to find it and its sha256.

    Attributes:
        filename: the file name (in ganzoo's cache and in the Hub repo).
        sha256: its full sha256. The upstream names carry its first 8 hex digits, the
            ``torch.hub`` convention, which :func:`fetch_weights` also checks.
        url: the upstream release URL.
        hub_repo: the Hub repo mirroring it (same bytes, same name).
    """

    filename: str
    sha256: str
    url: str
    hub_repo: str = HUB_REPO


# torch-fidelity's conversion of the TF Inception graph (its release v0.2.0).
INCEPTION_WEIGHTS = WeightsFile(
    filename="weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
)
# torchvision's VGG16 ImageNet weights (VGG16_Weights.IMAGENET1K_V1), what torch-fidelity uses.
VGG16_WEIGHTS = WeightsFile(
    filename="vgg16-397923af.pth",
    sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
)


# ------------------------------------------------------------------------------------------------
# Fetching weights


def _extractor_cache() -> Path:
    from ganzoo._io import cache_home

    return cache_home() / "extractors"


def _check_digest(path: Path, sha256: str, origin: str) -> None:
    from ganzoo._io import verify_sha256

    try:
        verify_sha256(path, sha256)
    except ChecksumMismatchError:
        path.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"{origin}: {path.name} does not match its recorded sha256 {sha256}; the file was removed") from None


def fetch_weights(spec: WeightsFile, progress: bool = True) -> Path:
    """Returns a local, sha256-verified copy of a weight file, fetching it when needed.

    Order: ganzoo's cache (``GANZOO_CACHE/extractors``); the Hub repo ``spec.hub_repo`` through
    ``huggingface_hub`` (standard HF cache; ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` honoured); the
    upstream URL (resumable, into ganzoo's cache).

    Args:
        spec: the file.
        progress: show download progress bars.

    Returns:
        The verified file's path.

    Raises:
        DownloadError: neither source could deliver it (the message says why for each).
        ChecksumMismatchError: a delivered file did not match ``spec.sha256`` (it is removed).
    """
    from ganzoo.download import download_url, root_cause
    from ganzoo.hub.reachability import hub_unreachable
    from ganzoo.hub.settings import hub_cache_dir, hub_endpoint, hub_offline

    named = re.fullmatch(r".*-([0-9a-f]{8,})\.\w+", spec.filename)
    if named and not spec.sha256.startswith(named.group(1)):
        # The name's hash prefix is the upstream's own checksum: a mismatch is a bad table entry.
        raise ChecksumMismatchError(f"{spec.filename}: recorded sha256 {spec.sha256} disagrees with the hash in its name")
    local = _extractor_cache() / spec.filename
    if local.is_file():
        _check_digest(local, spec.sha256, "ganzoo cache")
        return local
    problems = []
    offline = hub_offline()
    endpoint = hub_endpoint()
    unreachable = hub_unreachable()  # asked once per process: then the Hub's cache only, no retries
    try:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(spec.hub_repo, spec.filename, cache_dir=str(hub_cache_dir()), endpoint=endpoint,
                                    local_files_only=offline or unreachable is not None, library_name="ganzoo"))  # fmt: skip
        _check_digest(path, spec.sha256, f"{spec.hub_repo} on {endpoint}")
        return path
    except ChecksumMismatchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any Hub failure falls back to the upstream URL
        why = f"{endpoint} unreachable ({unreachable}), not in the local cache" if unreachable else root_cause(exc)
        problems.append(f"Hub {spec.hub_repo}: {why}")
    if offline:
        raise DownloadError(f"{spec.filename}: {problems[0]}; HF_HUB_OFFLINE=1 also rules out the upstream download"
                            f"{OFFLINE_HINT}")  # fmt: skip
    try:
        download_url(spec.url, local, sha256=spec.sha256, progress=progress)
    except DownloadError as exc:
        problems.append(f"upstream: {exc}")
        raise DownloadError(f"{spec.filename}: " + "; ".join(problems)
                            + "; place the file in " + str(_extractor_cache()) + " by hand" + OFFLINE_HINT
                            ) from None  # fmt: skip
    _check_digest(local, spec.sha256, spec.url)
    return local


def _load_state_dict(path: Path) -> dict:
    """Loads a weight file without running code (safetensors, or torch.load weights_only)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - refused globals, truncated files, ...
        raise GanzooError(f"{path}: cannot load weights safely ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise GanzooError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


# ------------------------------------------------------------------------------------------------
# The extractor


class FeatureExtractor:
    """A network that turns uint8 images into feature vectors, with its identity for caching.

    Attributes:
        name: the extractor name (``"inception-fid"``, ``"vgg16-pr"``, ``"timm:NAME"``).
        dim: feature size.
        input_size: the square size images are resized to inside the extractor.
        weights: ``"sha256:<hex>"`` of the pretrained weights, or ``"random:seed<N>"``.
        device: the torch device it runs on.
        batch_size: images per forward pass.
    """

    def __init__(self, name: str, network: Any, dim: int, input_size: int, weights: str, device: Any,
                 forward: Callable, batch_size: int = 32):  # fmt: skip
        self.name = name
        self.network = network
        self.dim = dim
        self.input_size = input_size
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self._forward = forward

    def __repr__(self) -> str:
        return f"FeatureExtractor({self.name!r}, dim={self.dim}, input_size={self.input_size}, weights={self.weights!r})"

    @property
    def random_weights(self) -> bool:
        return self.weights.startswith("random")

    def cache_key(self) -> dict:
        """What determines this extractor's features (part of every feature-cache key)."""
        return {"extractor": self.name, "input_size": self.input_size, "weights": self.weights, "dim": self.dim}

    def key_digest(self) -> str:
        """A short stable digest of :meth:`cache_key` (file names of cached features use it)."""
        return hashlib.sha256(json.dumps(self.cache_key(), sort_keys=True).encode()).hexdigest()[:16]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of uint8 ``[N, H, W, C]`` images (C = 1, 3 or 4) as float32 ``[N, dim]``."""
        import torch

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
            raise GanzooError(f"{self.name}: expected uint8 images [N, H, W, 1|3|4], got {images.dtype} {tuple(images.shape)}")
        out = []
        with torch.no_grad():
            for start in range(0, images.shape[0], self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch_size]))
                batch = batch.to(self.device).permute(0, 3, 1, 2)  # [NCHW]
                if batch.shape[1] == 1:
                    batch = batch.expand(-1, 3, -1, -1)
                elif batch.shape[1] == 4:
                    batch = batch[:, :3]  # alpha is not part of what the networks saw in training
                out.append(self._forward(batch.contiguous()).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def extract(self, batches: Iterable[np.ndarray], total: int | None = None, description: str | None = None,
                progress: bool = True) -> np.ndarray:  # fmt: skip
        """Features of a stream of image batches, with a rich progress bar (img/s, ETA).

        Args:
            batches: uint8 ``[B, H, W, C]`` arrays.
            total: number of images, for the bar's ETA.
            description: the bar's label.
            progress: show the bar (on stderr).

        Returns:
            float32 ``[N, dim]``.
        """
        chunks = []
        with progress_bar(description or self.name, total, progress) as advance:
            for batch in batches:
                chunks.append(self(batch))
                advance(len(batch))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, show: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr with an img/s rate and an ETA; yields ``advance(n)``.

    Where stderr is not a terminal: a plain line every 10 % (and 30 s), not a bar."""
    from ganzoo.download import progress_disabled

    if not show or progress_disabled():
        yield lambda n: None
        return
    from ganzoo import _console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ganzoo._progress import LineProgress, progress

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]  # fmt: skip
    with progress(*columns, console=_console.stderr, transient=False, unit="images", rate_unit="img/s") as bar:
        task = bar.add_task(description, total=total, rate="")
        if isinstance(bar, LineProgress):
            yield lambda n: bar.advance(task, n)
            return

        def advance(n: int) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.1f} img/s" if speed else "")

        yield advance


# ------------------------------------------------------------------------------------------------
# Building extractors


def _random_init(network: Any, seed: int) -> None:
    """Seeded, variance-preserving (He) initialisation: random features that still vary with
    the input (PyTorch's default init shrinks activations layer by layer to nothing)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.zero_()


def _warn_random(name: str) -> None:
    warnings.warn(RandomWeightsWarning(
        f"{name}: random weights (allow_random_weights=True): metric values are meaningless, for testing only"),
        stacklevel=3)  # fmt: skip


def _inception(device: Any, allow_random_weights: bool, progress: bool) -> FeatureExtractor:
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception

    random_marker = object()
    state: Any
    if allow_random_weights:
        state, weights = random_marker, f"random:seed{RANDOM_SEED}"
    else:
        state, weights = _load_state_dict(fetch_weights(INCEPTION_WEIGHTS, progress)), f"sha256:{INCEPTION_WEIGHTS.sha256}"

    class Inception(fidelity_inception.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            if state_dict is random_marker:
                return None  # keep the layers as built; _random_init below seeds them
            return super().load_state_dict(state_dict, strict=True)

    # torch-fidelity fetches its weights inside the constructor with torch.hub (unverified,
    # unrestricted unpickling of a cached file): hand it the state dict loaded above instead.
    with _patched(fidelity_inception, "load_state_dict_from_url", lambda *args, **kwargs: state):
        network = Inception("inception-fid", ["2048"])
    if allow_random_weights:
        _random_init(network, RANDOM_SEED)
        _warn_random("inception-fid")
    network = network.to(device).eval()

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return network(batch)[0]

    return FeatureExtractor("inception-fid", network, 2048, 299, weights, device, forward, batch_size=32)


def _vgg16(device: Any, allow_random_weights: bool, progress: bool) -> FeatureExtractor:
    import torch
    import torch_fidelity.feature_extractor_vgg16 as fidelity_vgg
    import torchvision

    def build(**kwargs):
        vgg = torchvision.models.vgg16(weights=None)
        if allow_random_weights:
            _random_init(vgg, RANDOM_SEED)
        else:
            vgg.load_state_dict(_load_state_dict(fetch_weights(VGG16_WEIGHTS, progress)), strict=True)
        return vgg

    # Same reason as for Inception: torch-fidelity would fetch through torchvision's own loader.
    with _patched(fidelity_vgg, "torchvision_load_pretrained_vgg16", build):
        network = fidelity_vgg.FeatureExtractorVGG16("vgg16-pr", ["fc2_relu"])
    if allow_random_weights:
        _warn_random("vgg16-pr")
    weights = f"random:seed{RANDOM_SEED}" if allow_random_weights else f"sha256:{VGG16_WEIGHTS.sha256}"
    network = network.to(device).eval()

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return network(batch)[0]

    return FeatureExtractor("vgg16-pr", network, 4096, 224, weights, device, forward, batch_size=16)


def _pixels(spec: str, device: Any) -> FeatureExtractor:
    """``pixels[@SIZE]``: the image itself, resized to SIZE x SIZE (default 16; area averaging when
    shrinking, bilinear when enlarging) and scaled to [0, 1], as a ``3·SIZE²`` vector. It needs
    no weights, so it works offline and on a fresh machine; distances in pixel space say little
    about natural images and are not comparable with published FIDs, but they separate simple
    synthetic domains (the bundled starter zoo's) well."""
    import torch

    size_text = spec.partition("@")[2] or str(PIXELS_SIZE)
    if not size_text.isdigit() or not 1 <= int(size_text) <= 256:
        raise GanzooError(f"feature extractor {spec!r}: SIZE must be an integer from 1 to 256")
    size = int(size_text)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(torch.float32) / 255
        if x.shape[-1] > size and x.shape[-2] > size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
        elif x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.flatten(1)

    return FeatureExtractor(f"pixels@{size}", None, 3 * size * size, size, "none", device, forward, batch_size=256)


def _timm_weights(model_name: str, config: dict, progress: bool) -> tuple[Path, str]:
    """Fetches a timm model's ``model.safetensors`` from its Hub repo; verifies its sha256."""
    from ganzoo._io import sha256_file
    from ganzoo.download import root_cause
    from ganzoo.hub.reachability import hub_local_only
    from ganzoo.hub.settings import hub_cache_dir, hub_endpoint

    repo = config.get("hf_hub_id")
    if not repo:
        raise DownloadError(f"timm:{model_name}: no Hub repo for its pretrained weights (only {config.get('url') or 'none'})")
    try:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(repo, "model.safetensors", cache_dir=str(hub_cache_dir()), endpoint=hub_endpoint(),
                                    local_files_only=hub_local_only(), library_name="ganzoo"))  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        raise DownloadError(f"timm:{model_name}: weights from Hub repo {repo}: {root_cause(exc)}") from None
    # LFS files are stored in the HF cache under their sha256: the blob's name is the checksum.
    blob = path.resolve()
    digest = sha256_file(blob)
    if re.fullmatch(r"[0-9a-f]{64}", blob.name) and digest != blob.name:
        blob.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"timm:{model_name}: {repo}/model.safetensors sha256 {digest} != {blob.name}; removed")
    return path, digest


def _timm(spec: str, device: Any, allow_random_weights: bool, progress: bool) -> FeatureExtractor:
    import torch
    import torch.nn.functional as F

    try:
        import timm
    except ImportError:  # pragma: no cover - timm is a dependency
        raise GanzooError("timm feature extractors need the timm package (pip install timm)") from None
    body = spec[len("timm:") :]
    model_name, _, size_text = body.partition("@")
    if not model_name:
        raise GanzooError(f"{spec!r}: give a timm model name, e.g. timm:resnet50")
    if size_text and not size_text.isdigit():
        raise GanzooError(f"{spec!r}: the size after '@' must be a number of pixels")
    if not timm.is_model(model_name):
        close = timm.list_models(f"*{model_name.split('.')[0]}*")[:5]
        raise GanzooError(f"unknown timm model {model_name!r}" + (f"; close: {', '.join(close)}" if close else ""))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        network = timm.create_model(model_name, pretrained=False, num_classes=0)
    config = dict(network.pretrained_cfg)
    if allow_random_weights:
        weights = f"random:seed{RANDOM_SEED}"
        _warn_random(spec)
    else:
        path, digest = _timm_weights(model_name, config, progress)
        # timm loads the file itself (safetensors), dropping the classifier as num_classes=0 asks.
        network = timm.create_model(model_name, pretrained=True, num_classes=0,
                                    pretrained_cfg_overlay={"file": str(path)})  # fmt: skip
        weights = f"sha256:{digest}"
    input_size = int(size_text) if size_text else int(config.get("input_size", (3, 224, 224))[-1])
    mean = torch.tensor(config.get("mean", (0.485, 0.456, 0.406)), device=device).view(1, 3, 1, 1)
    std = torch.tensor(config.get("std", (0.229, 0.224, 0.225)), device=device).view(1, 3, 1, 1)
    mode = "bicubic" if config.get("interpolation") == "bicubic" else "bilinear"
    network = network.to(device).eval()
    with torch.no_grad():
        dim = int(network(torch.zeros(1, 3, input_size, input_size, device=device)).shape[-1])

    def forward(batch: torch.Tensor) -> torch.Tensor:
        x = batch.float() / 255.0
        if x.shape[-1] != input_size or x.shape[-2] != input_size:
            x = F.interpolate(x, size=(input_size, input_size), mode=mode, align_corners=False, antialias=True)
        return network((x - mean) / std).flatten(1)

    return FeatureExtractor(spec, network, dim, input_size, weights, device, forward, batch_size=32)


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


_MEMO: dict[tuple, FeatureExtractor] = {}


def check_extractor_name(name: str) -> None:
    """Raises the error :func:`get_extractor` would for a name it cannot build, building nothing
    (no weights, no network): commands call it first, so that a typo in ``--feature-extractor``
    is its own one-line error before any data is read or model loaded.

    Raises:
        GanzooError: unknown name (with the closest valid one and the list of valid names), a
            bad ``pixels@SIZE`` or ``timm:NAME@SIZE``, or an unknown timm model.
    """
    if name in ("inception-fid", "vgg16-pr"):
        return
    if name == "pixels" or name.startswith("pixels@"):
        size_text = name.partition("@")[2] or str(PIXELS_SIZE)
        if not size_text.isdigit() or not 1 <= int(size_text) <= 256:
            raise GanzooError(f"feature extractor {name!r}: SIZE must be an integer from 1 to 256")
        return
    if name.startswith("timm:"):
        model_name, _, size_text = name[len("timm:") :].partition("@")
        if not model_name:
            raise GanzooError(f"{name!r}: give a timm model name, e.g. timm:resnet50")
        if size_text and not size_text.isdigit():
            raise GanzooError(f"{name!r}: the size after '@' must be a number of pixels")
        try:
            import timm
        except ImportError:  # pragma: no cover - timm is a dependency
            raise GanzooError("timm feature extractors need the timm package (pip install timm)") from None
        if not timm.is_model(model_name):
            close = timm.list_models(f"*{model_name.split('.')[0]}*")[:5]
            raise GanzooError(f"unknown timm model {model_name!r}" + (f"; close: {', '.join(close)}" if close else ""))
        return
    import difflib

    close = difflib.get_close_matches(str(name), ["inception-fid", "vgg16-pr", "pixels"], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise GanzooError(f"unknown feature extractor {name!r}{hint}; use inception-fid, vgg16-pr, timm:MODEL_NAME or pixels[@SIZE]")


def get_extractor(name: str = "inception-fid", device: Any = "cpu", allow_random_weights: bool = False,
                  progress: bool = True) -> FeatureExtractor:  # fmt: skip
    """Builds (or returns the already built) feature extractor ``name`` on ``device``.

    Args:
        name: ``"inception-fid"``, ``"vgg16-pr"`` or ``"timm:NAME"`` (``"timm:NAME@SIZE"``
            resizes to SIZE instead of the model's pretrained input size).
        device: torch device.
        allow_random_weights: build the network with seeded random weights and download
            nothing (prints a :class:`RandomWeightsWarning`). For testing pipelines only:
            metric values are then meaningless. Never the default.
        progress: show download progress bars.

    Returns:
        The :class:`FeatureExtractor`.

    Raises:
        GanzooError: unknown extractor name or timm model.
        DownloadError: the pretrained weights could not be fetched (the message says how to
            place them by hand).
        ChecksumMismatchError: fetched weights do not match their recorded sha256.
    """
    import torch

    device = torch.device(device)
    key = (name, str(device), bool(allow_random_weights))
    if key in _MEMO:
        if allow_random_weights:
            _warn_random(name)
        return _MEMO[key]
    check_extractor_name(name)
    if name == "inception-fid":
        extractor = _inception(device, allow_random_weights, progress)
    elif name == "vgg16-pr":
        extractor = _vgg16(device, allow_random_weights, progress)
    elif name.startswith("timm:"):
        extractor = _timm(name, device, allow_random_weights, progress)
    elif name == "pixels" or name.startswith("pixels@"):
        extractor = _pixels(name, device)
    else:
        raise GanzooError(f"unknown feature extractor {name!r}; use inception-fid, vgg16-pr, timm:MODEL_NAME or pixels[@SIZE]")
    _MEMO[key] = extractor
    return extractor
