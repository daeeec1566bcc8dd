"""The model registry: pretrained checkpoints described as data, validated into frozen dataclasses.

Entries live in TOML files: the ones shipped with ganzoo (top-level ``registry/``, installed as
``ganzoo._registry``) and any folders listed in ``GANZOO_REGISTRY_PATH`` (``os.pathsep``-separated),
so users can add their own without touching the package. One file holds one family::

    [family]                      # defaults for every model of the file (a model overrides them)
    architecture = "stylegan2"
    license = "other"
    paper = { title = "...", authors = "...", year = 2020, url = "...", bibtex = "..." }

    [[models]]
    name = "afhqcat-stylegan2-512"
    aliases = ["cat"]
    ...

    [renamed]                     # old name -> new name; old names keep working, with a warning
    "old-name" = "new-name"

This module must stay cheap to import: ``ganzoo list`` and ``ganzoo info`` answer from it alone,
without importing torch or huggingface_hub.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from ganzoo.architectures import BUILTIN_FORMATS, architecture_names  # names only: reading the registry needs no torch
from ganzoo.errors import RegistryError, UnknownModelError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Foreign formats an upstream artifact may have (the readers of ``ganzoo.readers``).
ARTIFACT_FORMATS = BUILTIN_FORMATS
#: Network roles a checkpoint may include.
ROLES = ("G_ema", "G", "D")
REGISTRY_PATH_ENV = "GANZOO_REGISTRY_PATH"
#: Where an entry's checkpoint comes from: the Hub (with upstream fallback) or the package itself.
SOURCES = ("hub", "bundled")
_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Paper:
    """The paper that released (or trained) the weights."""

    title: str
    authors: str
    year: int
    url: str
    venue: str = ""
    bibtex: str = ""


@dataclass(frozen=True)
class Dataset:
    """The data the source checkpoint was trained on."""

    name: str
    size: int | None = None  # number of training images, where the release states it
    url: str = ""
    hub_id: str = ""  # a Hugging Face dataset id, used for the card's ``datasets`` field


@dataclass(frozen=True)
class Artifact:
    """An upstream file the checkpoint can be converted from.

    ``manual_download`` marks files behind share links that a program cannot fetch; the user
    downloads them by hand and registers them with ``ganzoo convert FILE --as NAME``.
    """

    url: str
    format: str
    filename: str
    size: int | None = None
    sha256: str | None = None
    manual_download: bool = False
    instructions: str = ""


@dataclass(frozen=True)
class Metric:
    """A quality number reported for the source checkpoint, with where it was reported."""

    name: str  # e.g. "fid50k"
    value: float
    source: str  # e.g. "StyleGAN2 paper, Table 1"
    dataset: str = ""


@dataclass(frozen=True)
class HubLocation:
    """Where the ganzoo-format checkpoint lives on the Hugging Face Hub."""

    repo: str
    revision: str = "main"
    # sha256 of weight files, when the maintainers recorded them: checked on pull in addition
    # to the checksums of the repo's own config.json. Stored as sorted (file, sha256) pairs so
    # the dataclass stays hashable and immutable.
    sha256: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Entry:
    """One registry entry: a pretrained checkpoint, where to get it, and what it is."""

    name: str
    title: str
    family: str  # the registry file it came from (stem), e.g. "stylegan2-ada"
    architecture: str
    resolution: int
    dataset: Dataset
    license: str  # a Hub license id ("other" when none fits; see license_name)
    paper: Paper
    hub: HubLocation
    aliases: tuple[str, ...] = ()
    c_dim: int | None = None  # number of classes, 0 = unconditional, None = not stated upstream
    class_names: tuple[str, ...] | None = None  # by class index; written into the checkpoint's config
    includes: tuple[str, ...] = ("G_ema",)
    generator: Mapping[str, Any] | None = None
    discriminator: Mapping[str, Any] | None = None
    artifacts: tuple[Artifact, ...] = ()
    metrics: tuple[Metric, ...] = ()
    license_name: str = ""
    license_url: str = ""
    tags: tuple[str, ...] = ()
    notes: str = ""
    source: str = "hub"  # "hub": pulled from the Hub (or upstream); "bundled": ships inside ganzoo
    source_file: str = ""

    @property
    def bundled(self) -> bool:
        """True when the checkpoint ships inside the package (loads with no network)."""
        return self.source == "bundled"

    @property
    def downloadable(self) -> tuple[Artifact, ...]:
        """Upstream artifacts that a program can download (not behind a share link)."""
        return tuple(a for a in self.artifacts if not a.manual_download)

    def to_dict(self) -> dict:
        """A JSON-able dict (for ``ganzoo info --json`` and model cards)."""
        data = asdict(self)
        data["generator"] = _plain(self.generator)
        data["discriminator"] = _plain(self.discriminator)
        data["hub"]["sha256"] = dict(self.hub.sha256)
        return data


# ------------------------------------------------------------------------------------------------
# Validation


def _plain(value: Any) -> Any:
    """Turns read-only mappings back into plain dicts, recursively (for JSON)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Frozen(dict):
    """A dict that refuses changes, so frozen entries cannot be altered through their kwargs."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("registry entries are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, repr(v)) for k, v in self.items())))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return _Frozen({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class _Checker:
    """Reads typed fields out of one TOML table, naming the file and model in every error."""

    def __init__(self, where: str, table: Mapping[str, Any]):
        self.where = where
        self.table = table

    def fail(self, message: str) -> RegistryError:
        return RegistryError(f"{self.where}: {message}")

    def only(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.table) - set(allowed))
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise self.fail(f"unknown key {', '.join(hints)}")

    def get(self, key: str, kind: type | tuple[type, ...], required: bool = False, default: Any = None) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(f"missing required key {key!r}")
            return default
        value = self.table[key]
        # bool is an int subclass in Python; a TOML `true` where a number belongs is a mistake.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(f"{key!r} must be {_kind_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            raise self.fail(f"{key!r} must be {_kind_name(kind)}, not {type(value).__name__}")
        return value

    def text(self, key: str, required: bool = False, default: str = "") -> str:
        value = self.get(key, str, required, default)
        if required and not value.strip():
            raise self.fail(f"{key!r} must not be empty")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, default=[])
        if not all(isinstance(v, str) and v for v in values):
            raise self.fail(f"{key!r} must be a list of non-empty strings")
        return tuple(values)

    def table_of(self, key: str, required: bool = False) -> "_Checker | None":
        value = self.get(key, dict, required)
        return None if value is None else _Checker(f"{self.where}: {key}", value)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_url(check: _Checker, url: str, key: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise check.fail(f"{key!r} must be an http(s) URL, not {url!r}")


def _check_sha256(check: _Checker, value: str | None, key: str) -> str | None:
    if value is None:
        return None
    if len(value) != 64 or not set(value) <= _SHA256_HEX:
        raise check.fail(f"{key!r} must be 64 lowercase hex digits")
    return value


def _parse_paper(check: _Checker) -> Paper:
    check.only(f.name for f in fields(Paper))
    paper = Paper(
        title=check.text("title", required=True),
        authors=check.text("authors", required=True),
        year=check.get("year", int, required=True),
        url=check.text("url", required=True),
        venue=check.text("venue"),
        bibtex=check.text("bibtex"),
    )
    _check_url(check, paper.url, "url")
    return paper


def _parse_dataset(check: _Checker) -> Dataset:
    check.only(f.name for f in fields(Dataset))
    size = check.get("size", int)
    if size is not None and size <= 0:
        raise check.fail("'size' must be positive")
    dataset = Dataset(name=check.text("name", required=True), size=size, url=check.text("url"),
                      hub_id=check.text("hub_id"))  # fmt: skip
    if dataset.url:
        _check_url(check, dataset.url, "url")
    return dataset


def _parse_class_names(check: "_Checker", c_dim: int | None) -> tuple[str, ...] | None:
    """``class_names``: a list of names, or the name of a list shipped in ``registry/classes/``
    (``"imagenet-1k"``: ``classes/imagenet-1k.txt``, one name per line, ``#`` lines ignored);
    as many names as ``c_dim``."""
    value = check.get("class_names", (list, str))
    if value is None:
        return None
    if isinstance(value, str):
        if not value or not all(c.isalnum() or c in "-_." for c in value):
            raise check.fail(f"'class_names' must be a list or the name of a list in registry/classes/, not {value!r}")
        from ganzoo.resources import registry_files

        listing = registry_files().joinpath("classes", f"{value}.txt")
        if not listing.is_file():
            raise check.fail(f"'class_names': no list registry/classes/{value}.txt")
        lines = listing.read_text(encoding="utf-8").splitlines()
        value = [line for line in lines if line.strip() and not line.startswith("#")]
    if not all(isinstance(n, str) and n.strip() for n in value):
        raise check.fail("'class_names' must hold non-empty strings")
    if c_dim is None or len(value) != c_dim:
        raise check.fail(f"'class_names' has {len(value)} names; 'c_dim' must say as many classes")
    return tuple(value)


def _parse_artifact(check: _Checker) -> Artifact:
    check.only(f.name for f in fields(Artifact))
    fmt = check.text("format", required=True)
    if fmt not in ARTIFACT_FORMATS:
        raise check.fail(f"'format' must be one of {', '.join(ARTIFACT_FORMATS)}, not {fmt!r}")
    size = check.get("size", int)
    if size is not None and size <= 0:
        raise check.fail("'size' must be positive")
    artifact = Artifact(
        url=check.text("url", required=True),
        format=fmt,
        filename=check.text("filename", required=True),
        size=size,
        sha256=_check_sha256(check, check.get("sha256", str), "sha256"),
        manual_download=check.get("manual_download", bool, default=False),
        instructions=check.text("instructions"),
    )
    _check_url(check, artifact.url, "url")
    if "/" in artifact.filename or "\\" in artifact.filename or artifact.filename.startswith("."):
        raise check.fail(f"'filename' must be a plain file name, not {artifact.filename!r}")
    if artifact.manual_download and not artifact.instructions:
        raise check.fail("a manual_download artifact needs 'instructions'")
    return artifact


def _parse_metric(check: _Checker) -> Metric:
    check.only(f.name for f in fields(Metric))
    value = check.get("value", (int, float), required=True)
    return Metric(name=check.text("name", required=True), value=float(value),
                  source=check.text("source", required=True), dataset=check.text("dataset"))  # fmt: skip


def _parse_hub(check: _Checker) -> HubLocation:
    check.only(f.name for f in fields(HubLocation))
    repo = check.text("repo", required=True)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise check.fail(f"'repo' must look like 'org/name', not {repo!r}")
    sums = check.get("sha256", dict, default={})
    for name, digest in sums.items():
        _check_sha256(check, digest if isinstance(digest, str) else "", f"sha256.{name}")
    return HubLocation(repo=repo, revision=check.text("revision", default="main") or "main",
                       sha256=tuple(sorted(sums.items())))  # fmt: skip


_ENTRY_KEYS = {f.name for f in fields(Entry)} - {"family", "source_file"}


def _parse_entry(raw: Mapping[str, Any], defaults: Mapping[str, Any], path: str, family: str) -> Entry:
    merged = {**defaults, **raw}
    name = merged.get("name")
    where = f"{path}: model {name!r}" if isinstance(name, str) else f"{path}: a model without 'name'"
    check = _Checker(where, merged)
    check.only(_ENTRY_KEYS)
    name = check.text("name", required=True)
    if name != name.lower() or not all(c.isalnum() or c in "-._" for c in name):
        raise check.fail("'name' must be lowercase letters, digits, '-', '_' or '.'")
    architecture = check.text("architecture", required=True)
    if architecture not in architecture_names():
        raise check.fail(f"unknown architecture {architecture!r} (known: {', '.join(architecture_names())})")
    resolution = check.get("resolution", int, required=True)
    if resolution < 4 or resolution & (resolution - 1):
        raise check.fail(f"'resolution' must be a power of two >= 4, not {resolution}")
    c_dim = check.get("c_dim", int)
    if c_dim is not None and c_dim < 0:
        raise check.fail("'c_dim' must be >= 0")
    class_names = _parse_class_names(check, c_dim)
    includes = check.strings("includes") or ("G_ema",)
    if "G_ema" not in includes or not set(includes) <= set(ROLES):
        raise check.fail(f"'includes' must hold 'G_ema' and only {', '.join(ROLES)}")
    generator = check.get("generator", dict)
    discriminator = check.get("discriminator", dict)
    if generator is not None and generator.get("img_resolution", resolution) != resolution:
        raise check.fail("generator.img_resolution disagrees with 'resolution'")
    artifacts = tuple(_parse_artifact(_Checker(f"{where}: artifacts[{i}]", a)) if isinstance(a, dict)
                      else _raise(check.fail("'artifacts' must be a list of tables"))
                      for i, a in enumerate(check.get("artifacts", list, default=[])))  # fmt: skip
    metrics = tuple(_parse_metric(_Checker(f"{where}: metrics[{i}]", m)) if isinstance(m, dict)
                    else _raise(check.fail("'metrics' must be a list of tables"))
                    for i, m in enumerate(check.get("metrics", list, default=[])))  # fmt: skip
    license_id = check.text("license", required=True)
    license_url = check.text("license_url")
    if license_url:
        _check_url(check, license_url, "license_url")
    if license_id == "other" and not check.text("license_name"):
        raise check.fail("license 'other' needs a 'license_name'")
    source = check.text("source", default="hub") or "hub"
    if source not in SOURCES:
        raise check.fail(f"'source' must be one of {', '.join(SOURCES)}, not {source!r}")
    if source == "bundled" and not bundled_dir(name).joinpath("config.json").is_file():
        raise check.fail(f"a bundled model needs its checkpoint in ganzoo/bundled/{name}/ (no config.json there)")
    return Entry(
        name=name,
        title=check.text("title", required=True),
        family=family,
        architecture=architecture,
        resolution=resolution,
        dataset=_parse_dataset(check.table_of("dataset", required=True)),
        license=license_id,
        paper=_parse_paper(check.table_of("paper", required=True)),
        hub=_parse_hub(check.table_of("hub", required=True)),
        aliases=check.strings("aliases"),
        c_dim=c_dim,
        class_names=class_names,
        includes=tuple(r for r in ROLES if r in includes),
        generator=_freeze(generator) if generator is not None else None,
        discriminator=_freeze(discriminator) if discriminator is not None else None,
        artifacts=artifacts,
        metrics=metrics,
        license_name=check.text("license_name"),
        license_url=license_url,
        tags=check.strings("tags"),
        notes=check.text("notes").strip(),
        source=source,
        source_file=path,
    )


def bundled_dir(name: str) -> Path:
    """The checkpoint directory of a bundled model inside the installed package."""
    return Path(__file__).resolve().parent / "bundled" / name


def _raise(exc: Exception):
    raise exc


# ------------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class Registry:
    """All entries, indexed by name, alias and former name."""

    entries: Mapping[str, Entry]
    aliases: Mapping[str, str] = field(default_factory=dict)
    renamed: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def resolve(self, name: str) -> str | None:
        """The canonical name for a name, alias or former name (case-insensitive), or None."""
        key = name.strip().lower()
        if key in self.entries:
            return key
        if key in self.aliases:
            return self.aliases[key]
        if key in self.renamed:
            new = self.renamed[key]
            warnings.warn(f"model name {name!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)
            return self.resolve(new)
        return None

    def get(self, name: str) -> Entry:
        """The entry for a name, alias or former name.

        Raises:
            UnknownModelError: nothing matches; the message lists the closest names.
        """
        canonical = self.resolve(name)
        if canonical is None:
            raise UnknownModelError(f"unknown model {name!r}{self.suggest(name)}")
        return self.entries[canonical]

    def suggest(self, name: str) -> str:
        """'; did you mean ...?' for the closest models, or '' when none is close.

        Each model is named once, by whichever of its name and aliases came closest (an alias
        with the model's name beside it)."""
        candidates = list(self.entries) + list(self.aliases)
        close = difflib.get_close_matches(name.strip().lower(), candidates, n=8, cutoff=0.5)
        # Also offer names that contain what was typed ("imagenet" -> every imagenet entry).
        close += [c for c in sorted(self.entries) if name.strip().lower() in c and c not in close][:3]
        shown: dict[str, str] = {}  # model -> how it is shown
        for c in close:
            model = c if c in self.entries else self.aliases[c]
            if model not in shown and len(shown) < 4:
                shown[model] = c if c in self.entries else f"{c} ({model})"
        if not shown:
            return " (see `ganzoo list`)"
        return f"; did you mean {', '.join(shown.values())}? (see `ganzoo list`)"


def registry_dirs() -> list[Path]:
    """The folders scanned for registry files: ganzoo's own, then ``GANZOO_REGISTRY_PATH``."""
    from ganzoo.resources import registry_files

    dirs = [Path(str(registry_files()))]
    extra = os.environ.get(REGISTRY_PATH_ENV, "")
    dirs += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return dirs


def read_registry_file(path: str | os.PathLike) -> tuple[list[Entry], dict[str, str]]:
    """Parses one registry TOML file into entries and its ``renamed`` map.

    Raises:
        RegistryError: the file is unreadable, not TOML, or an entry is invalid.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: invalid TOML ({exc})") from None
    top = _Checker(str(path), data)
    top.only(("family", "models", "renamed"))
    defaults = top.get("family", dict, default={})
    models = top.get("models", list, default=[])
    renamed = top.get("renamed", dict, default={})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in renamed.items()):
        raise top.fail("'renamed' must map old names to new names (strings)")
    entries = []
    for i, raw in enumerate(models):
        if not isinstance(raw, dict):
            raise top.fail(f"models[{i}] must be a table")
        entries.append(_parse_entry(raw, defaults, str(path), path.stem))
    return entries, {k.lower(): v.lower() for k, v in renamed.items()}


def build_registry(files: Iterable[str | os.PathLike]) -> Registry:
    """Builds a :class:`Registry` from registry files, checking names and aliases are unique.

    Raises:
        RegistryError: an entry is invalid, or a name or alias is defined twice.
    """
    entries: dict[str, Entry] = {}
    aliases: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for path in files:
        file_entries, file_renamed = read_registry_file(path)
        for entry in file_entries:
            if entry.name in entries:
                raise RegistryError(f"{path}: model {entry.name!r} already defined in {entries[entry.name].source_file}")
            entries[entry.name] = entry
        renamed.update(file_renamed)
    for entry in entries.values():
        for alias in entry.aliases:
            key = alias.lower()
            if key in entries or key in aliases:
                other = key if key in entries else aliases[key]
                raise RegistryError(f"{entry.source_file}: alias {alias!r} of {entry.name!r} clashes with {other!r}")
            aliases[key] = entry.name
    for old, new in renamed.items():
        if old in entries or old in aliases:
            raise RegistryError(f"renamed model {old!r} is still a model name or alias")
        if new not in entries and new not in renamed:
            raise RegistryError(f"renamed model {old!r} points to unknown model {new!r}")
    return Registry(entries=entries, aliases=aliases, renamed=renamed)


_CACHE: dict[tuple, Registry] = {}


def load_registry() -> Registry:
    """The registry from ganzoo's folder and ``GANZOO_REGISTRY_PATH`` (cached per file set)."""
    files: list[Path] = []
    for folder in registry_dirs():
        if folder.is_dir():
            files += sorted(folder.glob("*.toml"))
        elif folder.is_file() and folder.suffix == ".toml":
            files.append(folder)
    key = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = build_registry(files)
    return _CACHE[key]


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registry entries, sorted; optionally filtered.

    Args:
        pattern: a shell-style pattern (``"ffhq*"``, ``"*-256"``) matched against names and
            aliases, or a plain substring (``"imagenet"``). Case-insensitive.

    Returns:
        Canonical entry names.
    """
    registry = load_registry()
    if not pattern:
        return registry.names()
    pattern = pattern.lower()
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return [name for name, entry in sorted(registry.entries.items())
            if any(fnmatch.fnmatchcase(n.lower(), pattern) for n in (name, *entry.aliases))]  # fmt: skip


def get_entry(name: str) -> Entry:
    """The registry entry for a name, alias or former name.

    Raises:
        UnknownModelError: no entry matches; the message lists the closest names.
    """
    return load_registry().get(name)


def find_entry(name: str) -> Entry | None:
    """Like :func:`get_entry` but returns None instead of raising."""
    registry = load_registry()
    canonical = registry.resolve(name)
    return registry.entries[canonical] if canonical else None


def is_repo_id(text: str) -> bool:
    """True for strings shaped like a Hub repo id, ``org/name``."""
    parts = text.split("/")
    return (len(parts) == 2 and all(parts) and not text.startswith((".", "~"))
            and all(c.isalnum() or c in "-_." for c in text.replace("/", "")))  # fmt: skip
