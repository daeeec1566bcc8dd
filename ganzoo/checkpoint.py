"""The ganzoo checkpoint directory and the :class:`GAN` bundle.

A checkpoint directory (also the layout of a Hub repo) holds::

    config.json                 format_version, architecture, constructor kwargs, files + sha256,
                                source, lineage, training, license (sorted keys, indent 2)
    generator.safetensors       the EMA generator (what users sample from)
    discriminator.safetensors   the discriminator, when known
    generator_raw.safetensors   the non-EMA generator, when known
    README.md                   the model card, when there is one

Tensor names are the StyleGAN2-ADA state-dict names. Loading is strict and verifies the sha256
recorded for every weight file.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ganzoo import __version__
from ganzoo._build import build_strict  # also imported from here (ganzoo.train.recipes)
from ganzoo._io import atomic_directory, sha256_file, verify_sha256
from ganzoo._safetensors_mmap import load_safetensors
from ganzoo._safetensors_write import save_file  # sorted metadata: the same bytes every time
from ganzoo.errors import CheckpointError, ConversionError, GanzooError
from ganzoo.architectures import Metadata, architecture_of, get_architecture, known_architectures

# 2: config.json holds the architecture-neutral "metadata" block beside the per-role kwargs.
# Directories of format 1 (no metadata) load as they are; saving writes format 2.
FORMAT_VERSION = 2
CONFIG_NAME = "config.json"
GENERATOR_FILE = "generator.safetensors"
GENERATOR_RAW_FILE = "generator_raw.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
CARD_NAME = "README.md"
WEIGHT_FILES = {"G_ema": GENERATOR_FILE, "G": GENERATOR_RAW_FILE, "D": DISCRIMINATOR_FILE}


def config_metadata(config: dict) -> Metadata:
    """The architecture-neutral metadata of a ``config.json``: its ``metadata`` block (format 2),
    or, for format 1, what its architecture reads from the generator's kwargs."""
    block = config.get("metadata")
    if isinstance(block, dict):
        return Metadata(**block)
    return get_architecture(config["architecture"]).metadata(config["generator"], config.get("class_names"))


def dump_config(config: dict) -> str:
    """Serializes a config the one way ganzoo writes it: sorted keys, indent 2, final newline."""
    return json.dumps(config, sort_keys=True, indent=2) + "\n"


def is_checkpoint_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory holding a ``config.json``."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_NAME).is_file()


def _state_dict_for_file(net: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous tensors that share no memory.
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in net.state_dict().items()}


