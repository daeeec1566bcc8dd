"""Reader for plain torch state-dict files (``.pt``/``.pth``), of any family that reads them.

Such files carry tensors but, unless ``ganzoo export`` wrote them, no constructor kwargs: a dict
of state dicts under ``G``/``D``/``G_ema`` (or the usual spellings), possibly beside optimizer
states and counters, or a single network's state dict. This module finds the state dicts and
which family they belong to; the family says which network a state dict is and infers the
kwargs from its tensors (:meth:`ganzoo.architectures.Architecture.state_dict_role`,
:meth:`~ganzoo.architectures.Architecture.infer_kwargs`; asked of the families whose
``formats`` list ``state-dict-pt``). A file that ``ganzoo export`` wrote names its family and
stores the kwargs, so any family's export reads back.

The file is loaded with :func:`ganzoo.readers.safe_pickle.load_torch_file`, which never runs code.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import torch

from ganzoo._build import check_state_dict, format_names, network_skeleton
from ganzoo.architectures import Architecture, get_architecture, known_architectures
from ganzoo.errors import ConversionError, GanzooError
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
from ganzoo.readers.safe_pickle import load_torch_file

FORMAT = "state-dict-pt"

# Top-level keys under which files store each network, in order of preference.
_NETWORK_KEYS: dict[str, tuple[str, ...]] = {
    "G_ema": ("G_ema", "g_ema", "generator_ema", "Gs"),
    "G": ("G", "g", "generator"),
    "D": ("D", "d", "discriminator"),
}
# Prefixes that wrappers add to every tensor name: DataParallel/DDP and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _families() -> list[Architecture]:
    """The families that read plain state dicts, in the table's order."""
    return [a for a in known_architectures().values() if FORMAT in a.formats]


def _hints() -> str:
    return "; ".join(f"{a.name}: {a.state_dict_hint}" for a in _families() if a.state_dict_hint)


def _recognize(state_dict: Mapping[str, torch.Tensor]) -> tuple[Architecture, str] | None:
    """The first family that recognizes the state dict, with the role it says it is."""
    for architecture in _families():
        role = architecture.state_dict_role(state_dict)
        if role is not None:
            return architecture, role
    return None


def _is_tensor_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _strip_wrapper_prefix(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Removes prefixes that DataParallel/DDP (``module.``) or torch.compile add to every name."""
    result = dict(state_dict)
    stripped = []
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if result and all(name.startswith(prefix) for name in result):
                result = {name[len(prefix):]: tensor for name, tensor in result.items()}
                stripped.append(prefix)
                changed = True
    return result, stripped


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merges ``override`` into a copy of ``base`` (nested dicts merge, other values replace)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _find_networks(obj: Any, where: str) -> tuple[dict[str, dict[str, torch.Tensor]], list[str], str]:
    """Splits a loaded file into network state dicts.

    Returns:
        (networks, ignored, layout): slot (``G_ema``/``G``/``D``) -> raw state dict, the
        top-level keys that were ignored, and a description of the layout.
    """
    if _is_tensor_dict(obj):
        stripped, _ = _strip_wrapper_prefix(obj)
        found = _recognize(stripped)
        if found is None:
            raise ConversionError(f"{where}: a single state dict of no known family's network ({_hints()})")
        slot = "D" if found[1] == "discriminator" else "G_ema"
        return {slot: dict(obj)}, [], f"a single {found[1]} state dict"
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{where}: expected a dict of state dicts, found {type(obj).__name__}")
    if _is_tensor_dict(obj.get("state_dict")):
        networks, ignored, layout = _find_networks(obj["state_dict"], where)
        ignored += [str(key) for key in obj if key != "state_dict"]
        return networks, ignored, f"{layout} under 'state_dict'"

    networks: dict[str, dict[str, torch.Tensor]] = {}
    used_keys: list[str] = []
    for slot, candidates in _NETWORK_KEYS.items():
        for key in candidates:
            if key in obj:
                value = obj[key]
                if not _is_tensor_dict(value):
                    raise ConversionError(f"{where}: entry {key!r} is not a state dict of tensors")
                networks[slot] = dict(value)
                used_keys.append(key)
                break
    if not networks:
        keys = format_names([repr(k) for k in obj])
        raise ConversionError(
            f"{where}: no network state dict found (expected keys G/D/G_ema, g/d/g_ema or "
            f"generator/discriminator; found {keys})"
        )
    ignored = [str(key) for key in obj if key not in used_keys]
    return networks, ignored, "networks under keys " + ", ".join(repr(k) for k in used_keys)


def read_state_dict_file(path: str | os.PathLike, config: Mapping[str, Any] | None = None) -> ForeignCheckpoint:
    """Reads a torch state-dict file into a :class:`ForeignCheckpoint`.

    Accepted layouts: a dict of state dicts under ``G``/``D``/``G_ema`` (also ``g``/``d``/``g_ema``
    and ``generator``/``discriminator``/``generator_ema``), possibly beside non-network entries
    (optimizer states, counters: ignored, with a note); a single network's state dict (generator
    or discriminator, as its family tells from the tensor names); either wrapped in
    ``{"state_dict": ...}``. A ``module.`` (DataParallel/DDP) or ``_orig_mod.`` (torch.compile)
    prefix on every tensor name is removed. A file with only a raw generator ``G`` puts it in the
    ``G_ema`` slot, as the generator to sample from.

    The family: the file's ``architecture`` entry (``ganzoo export`` writes it), else the first
    family that recognizes the tensor names. Constructor kwargs: a file entry ``init_kwargs``
    (role -> kwargs, as ``ganzoo export`` writes) is used as stored; otherwise the family infers
    them from the tensors. ``config`` (``{"generator": {...}, "discriminator": {...}}``, e.g. a
    ganzoo ``config.json``) is deep-merged over either, so it can fix just the values tensors
    cannot tell (``conv_clamp``, ``mbstd_group_size``, …). ``notes`` holds one line per network
    saying which kwargs were inferred, defaulted, stored or given.

    Raises:
        ConversionError: no network found, kwargs cannot be inferred, or a tensor is missing,
            unexpected or of the wrong shape.
        UnsafeCheckpointError: the file asks to run code (from ``load_torch_file``).
    """
    where = os.fspath(path)
    config = _checked_config(config, where)
    obj = load_torch_file(path)
    raw_networks, ignored, layout = _find_networks(obj, where)
    file_kwargs, family = _stored_settings(obj, ignored)
    result = ForeignCheckpoint(format=FORMAT)
    result.extra["layout"] = layout
    if ignored:
        result.extra["ignored_entries"] = ignored
        result.notes.append(f"ignored non-network entries: {format_names([repr(k) for k in ignored])}")
    source_role = {slot: slot for slot in raw_networks}
    if "G_ema" not in raw_networks and "G" in raw_networks:
        raw_networks["G_ema"] = raw_networks.pop("G")
        source_role = {"G_ema": "G", **({"D": "D"} if "D" in raw_networks else {})}
        result.notes.append("no EMA generator in the file; its only generator G is used as G_ema")
    architecture = _family(family, raw_networks, where)
    result.architecture = architecture.name
    for slot in ("G_ema", "G", "D"):
        if slot in raw_networks:
            stored = file_kwargs.get(source_role[slot])
            spec, notes = _network(architecture, slot, raw_networks[slot], stored, config, f"{where} [{slot}]")
            setattr(result, slot, spec)
            result.notes.append(f"{slot}: " + "; ".join(notes))
    return result


def _checked_config(config: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    if config is not None and not isinstance(config, Mapping):
        raise ConversionError(f"{where}: config must be a JSON object with 'generator'/'discriminator' entries")
    config = dict(config or {})
    for key in ("generator", "discriminator"):
        if key in config and not isinstance(config[key], Mapping):
            raise ConversionError(f"{where}: config[{key!r}] must be a JSON object of constructor kwargs")
    return config


def _stored_settings(obj: Any, ignored: list[str]) -> tuple[dict[str, Any], str | None]:
    """What ``ganzoo export`` stores beside the state dicts: each role's kwargs (under
    ``init_kwargs``) and the family's name (``architecture``); both taken off ``ignored``."""
    file_kwargs: dict[str, Any] = {}
    if isinstance(obj, Mapping) and "init_kwargs" in ignored and isinstance(obj["init_kwargs"], Mapping):
        file_kwargs = {str(role): value for role, value in obj["init_kwargs"].items() if isinstance(value, Mapping)}
        ignored.remove("init_kwargs")
    family = obj.get("architecture") if isinstance(obj, Mapping) else None
    if not isinstance(family, str):
        return file_kwargs, None
    if "architecture" in ignored:
        ignored.remove("architecture")
    return file_kwargs, family


