"""Architecture plug-ins: the one table of GAN families ganzoo can build, save, load and sample.

An architecture is a subclass of :class:`Architecture` registered by name with
:func:`register_architecture`. It says which network class plays each role (``G_ema``, ``G``,
``D``), how to build one from the JSON-able constructor kwargs that ``config.json`` stores, what
its architecture-neutral :class:`Metadata` is (what generic code may read instead of a family's
own kwargs), and how to turn latents and classes into images. The built-in families live in
subpackages (``ganzoo.architectures.stylegan2``, ``ganzoo.architectures.stylegan3``) and are registered on first use; users register
their own the same way::

    from ganzoo.architectures import Architecture, register_architecture

    class MyGAN(Architecture):
        name = "mygan"
        generator_class = MyGenerator
        discriminator_class = MyDiscriminator
        ...

    register_architecture(MyGAN())

Generic code asks this module, never a family's module: :func:`get_architecture` by the name in
``config.json``, :func:`architecture_of` for networks in hand.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ganzoo.errors import GanzooError

__all__ = [
    "Architecture",
    "Metadata",
    "architecture_names",
    "architecture_of",
    "get_architecture",
    "known_architectures",
    "register_architecture",
]

ROLES = ("G_ema", "G", "D")
# The built-in architectures and the subpackage whose import registers each: names are known
# without importing anything (the registry validates its entries without torch).
_BUILTIN_MODULES = {
    "stylegan2": "ganzoo.architectures.stylegan2",
    "stylegan2-adafm": "ganzoo.architectures.stylegan2",
    "stylegan3": "ganzoo.architectures.stylegan3",
}


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
    """

    resolution: int
    channels: int
    num_classes: int
    latent_dim: int
    truncation: bool
    class_names: list[str] | None = None

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

    def require(self, what: str, recipe: str | None = None) -> None:
        """Refuses, in one line, work this family does not support (``what``: ``"finetune"``,
        ``"merge"``, ...; ``recipe``: the finetune recipe asked for)."""
        if what == "merge" and not self.mergeable:
            raise GanzooError(f"merge: {self.name} networks cannot be merged by this version of ganzoo")
        if what != "merge" and not self.recipes:
            raise GanzooError(f"{what}: {self.name} networks cannot be trained by this version of ganzoo")
        if recipe is not None and recipe not in self.recipes:
            raise GanzooError(f"{what}: recipe {recipe!r} does not apply to {self.name} (its recipes: {', '.join(self.recipes)})")

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


_REGISTRY: dict[str, Architecture] = {}


def _load_builtins(*names: str) -> None:
    """Imports the subpackages of the built-in architectures ``names`` (all when none given)."""
    for module in sorted({_BUILTIN_MODULES[n] for n in names or _BUILTIN_MODULES if n in _BUILTIN_MODULES}):
        importlib.import_module(module)


def architecture_names() -> list[str]:
    """The names of every known architecture, built-in or registered, without importing any."""
    return sorted(set(_BUILTIN_MODULES) | set(_REGISTRY))


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