class GAN:
    """A generator (EMA and raw) and a discriminator, with the config they came with.

    Attributes:
        G_ema: the EMA generator, used for sampling.
        G: the non-EMA generator, or None when unknown.
        D: the discriminator, or None when unknown.
        config: the ``config.json`` content (kwargs, source, lineage, license, ...).
    """

    def __init__(
        self,
        G_ema: nn.Module,
        G: nn.Module | None = None,
        D: nn.Module | None = None,
        config: dict | None = None,
    ):
        self.G_ema = G_ema
        self.G = G
        self.D = D
        config = copy.deepcopy(config or {})
        config.setdefault("format_version", FORMAT_VERSION)
        # From the networks themselves, never from a default or a stale config.
        config["architecture"] = architecture_of(G_ema, G, D)
        config["generator"] = copy.deepcopy(G_ema.init_kwargs)
        config["discriminator"] = copy.deepcopy(D.init_kwargs) if D is not None else None
        self.architecture = get_architecture(config["architecture"])
        config["metadata"] = self.architecture.metadata(config["generator"], config.get("class_names")).to_dict()
        config.setdefault("source", {})
        config.setdefault("lineage", [])
        config.setdefault("training", None)
        config.setdefault("license", "unknown")
        self.config = config

    @property
    def metadata(self) -> Metadata:
        """The architecture-neutral facts of this GAN (resolution, channels, classes, latent size)."""
        return self.architecture.metadata(self.config["generator"], self.class_names)

    def __repr__(self) -> str:
        meta = self.metadata
        parts = [f"{self.architecture.name}", f"{meta.resolution}x{meta.resolution}", f"classes={meta.num_classes}"]
        parts.append("G_ema" + (", G" if self.G is not None else "") + (", D" if self.D is not None else ""))
        return f"GAN({', '.join(parts)})"

    @property
    def device(self) -> torch.device:
        return next(self.G_ema.parameters()).device

    @property
    def class_names(self) -> list[str] | None:
        return self.config.get("class_names")

    def to(self, device: str | torch.device) -> "GAN":
        """Moves every network to ``device``; returns self."""
        if torch.device(device) == self.device:
            return self
        for net in (self.G_ema, self.G, self.D):
            if net is not None:
                net.to(device)
        return self

    def networks(self) -> dict[str, nn.Module]:
        """The networks that are present, by role (``G_ema``, ``G``, ``D``)."""
        return {k: v for k, v in (("G_ema", self.G_ema), ("G", self.G), ("D", self.D)) if v is not None}

    # ------------------------------------------------------------------------------------------
    # Sampling

    def class_index(self, class_idx: int | str | None, option: str = "class_idx") -> int | None:
        """Resolves a class given by index or by name (``config['class_names']``).

        Args:
            class_idx: a class index, a class name, or None (for unconditional models).
            option: how the caller spells the class in its errors: the keyword ``class_idx``
                in Python, ``--class`` on the command line.
        """
        c_dim = self.metadata.num_classes
        if class_idx is None:
            if c_dim > 0:
                names = self.class_names
                hint = f" ({', '.join(names)})" if names else f" (0..{c_dim - 1})"
                raise GanzooError(f"this model is conditional with {c_dim} classes: choose one with {option}{hint}")
            return None
        if c_dim == 0:
            raise GanzooError(f"this model is unconditional: {option} does not apply")
        if isinstance(class_idx, str) and not class_idx.lstrip("-").isdigit():
            names = self.class_names or []
            if class_idx not in names:
                raise GanzooError(f"unknown class {class_idx!r}; classes: {', '.join(names) or '(unnamed)'}")
            return names.index(class_idx)
        idx = int(class_idx)
        if not 0 <= idx < c_dim:
            raise GanzooError(f"class index {idx} out of range 0..{c_dim - 1}")
        return idx

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        seeds: Sequence[int] | None = None,
        truncation_psi: float = 1.0,
        class_idx: int | str | None = None,
        noise_mode: str = "const",
        batch_size: int = 8,
        truncation_cutoff: int | None = None,
        compile: bool = False,
    ) -> np.ndarray:
        """Generates images as uint8 ``[N, H, W, C]``.

        Each image depends only on its seed: its latent is
        ``np.random.RandomState(seed).randn(latent_dim)`` (the architecture's ``latents``), the convention of the official StyleGAN2
        scripts, so a seed shows the same image here as there (with ``noise_mode='const'``).

        Args:
            n: number of images (seeds ``0..n-1``) when ``seeds`` is not given.
            seeds: one seed per image.
            truncation_psi: truncation strength, 1 = off.
            class_idx: class index or name, for conditional models.
            noise_mode: 'const', 'random' (seeded by each image's seed) or 'none'.
            batch_size: images per forward pass. The same seeds, batch size and device give
                the same bytes; another batch size may change float rounding in the batched
                matrix products, i.e. a pixel by one level at most in practice.
            truncation_cutoff: truncate only the first this many ``ws``.
            compile: run ``G_ema`` through ``torch.compile`` (:mod:`ganzoo.compile`; compiled in
                place, once per batch shape, kept for later calls). Faster for many images;
                pixels agree with the eager default up to float rounding (a level at most), not
                byte for byte. Falls back to eager, with one warning, where unavailable.
        """
        if seeds is None:
            if n is None:
                raise GanzooError("sample: give n or seeds")
            seeds = list(range(n))
        seeds = [int(s) for s in seeds]
        if batch_size < 1:
            raise GanzooError("sample: batch_size must be >= 1")
        G = self.G_ema
        if compile:
            from ganzoo.compile import compile_generator

            compile_generator(G)
        device = self.device
        cls = self.class_index(class_idx)
        meta = self.metadata
        out = []
        # Sampling is inference, whatever mode the network was left in (a generator with batch
        # norm samples from its running statistics, as after loading); the mode is restored.
        was_training = G.training
        G.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(seeds), batch_size):
                    chunk = seeds[start : start + batch_size]
                    z = torch.from_numpy(self.architecture.latents(chunk, meta.latent_dim)).to(device=device, dtype=torch.float32)
                    c = torch.zeros([len(chunk), meta.num_classes], device=device)
                    if cls is not None:
                        c[:, cls] = 1
                    img = self.architecture.generate(G, z, c, seeds=chunk, truncation_psi=truncation_psi,
                                                     truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)  # fmt: skip
                    img = (img.float().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
                    out.append(img.cpu().numpy())
        finally:
            G.train(was_training)
        return np.concatenate(out)

    # ------------------------------------------------------------------------------------------
    # Saving and loading

    def save(self, directory: str | os.PathLike, overwrite: bool = False, card: str | None = None) -> Path:
        """Writes the checkpoint directory atomically (complete or not at all).

        Args:
            directory: target directory; must not exist unless ``overwrite``.
            overwrite: replace an existing directory (only once the new one is complete).
            card: model-card text for ``README.md``, if any.

        Returns:
            The directory path.
        """
        directory = Path(directory)
        config = copy.deepcopy(self.config)
        config["format_version"] = FORMAT_VERSION
        config["ganzoo_version"] = __version__
        config["metadata"] = self.metadata.to_dict()  # derived anew: class_names may have been set since
        files = {}
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            for role, net in self.networks().items():
                name = WEIGHT_FILES[role]
                save_file(_state_dict_for_file(net), tmp / name, metadata={"format": "pt", "role": role})
                files[name] = {"sha256": sha256_file(tmp / name), "size": (tmp / name).stat().st_size}
            config["files"] = files
            (tmp / CONFIG_NAME).write_text(dump_config(config), encoding="utf-8")
            if card is not None:
                (tmp / CARD_NAME).write_text(card, encoding="utf-8")
            # What was written must load (strictly) before it takes the directory's name.
            try:
                GAN.load(tmp, verify=False)
            except GanzooError as exc:
                raise CheckpointError(f"{directory}: not saved: the written checkpoint does not load back ({exc})") from None
        self.config = config
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu", verify: bool = True,
             missing_ok: bool = False) -> "GAN":
        """Loads a checkpoint directory strictly.

        Args:
            directory: a ganzoo checkpoint directory.
            device: where to put the networks.
            verify: check every weight file against the sha256 in ``config.json``.
            missing_ok: load what is there when recorded ``G``/``D`` files are absent (a pull
                with ``--generator-only``); the generator is always required.

        Raises:
            CheckpointError: no or invalid ``config.json``, or a recorded file is missing.
            ChecksumMismatchError: a weight file's sha256 differs from the recorded one.
            ConversionError: tensors do not match the recorded constructor kwargs.
        """
        directory = Path(directory)
        config = read_config(directory)
        architecture = get_architecture(config["architecture"])
        files = config.get("files", {})
        nets: dict[str, nn.Module | None] = {"G_ema": None, "G": None, "D": None}
        for role, name in WEIGHT_FILES.items():
            path = directory / name
            if name not in files:
                if path.exists():
                    raise CheckpointError(f"{path}: weight file not recorded in config.json")
                continue
            if not path.is_file():
                if missing_ok and role != "G_ema":
                    continue  # a partial pull (--generator-only): the generator alone
                raise CheckpointError(f"{path}: missing (config.json records it)")
            if verify:
                verify_sha256(path, files[name].get("sha256"))
            state_dict = load_safetensors(path)
            kwargs = config["discriminator"] if role == "D" else config["generator"]
            if kwargs is None:
                raise CheckpointError(f"{directory / CONFIG_NAME}: {name} present but no constructor kwargs for it")
            nets[role] = build_strict(architecture.network_class(role), kwargs, state_dict, str(path))
        if nets["G_ema"] is None:
            raise CheckpointError(f"{directory}: no {GENERATOR_FILE}")
        if missing_ok:  # record only what was loaded
            config = {**config, "files": {WEIGHT_FILES[role]: files[WEIGHT_FILES[role]] for role, net in nets.items()
                                          if net is not None}}  # fmt: skip
        gan = cls(nets["G_ema"], nets["G"], nets["D"], config=config)
        return gan.to(device)

    # ------------------------------------------------------------------------------------------
    # huggingface_hub's names (its ModelHubMixin's): thin aliases of ganzoo.load and ganzoo.push.
    # ganzoo.api and ganzoo.publish sit above this module, so they are looked up by name.

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, revision: str | None = None,
                        device: str | torch.device = "cpu", verify: bool = True) -> "GAN":  # fmt: skip
        """:func:`ganzoo.load` under huggingface_hub's name: ``GAN.from_pretrained("org/name",
        revision="v1")`` pulls the Hub repo (``"hf-hub:org/name"``, registry names, checkpoint
        directories and foreign files work too, as with ``ganzoo.load``)."""
        return _hub_function("load", "ganzoo.load")(name_or_path, device=device, verify=verify, revision=revision)

    def push_to_hub(self, repo_id: str, private: bool = False, revision: str | None = None, token: str | None = None,
                    commit_message: str | None = None, samples: bool = True) -> str:  # fmt: skip
        """:func:`ganzoo.push` of this GAN under huggingface_hub's name: it is saved to a temporary
        checkpoint directory, then pushed to ``repo_id`` in one commit (card, samples grid).

        Returns:
            The URL of the commit.
        """
        import tempfile

        from ganzoo.registry import is_repo_id

        if not is_repo_id(repo_id):
            raise GanzooError(f"{repo_id!r}: a Hub repo id looks like 'org/name'")
        with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as tmp:
            directory = self.save(Path(tmp) / repo_id.split("/")[1])
            return _hub_function("push", "ganzoo.push")(
                directory, repo_id, private=private, revision=revision, token=token, commit_message=commit_message,
                samples=samples,
            )  # fmt: skip


