"""Architecture plug-ins: the one table of GAN families ganzoo can build, save, load and sample.

An architecture is a subclass of :class:`Architecture` registered by name with
:func:`register_architecture`. It says which network class plays each role (``G_ema``, ``G``,
``D``), how to build one from the JSON-able constructor kwargs that ``config.json`` stores, what
its architecture-neutral :class:`Metadata` is (what generic code may read instead of a family's
own kwargs), and how to turn latents and classes into images. The built-in families live in
subpackages (``ganzoo.architectures.stylegan2``, ``.stylegan3``, ``.biggan``, ``.gpgan``) and are
registered on first use. A family in a package of its own registers the same way and is found
through the ``ganzoo.architectures`` entry-point group, so an installed plug-in works in the CLI
and in Python alike::

    # mygan/__init__.py
    from ganzoo.architectures import Architecture, register_architecture

    class MyGAN(Architecture):
        name = "mygan"
        generator_class = MyGenerator
        discriminator_class = MyDiscriminator
        ...

    register_architecture(MyGAN())

    # pyproject.toml of the plug-in package
    [project.entry-points."ganzoo.architectures"]
    mygan = "mygan"          # a module that registers it on import (or "mygan:MyGAN")

The entry point's name is the architecture's name (one entry point per name a plug-in
registers); loading it imports the module (or, for ``module:object``, registers the
:class:`Architecture` class or instance named there). Readers of the plug-in's own file formats
come from its :meth:`Architecture.readers`.

Generic code asks this module, never a family's module: :func:`get_architecture` by the name in
``config.json``, :func:`architecture_of` for networks in hand.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ganzoo.errors import ConversionError, GanzooError

__all__ = [
    "Architecture",
    "Metadata",
    "architecture_names",
    "architecture_of",
    "get_architecture",
    "known_architectures",
    "metadata_of",
    "register_architecture",
]

ROLES = ("G_ema", "G", "D")
#: The suffixes of :meth:`Architecture.export`'s single file.
EXPORT_SUFFIXES = (".pt", ".pth")
#: The family ``ganzoo pretrain`` builds from random init (its settings: ``--z-dim``, ``--channel-base``, ...).
DEFAULT_ARCHITECTURE = "stylegan2"
# The built-in architectures and the subpackage whose import registers each: names are known
# without importing anything (the registry validates its entries without torch).
_BUILTIN_MODULES = {
    "stylegan2": "ganzoo.architectures.stylegan2",
    "stylegan2-adafm": "ganzoo.architectures.stylegan2",
    "stylegan3": "ganzoo.architectures.stylegan3",
    "stylegan3-adafm": "ganzoo.architectures.stylegan3",
    "biggan": "ganzoo.architectures.biggan",
    "gpgan": "ganzoo.architectures.gpgan",
    "gpgan-adafm": "ganzoo.architectures.gpgan",
}

# The upstream formats the built-in families read (their readers' names): the registry checks
# its entries' artifacts against them without importing torch.
BUILTIN_FORMATS = ("stylegan2-ada-pkl", "stylegan2-tf-pkl", "state-dict-pt", "gan-stability-pt", "biggan-pytorch")


@dataclass(frozen=True)
class Metadata:
    """What generic code (rank, metrics, cards, hub, registry, CLI) may know of any GAN.

    Attributes:
        resolution: side of the square images, in pixels.
        channels: image channels (1, 3 or 4).
        num_classes: classes of a class-conditional generator; 0 when unconditional.
        latent_dim: size of one latent vector ``z``.
        truncation: whether sampling accepts a truncation ``psi`` other than 1.
        class_names: the classes' names, when known.
        noise: whether the generator has noise inputs, i.e. sampling's ``noise_mode`` other
            than ``'const'`` changes the images.
    """

    resolution: int
    channels: int
    num_classes: int
    latent_dim: int
    truncation: bool
    class_names: list[str] | None = None
    noise: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Architecture:
    """One GAN family. Subclasses set the class attributes and implement :meth:`metadata` and
    :meth:`generate`; the rest has defaults that suit generators taking ``(z, c)``.

    Attributes:
        name: the name recorded in ``config.json`` (``"stylegan2"``).
        generator_class: the class of ``G_ema`` and ``G``; built as ``cls(**kwargs)``.
        discriminator_class: the class of ``D``, or None when the family has none.
    """

    name: str = ""
    generator_class: type | None = None
    discriminator_class: type | None = None
    #: The transfer recipes (``ganzoo finetune --recipe``) and merges this family supports;
    #: none means it can be loaded, sampled, ranked, converted and exported, not trained.
    recipes: tuple[str, ...] = ()
    mergeable: bool = False
    #: The upstream file formats (:mod:`ganzoo.readers`) this family's networks are read from:
    #: those of :meth:`readers`, and ``"state-dict-pt"`` when plain state dicts of its networks
    #: are read by the generic reader (which then asks :meth:`state_dict_role` and
    #: :meth:`infer_kwargs`).
    formats: tuple[str, ...] = ()
    #: For error messages of the generic state-dict reader: the tensor names by which
    #: :meth:`state_dict_role` tells this family's networks.
    state_dict_hint: str = ""
    #: The ``adafm`` recipe's default split: G blocks with AdaFM (``--general-g``), D blocks next
    #: to the image frozen (``--general-d``); each at most all blocks but one.
    adafm_defaults: tuple[int, int] = (4, 2)
    #: The same split for ``--adafm-variant paper`` (:meth:`adafm_paper`), where defined.
    adafm_paper_defaults: tuple[int, int] = (4, 2)
    #: Whose networks the tensor names and constructor kwargs are those of, when an upstream
    #: project's (the model card says they load there with ``load_state_dict(strict=True)``);
    #: empty for a family of ganzoo's own or a plug-in's.
    upstream_names: str = ""
    #: The family's own :class:`~ganzoo.train.loop.TrainingOptions` fields
    #: (:data:`~ganzoo.train.loop.FAMILY_OPTIONS`, e.g. BigGAN's ``G_ortho``) that its
    #: :meth:`objective` reads; training refuses them set for a family that does not list them.
    objective_options: tuple[str, ...] = ()
    #: Whether training compiles this family's networks on its own (long CPU runs; the
    #: compiled networks verified against eager ones in tests/test_compile.py).
    compile_verified: bool = False

    def require(self, what: str, recipe: str | None = None) -> None:
        """Refuses, in one line, work this family does not support (``what``: ``"finetune"``,
        ``"merge"``, ...; ``recipe``: the finetune recipe asked for)."""
        if what == "merge" and not self.mergeable:
            raise GanzooError(f"merge: {self.name} networks cannot be merged by this version of ganzoo")
        if what != "merge" and not self.recipes:
            raise GanzooError(f"{what}: {self.name} networks cannot be trained by this version of ganzoo")
        if recipe is not None and recipe not in self.recipes:
            raise GanzooError(f"{what}: recipe {recipe!r} does not apply to {self.name} (its recipes: {', '.join(self.recipes)})")

    # -- reading upstream files (:mod:`ganzoo.readers`) ----------------------------------------

    def readers(self) -> Sequence[Any]:
        """The readers (:class:`ganzoo.readers.base.Reader`) of this family's own file formats;
        the reader table asks them, with every known family's, before the generic ones."""
        return ()

    def state_dict_role(self, state_dict: Any) -> str | None:
        """``"generator"`` or ``"discriminator"`` when a plain state dict's tensor names are those
        of this family's network; None when not (or when the family does not read state dicts)."""
        return None

    def infer_kwargs(self, role: str, state_dict: Any, where: str) -> tuple[dict, list[str]]:
        """The constructor kwargs of the ``role`` network (``"generator"``/``"discriminator"``)
        that ``state_dict`` is, from its tensors, with notes saying what was inferred and what
        defaulted.

        Raises:
            ConversionError: the tensors do not tell the kwargs.
        """
        raise ConversionError(f"{where}: {self.name} constructor kwargs cannot be inferred from tensors (give --config)")

    def network_class(self, role: str) -> type:
        """The class that plays ``role`` (``G_ema``, ``G`` or ``D``)."""
        if role not in ROLES:
            raise GanzooError(f"{self.name}: unknown role {role!r} (roles: {', '.join(ROLES)})")
        cls = self.discriminator_class if role == "D" else self.generator_class
        if cls is None:
            raise GanzooError(f"{self.name}: has no {role} network")
        return cls

    def owns(self, G_ema: Any, G: Any = None, D: Any = None) -> bool:
        """Whether these networks are this family's (exact classes: a subclass is another family)."""
        return (
            type(G_ema) is self.generator_class
            and (G is None or type(G) is self.generator_class)
            and (D is None or type(D) is self.discriminator_class)
        )

    def for_upload(self, gan: Any) -> tuple[Any, list[str]]:
        """``gan`` as it is published and compared: networks any loader of the family reads.

        The default returns ``gan`` itself and no notes. A family whose networks carry
        training-only structure (AdaFM's γ and β) returns a new GAN with it folded away, a lineage
        step saying so appended to its config, and that step's notes; ``gan`` is not changed.
        Generic code (push, ``analyze distance``) calls this instead of naming a family.
        """
        return gan, []

    # -- export (``ganzoo export``, :func:`ganzoo.conversion.export`) ------------------------------

    def check_export(self, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Checks, before any work, that :meth:`export` can write ``out``; returns it as a Path.

        The default: one ``.pt``/``.pth`` file, replaced only with ``overwrite``.

        Raises:
            OutputError: one line naming ``out`` and the problem.
        """
        from ganzoo._io import check_output

        return check_output(out, suffixes=EXPORT_SUFFIXES, overwrite=overwrite)

    def export(self, gan: Any, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Writes ``gan`` (as :meth:`for_upload` gives it) in a form the family's official code
        loads with ``load_state_dict(strict=True)``; returns what was written.

        The default writes one file ``{'G': ..., 'D': ..., 'G_ema': ...}`` of plain state dicts
        (the roles the GAN has) with the constructor kwargs under ``'init_kwargs'`` and the family
        under ``'architecture'`` (so ``ganzoo convert`` rebuilds any family), atomically. A
        family whose release has a layout of its own (BigGAN-PyTorch's weights folder) overrides
        this and :meth:`check_export`.
        """
        import copy

        import torch

        from ganzoo._io import atomic_path

        networks = gan.networks()
        payload: dict = {role: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                         for role, net in networks.items()}  # fmt: skip
        payload["init_kwargs"] = {role: copy.deepcopy(net.init_kwargs) for role, net in networks.items()}
        payload["architecture"] = gan.architecture.name  # the generic state-dict reader builds with it
        out = Path(out)
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            # A file object, not the path: torch names the zip records after the (random) temporary file.
            torch.save(payload, f)
        return out

    def metadata(self, generator_kwargs: dict, class_names: Sequence[str] | None = None) -> Metadata:
        """The neutral metadata of a generator built from ``generator_kwargs``."""
        raise NotImplementedError

    def latents(self, seeds: Sequence[int], latent_dim: int) -> Any:
        """One latent per seed: ``np.random.RandomState(seed).randn(latent_dim)`` (float64), the
        convention of the official StyleGAN scripts, so a seed shows the same image everywhere."""
        import numpy as np  # not at import: the registry reads architecture names without numpy

        return np.stack([np.random.RandomState(s % (1 << 32)).randn(latent_dim) for s in seeds])

    def generate(self, G: Any, z: Any, c: Any, *, seeds: Sequence[int], truncation_psi: float,
                 truncation_cutoff: int | None, noise_mode: str) -> Any:  # fmt: skip
        """Images ``[N, C, H, W]`` in about [-1, 1] from latents ``z`` and one-hot classes ``c``
        (``[N, 0]`` when unconditional); ``seeds`` are the images' seeds, for per-image noise."""
        raise NotImplementedError

    def styles(self, G: Any, z: Any, c: Any) -> Any | None:
        """The per-layer style codes ``[N, L, W]`` of latents ``z`` with classes ``c``, for
        interpolation and style mixing (merge's grid); None when the family has none."""
        return None

    def render_styles(self, G: Any, styles: Any) -> Any:
        """Images from :meth:`styles` codes (deterministic: constant noise)."""
        raise NotImplementedError

    # -- training (``ganzoo finetune``/``pretrain``, ``ganzoo merge``) -------------------------
    # A family with recipes implements these; the shared loop (:mod:`ganzoo.train.loop`) and
    # the recipes' orchestration (:mod:`ganzoo.train.recipes`) call nothing else of it.

    def training_defaults(self, generator_kwargs: dict, batch: int, recipe: str | None = None) -> dict[str, Any]:
        """:class:`~ganzoo.train.loop.TrainingOptions` values this family trains with by default
        (learning rates, regularization, EMA); what the user sets wins. ``recipe`` is the
        transfer recipe of the run (None: not said), for settings that differ between training
        from scratch and finetuning."""
        return {}

    def objective(self, G: Any, D: Any, augment_pipe: Any, options: Any, penalty: Any) -> Any:
        """The loss object the loop drives (see :class:`ganzoo.train.loss.Objective`)."""
        raise GanzooError(f"{self.name}: has no training objective")

    def batch_multiple(self, D: Any) -> int:
        """Chunk sizes (images per forward of D) must be multiples of this."""
        return 1

    def widest(self, kwargs: dict, resolution: int) -> int:
        """Channels of the network's widest full-resolution layer (the memory estimate)."""
        raise NotImplementedError

    def d_blocks(self, D: Any) -> list[tuple[int, int]]:
        """``(resolution, number of layers)`` of D's blocks from the image inwards (FreezeD
        counts layers along this list; ``--general-d`` counts blocks)."""
        raise NotImplementedError

    def freeze_d(self, D: Any, layers: int) -> Any:
        """A copy of ``D`` whose first ``layers`` layers from the image are frozen (0: none)."""
        raise NotImplementedError

    def g_blocks(self, G: Any) -> list[int]:
        """The resolutions of G's synthesis blocks, lowest first (``--general-g`` counts from the
        highest)."""
        raise NotImplementedError

    def with_adafm(self, G: Any, resolutions: Sequence[int]) -> Any:
        """A copy of ``G`` whose convolutions in the blocks at ``resolutions`` learn AdaFM's scale
        and shift over frozen kernels (identity at the start); its architecture is another
        registered family (``<name>-adafm``)."""
        raise NotImplementedError

    def adafm_paper(self, G: Any, D: Any, resolutions: Sequence[int], seed: int) -> tuple[Any, Any]:
        """The ``adafm`` recipe's ``paper`` variant (``--adafm-variant paper``): ``(G, D)`` as the
        AdaFM authors' own code builds them from a source ``G`` and ``D`` where that differs from
        keeping every transferred block (the default variant), e.g. with the part of G below the
        ``resolutions`` rebuilt from ``seed`` instead of transferred. G has AdaFM at
        ``resolutions``; the recipe freezes D's layers next to the image afterwards.

        The default refuses: the variant is defined only where a family implements it.
        """
        raise GanzooError(f"--adafm-variant paper is not defined for {self.name} networks; use the default variant")

    def fresh_networks(self, G: Any, D: Any | None, seed: int) -> tuple[Any, Any]:
        """``(G, D)`` of the same shapes as ``G`` and ``D`` (D matching G when None), randomly
        initialized from ``seed`` (the ``scratch`` recipe, ``--allow-random-d``)."""
        raise NotImplementedError

    def fresh_discriminator(self, G: Any, seed: int) -> Any:
        """A randomly initialized D (from ``seed``) that matches ``G`` (``--allow-random-d``)."""
        raise NotImplementedError

    def conditional(self, net: Any, role: str, num_classes: int, seed: int) -> Any:
        """``net`` (an unconditional G or D) made class-conditional with ``num_classes`` classes
        while giving, for every class, what it gave before (merge)."""
        raise GanzooError(f"merge: {self.name} networks cannot be made class-conditional")

    def rescaled_inputs(self, old: Any, new: Any) -> dict[str, tuple[int, float]]:
        """Parameters of :meth:`conditional`'s G whose first ``n`` input columns are ``old``'s
        scaled by ``s``: ``{name: (n, s)}`` (EWC carries their Fisher over)."""
        return {}


_REGISTRY: dict[str, Architecture] = {}
#: The entry-point group installed plug-ins declare their architectures in.
ENTRY_POINT_GROUP = "ganzoo.architectures"
_BROKEN_PLUGINS: set[str] = set()  # failed to load while every family was loaded (warned once)


@functools.lru_cache(maxsize=1)
def _plugin_entry_points() -> dict[str, Any]:
    """Architecture name -> entry point of the installed plug-ins (read from package metadata,
    nothing imported). A built-in name cannot be taken over by a plug-in."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _BUILTIN_MODULES:
            found.setdefault(ep.name, ep)
    return found


def _load_plugin(name: str) -> None:
    """Imports the installed plug-in that declares architecture ``name`` and registers it.

    Raises:
        GanzooError: the plug-in fails to import, or does not register ``name`` (one line,
            naming the package).
    """
    ep = _plugin_entry_points()[name]
    package = getattr(getattr(ep, "dist", None), "name", None) or ep.value
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plug-in is the user's to fix: say which, in one line
        raise GanzooError(f"architecture plug-in {name!r} ({package}) failed to load: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, type) and issubclass(obj, Architecture):
        obj = obj()
    if isinstance(obj, Architecture) and obj.name not in _REGISTRY:
        register_architecture(obj)
    if name not in _REGISTRY:
        raise GanzooError(f"architecture plug-in {name!r} ({package}) did not register an architecture named {name!r}")


def _load_builtins(*names: str) -> None:
    """Imports the subpackages of the built-in architectures ``names`` and the installed
    plug-ins that declare them (all of both when none given)."""
    wanted = names or (*_BUILTIN_MODULES, *_plugin_entry_points())
    for module in sorted({_BUILTIN_MODULES[n] for n in wanted if n in _BUILTIN_MODULES}):
        importlib.import_module(module)
    for name in wanted:
        if name in _plugin_entry_points() and name not in _REGISTRY and (names or name not in _BROKEN_PLUGINS):
            try:
                _load_plugin(name)
            except GanzooError as exc:
                if names:  # asked for by name: the caller needs it
                    raise
                # Loading every family (to recognize a file or a network): a broken plug-in of
                # another family must not stop the work; say so once and go on without it.
                _BROKEN_PLUGINS.add(name)
                warnings.warn(str(exc), stacklevel=2)


def architecture_names() -> list[str]:
    """The names of every known architecture (built-in, installed plug-in, registered), without
    importing any."""
    return sorted(set(_BUILTIN_MODULES) | set(_plugin_entry_points()) | set(_REGISTRY))


def register_architecture(architecture: Architecture, *, replace: bool = False) -> Architecture:
    """Adds ``architecture`` to the table under its ``name``; returns it.

    Raises:
        GanzooError: the name is empty, or taken (unless ``replace``).
    """
    name = getattr(architecture, "name", "")
    if not isinstance(name, str) or not name:
        raise GanzooError(f"{type(architecture).__name__}: an architecture needs a name")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not architecture:
        raise GanzooError(f"architecture {name!r} is already registered")
    _REGISTRY[name] = architecture
    return architecture


def known_architectures() -> dict[str, Architecture]:
    """Name -> architecture, the built-in ones included."""
    _load_builtins()
    return dict(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """The architecture registered as ``name``.

    Raises:
        GanzooError: no architecture has that name (the known ones are listed).
    """
    if isinstance(name, str) and name not in _REGISTRY:
        _load_builtins(name)
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise GanzooError(f"unknown architecture {name!r} (known: {', '.join(architecture_names())})") from None


def architecture_of(G_ema: Any, G: Any = None, D: Any = None) -> str:
    """The name of the architecture these networks belong to, read from their classes.

    Raises:
        GanzooError: no registered architecture owns them (e.g. an AdaFM generator beside a
            plain one).
    """
    for name, architecture in known_architectures().items():
        if architecture.owns(G_ema, G, D):
            return name
    roles = ", ".join(f"{role}={type(net).__name__}" for role, net in zip(ROLES, (G_ema, G, D)) if net is not None)
    raise GanzooError(f"networks {roles} form no known architecture ({', '.join(architecture_names())})")


def metadata_of(G: Any) -> Metadata:
    """The neutral metadata of a generator in hand (its architecture read from its class)."""
    return get_architecture(architecture_of(G)).metadata(G.init_kwargs)