def _family(name: str | None, raw_networks: Mapping[str, Mapping[str, torch.Tensor]], where: str) -> Architecture:
    """The family the file names, else the first that recognizes one of its networks (G_ema, G,
    then D)."""
    if name is not None:
        try:
            return get_architecture(name)
        except GanzooError as exc:
            raise ConversionError(f"{where}: {exc}") from None
    for slot in ("G_ema", "G", "D"):
        if slot in raw_networks:
            found = _recognize(_strip_wrapper_prefix(raw_networks[slot])[0])
            if found is not None:
                return found[0]
    slot = next(iter(raw_networks))
    role = "discriminator" if slot == "D" else "generator"
    raise ConversionError(f"{where} [{slot}]: tensor names are not those of any known family's {role} ({_hints()})")


def _network(architecture: Architecture, slot: str, raw: Mapping[str, torch.Tensor], stored: Mapping[str, Any] | None,
             config: Mapping[str, Any], label: str) -> tuple[NetworkSpec, list[str]]:  # fmt: skip
    """One network: its kwargs (stored, else inferred by the family; ``config`` merged over
    them) and its state dict, checked against the network those kwargs build."""
    state_dict, stripped = _strip_wrapper_prefix(raw)
    state_dict = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
    role = "discriminator" if slot == "D" else "generator"
    given = config.get(role)
    if stored is not None:
        kwargs, notes = copy.deepcopy(dict(stored)), ["constructor kwargs read from the file's 'init_kwargs'"]
    elif FORMAT not in architecture.formats:
        raise ConversionError(f"{label}: no constructor kwargs stored for it under 'init_kwargs' "
                              f"({architecture.name} does not infer them from tensors)")  # fmt: skip
    else:
        if architecture.state_dict_role(state_dict) != role:
            raise ConversionError(f"{label}: tensor names are not those of a {architecture.name} {role}")
        try:
            kwargs, notes = architecture.infer_kwargs(role, state_dict, label)
        except ConversionError:
            if given is None:
                raise
            kwargs, notes = {}, ["could not infer kwargs from tensors"]
    if given is not None:
        kwargs = _merge(kwargs, given)
        notes.append(f"given by config (override): {', '.join(sorted(given))}")
    if stripped:
        notes.append(f"removed tensor-name prefix {''.join(stripped)!r}")
    cls = architecture.network_class(slot)
    _, expected = network_skeleton(cls, kwargs, label)
    check_state_dict(state_dict, expected, label)
    return NetworkSpec(class_name=cls.__name__, init_kwargs=kwargs, state_dict=state_dict), notes