def read_config(directory: str | os.PathLike) -> dict:
    """Reads and validates ``config.json`` of a checkpoint directory."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    if not path.is_file():
        raise CheckpointError(f"{directory}: no config.json (not a ganzoo checkpoint directory)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    version = config.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: missing format_version")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version} is newer than this ganzoo ({FORMAT_VERSION}); upgrade ganzoo")
    if config.get("architecture") not in known_architectures():
        known = ", ".join(sorted(known_architectures()))
        raise CheckpointError(f"{path}: unknown architecture {config.get('architecture')!r} (known: {known})")
    if not isinstance(config.get("generator"), dict):
        raise CheckpointError(f"{path}: missing generator constructor kwargs")
    if not isinstance(config.get("files", {}), dict):
        raise CheckpointError(f"{path}: 'files' must be an object")
    return config


def gan_from_networks(
    networks: dict[str, tuple[dict, dict[str, torch.Tensor]]], what: str, config: dict | None = None, *,
    architecture: str,
) -> GAN:
    """Builds a :class:`GAN` from ``role -> (init_kwargs, state_dict)`` (roles ``G_ema``, ``G``,
    ``D``) with the networks of ``architecture``."""
    family = get_architecture(architecture)
    built: dict[str, nn.Module] = {}
    for role, (kwargs, state_dict) in networks.items():
        built[role] = build_strict(family.network_class(role), kwargs, state_dict, what)
    if "G_ema" not in built:
        raise ConversionError(f"{what}: no generator found")
    return GAN(built["G_ema"], built.get("G"), built.get("D"), config=config)


def check_sampling_options(architecture: str, meta: Any, truncation_psi: float, noise_mode: str,
                           names: tuple[str, str] = ("truncation_psi", "noise_mode")) -> None:
    """Refuses, in one line, sampling options that would change nothing for this family: a
    truncation other than 1 without a truncation trick, a noise mode other than ``'const'``
    without noise inputs (``names``: how the caller calls the two options). ``ganzoo generate``
    asks this; :meth:`GAN.sample` ignores such options (generic callers such as the metrics pass
    the StyleGAN protocol's ``noise_mode='random'`` to every family)."""
    if float(truncation_psi) != 1.0 and not meta.truncation:
        raise GanzooError(f"{names[0]} {truncation_psi:g}: {architecture} networks have no truncation trick (use 1)")
    if noise_mode != "const" and not meta.noise:
        raise GanzooError(f"{names[1]} {noise_mode}: {architecture} networks have no noise inputs (use const)")


# The Hub methods of GAN delegate to functions of modules above this one (``ganzoo.api.load``,
# ``ganzoo.publish.push``), which register themselves here when imported: this module imports
# nothing above it. ``ganzoo.GAN`` is resolved through ``ganzoo.publish`` (which imports
# ``ganzoo.api``), so both are there whenever GAN is reached through the package.
_HUB_FUNCTIONS: dict[str, Any] = {}


def register_hub_function(name: str, function: Any) -> None:
    """Makes ``function`` what :class:`GAN`'s Hub method ``name`` (``"load"``, ``"push"``) calls."""
    _HUB_FUNCTIONS[name] = function


def _hub_function(name: str, module: str) -> Any:
    try:
        return _HUB_FUNCTIONS[name]
    except KeyError:
        raise GanzooError(f"GAN's Hub methods need {module} registered: use ganzoo.GAN (import ganzoo) rather than "
                          "ganzoo.checkpoint.GAN alone") from None


MAX_SEED = 2**32 - 1  # numpy's RandomState(seed), which turns a seed into its latent, takes 32 bits
MAX_SEEDS = 10_000_000  # seeds in one call: a guard against a typo (the list alone would fill memory)


def parse_seeds(text: str | Iterable[int]) -> list[int]:
    """Parses ``"0-15"``, ``"1,5,9"`` or ``"0-3,10"`` (seeds 0 to 2³²-1, at most
    :data:`MAX_SEEDS` of them) into a list of seeds."""
    if not isinstance(text, str):
        return [int(s) for s in text]
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise GanzooError(f"invalid seeds {text!r}: use e.g. '0-15' or '1,5,9'")
        if int(hi or lo) > MAX_SEED:
            raise GanzooError(f"invalid seeds {text!r}: a seed is at most {MAX_SEED}")
        if len(seeds) + int(hi or lo) - int(lo) + 1 > MAX_SEEDS:
            raise GanzooError(f"invalid seeds {text!r}: at most {MAX_SEEDS:,} seeds")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    if not seeds:
        raise GanzooError(f"invalid seeds {text!r}: no seed given")
    return seeds
