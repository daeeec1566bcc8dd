"""Reads StyleGAN2-ADA (PyTorch) network pickles into a :class:`ForeignCheckpoint`.

A StyleGAN2-ADA pickle is either a training snapshot, a dict with ``G``, ``D``, ``G_ema``,
``augment_pipe`` and ``training_set_kwargs`` (the official release pickles have this form), or a
single network. Every network is a "persistent" object whose pickled ``meta['state']`` is the
module's ``__dict__``. The file is read with :func:`ganzoo.readers.safe_pickle.load_pickle`, so
the network source embedded in it is never executed; this module only walks the pickled module
dicts, exactly as ``nn.Module.state_dict()`` would, and collects the constructor kwargs.

StyleGAN3 pickles use the same persistence format and are read the same way; their generators
are recognised by their module classes and read as the ``stylegan3`` architecture.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec
from ganzoo.readers.safe_pickle import PersistentObject, TFNetwork, load_pickle, plain
from ganzoo.errors import ConversionError, GanzooError

__all__ = ["FORMAT", "read_stylegan2_ada_pickle", "networks_from_pickle"]

FORMAT = "stylegan2-ada-pkl"

# Positional constructor parameters, in order, of the classes whose pickled ``_init_args`` we can
# name. The persistence wrapper records positional and keyword arguments separately; released
# pickles only use keywords, but a network built with positional arguments stays readable.
_POSITIONAL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "Generator": (
        "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
        "synthesis_kwargs",
    ),
    "Discriminator": (
        "c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
        "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs",
        "epilogue_kwargs",
    ),
}  # fmt: skip

_NETWORK_SLOTS = ("G_ema", "G", "D")
_MAX_MODULE_DEPTH = 64

# The module classes of StyleGAN2-ADA's training/networks.py (StyleGAN3's networks_stylegan2.py,
# whose Discriminator StyleGAN3 trains with, defines the same ones). A pickle is read as a
# StyleGAN2 network only when every module in its tree is one of these.
_STYLEGAN2_MODULES = frozenset({
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
    "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "Discriminator", "DiscriminatorBlock",
    "DiscriminatorEpilogue", "MinibatchStdLayer",
})  # fmt: skip
# The module classes of a StyleGAN3 generator (networks_stylegan3.py); SynthesisInput, its
# Fourier-feature input layer, exists only there and tells the two families apart.
_STYLEGAN3_MODULES = frozenset({
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisInput", "SynthesisLayer", "FullyConnectedLayer",
})  # fmt: skip


def read_stylegan2_ada_pickle(path: str | os.PathLike) -> ForeignCheckpoint:
    """Reads a StyleGAN2-ADA (or StyleGAN3) PyTorch pickle without running any code from it.

    Args:
        path: the ``.pkl`` file: a training snapshot dict (``G``, ``D``, ``G_ema``,
            ``augment_pipe``, ``training_set_kwargs``) or a single pickled network.

    Returns:
        A :class:`ForeignCheckpoint` of format ``"stylegan2-ada-pkl"``. Each network has its class
        short name, its constructor kwargs (JSON-able) and its state dict with the names
        ``nn.Module.state_dict()`` gives. ``extra`` holds ``training_set_kwargs`` and, for
        snapshots with an augmentation pipeline, ``augment_pipe`` (class name, kwargs, ADA ``p``).

    Raises:
        UnsafeCheckpointError: the pickle asks for anything beyond data (see ``load_pickle``).
        ConversionError: the file is corrupt, or holds no StyleGAN2-ADA network, or a network
            lacks its constructor kwargs or holds non-tensor parameters.
    """
    where = os.fspath(path)
    return networks_from_pickle(load_pickle(path), where)


def networks_from_pickle(data: Any, where: str) -> ForeignCheckpoint:
    """Collects the networks of an already unpickled StyleGAN2-ADA object.

    Args:
        data: what :func:`ganzoo.readers.safe_pickle.load_pickle` returned for the file.
        where: the file name used in error messages.

    Returns:
        The networks found (see :func:`read_stylegan2_ada_pickle`).

    Raises:
        ConversionError: no networks, or a malformed network.
    """
    result = ForeignCheckpoint(format=FORMAT, architecture="stylegan2")  # "stylegan3" when its G says so
    networks: dict[str, PersistentObject] = {}

    if isinstance(data, PersistentObject):
        role = _bare_role(data, where)
        networks[role] = data
        if role == "D":
            result.notes.append("the file holds a discriminator only")
    elif isinstance(data, dict):
        for key, value in data.items():
            if key in _NETWORK_SLOTS:
                if value is None:
                    result.notes.append(f"snapshot entry '{key}' is empty")
                    continue
                if not isinstance(value, PersistentObject):
                    raise ConversionError(
                        f"{where}: snapshot entry '{key}' is a {type(value).__name__}, "
                        f"not a StyleGAN2-ADA network"
                    )
                networks[key] = value
            elif key == "training_set_kwargs":
                result.extra["training_set_kwargs"] = _plain_or_note(value, where, key, result)
            elif key == "augment_pipe":
                if value is not None:
                    result.extra["augment_pipe"] = _describe_augment_pipe(value, where, result)
            else:
                value_plain = _plain_or_none(value)
                if value_plain is not None or value is None:
                    result.extra[str(key)] = value_plain
                else:
                    result.notes.append(
                        f"ignored snapshot entry {str(key)!r} ({type(value).__name__})"
                    )
        if not networks:
            raise ConversionError(
                f"{where}: no StyleGAN2-ADA networks found (a dict without 'G', 'D' or 'G_ema')"
            )
    elif _is_tf(data):
        raise ConversionError(
            f"{where}: a StyleGAN2 TensorFlow pickle (dnnlib.tflib Network objects), not a "
            f"StyleGAN2-ADA PyTorch pickle"
        )
    else:
        raise ConversionError(
            f"{where}: no StyleGAN2-ADA networks found (the pickle holds a {type(data).__name__})"
        )

    if "G_ema" not in networks and "G" in networks:
        networks["G_ema"] = networks.pop("G")
        result.notes.append("no G_ema in the file; its only generator G is used as G_ema")
    families = {_check_known_network(networks[slot], where, slot) for slot in _NETWORK_SLOTS if slot in networks}
    if "stylegan3" in families:
        result.architecture = "stylegan3"  # its D is the StyleGAN2 discriminator
    for slot in _NETWORK_SLOTS:
        if slot in networks:
            setattr(result, slot, _network_spec(networks[slot], where, slot))
    return result


def _module_classes(network: PersistentObject) -> set[str]:
    """The class names of every pickled module in ``network``'s tree (itself included)."""
    names: set[str] = set()
    seen: set[int] = set()
    stack = [(network, 0)]
    while stack:
        module, depth = stack.pop()
        if id(module) in seen or depth > _MAX_MODULE_DEPTH:
            continue  # cycles and depth are reported by module_state_dict
        seen.add(id(module))
        names.add(module.short_name)
        children = module.state.get("_modules") if isinstance(module.state, dict) else None
        if isinstance(children, dict):
            stack.extend((child, depth + 1) for child in children.values() if isinstance(child, PersistentObject))
    return names


def _check_known_network(network: PersistentObject, where: str, slot: str) -> str:
    """The family of a pickled network (``"stylegan2"`` or ``"stylegan3"``, read from its module
    classes); refuses, in one line that names it, a network of a family this version cannot build."""
    classes = _module_classes(network)
    if "SynthesisInput" in classes and slot != "D" and classes <= _STYLEGAN3_MODULES:
        return "stylegan3"
    unknown = sorted(classes - _STYLEGAN2_MODULES)
    if unknown:
        raise ConversionError(
            f"{where}: {slot} is a network ganzoo does not know (class {network.class_name!r} with "
            f"modules {', '.join(unknown)}); this version reads StyleGAN2-ADA and StyleGAN3 networks"
        )
    return "stylegan2"


def _is_tf(data: Any) -> bool:
    if isinstance(data, TFNetwork):
        return True
    return isinstance(data, (tuple, list)) and any(isinstance(x, TFNetwork) for x in data)


def _bare_role(network: PersistentObject, where: str) -> str:
    name = network.short_name
    if "Generator" in name:
        return "G_ema"
    if "Discriminator" in name:
        return "D"
    raise ConversionError(
        f"{where}: the pickled network is a {name!r}, neither a Generator nor a Discriminator"
    )


def _plain_or_none(value: Any) -> Any:
    try:
        return plain(value)
    except GanzooError:
        return None


def _plain_or_note(value: Any, where: str, key: str, result: ForeignCheckpoint) -> Any:
    try:
        return plain(value, what=f"{where}: {key}")
    except ConversionError as exc:
        result.notes.append(f"{key} not kept: {exc}")
        return None


def _init_kwargs(network: PersistentObject, where: str, slot: str) -> dict[str, Any]:
    """The network's constructor kwargs: ``_init_kwargs`` plus named ``_init_args``."""
    state = network.state
    label = f"{where}: {slot} ({network.short_name})"
    if not isinstance(state, dict):
        raise ConversionError(f"{label}: the pickled network has no state dict")
    if "_init_kwargs" not in state:
        raise ConversionError(f"{label}: the pickled network has no _init_kwargs")
    kwargs = plain(state["_init_kwargs"], what=f"{label} init_kwargs")
    if not isinstance(kwargs, dict):
        raise ConversionError(f"{label}: _init_kwargs is not a dict")
    args = plain(state.get("_init_args") or [], what=f"{label} init_args")
    if not isinstance(args, list):
        raise ConversionError(f"{label}: _init_args is not a tuple")
    if args:
        names = _POSITIONAL_PARAMETERS.get(network.short_name)
        if names is None or len(args) > len(names):
            raise ConversionError(
                f"{label}: {len(args)} positional constructor arguments that cannot be named"
            )
        for name, value in zip(names, args):
            if name in kwargs:
                raise ConversionError(f"{label}: argument {name!r} given twice")
            kwargs[name] = value
    return kwargs


def _network_spec(network: PersistentObject, where: str, slot: str) -> NetworkSpec:
    return NetworkSpec(
        class_name=network.short_name,
        init_kwargs=_init_kwargs(network, where, slot),
        state_dict=module_state_dict(network, where=f"{where}: {slot}"),
    )


def module_state_dict(network: PersistentObject, *, where: str) -> dict[str, torch.Tensor]:
    """Builds ``network.state_dict()`` from a pickled persistent module, without the module.

    Parameters come first, then persistent buffers, then each submodule under ``name.``, the
    order ``nn.Module.state_dict()`` uses; ``None`` entries are skipped. Each tensor owns its
    memory (contiguous, not shared), so the result can be written straight to safetensors.

    Args:
        network: the pickled network.
        where: the file (and network) named in error messages.

    Returns:
        Tensor name -> tensor.

    Raises:
        ConversionError: a module state without ``_parameters``/``_buffers``/``_modules``, a
            non-tensor parameter, a submodule that is not a pickled module, a cycle, or two
            tensors with the same name.
    """
    out: dict[str, torch.Tensor] = {}
    seen_storage: set[int] = set()
    on_path: set[int] = set()

    def own(tensor: torch.Tensor) -> torch.Tensor:
        # Views of larger storages, non-contiguous tensors and storages shared with another
        # entry are copied: safetensors and strict loading want one tensor per buffer.
        nbytes = tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        shared = storage.data_ptr() in seen_storage and nbytes > 0
        if shared or not tensor.is_contiguous() or storage.nbytes() != nbytes or tensor.storage_offset():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
            storage = tensor.untyped_storage()
        if nbytes:
            seen_storage.add(storage.data_ptr())
        return tensor.detach()

    def visit(module: PersistentObject, prefix: str, depth: int) -> None:
        label = f"{where}: module '{prefix[:-1] or '<root>'}'"
        if depth > _MAX_MODULE_DEPTH or id(module) in on_path:
            raise ConversionError(f"{label}: modules nested too deep or contain themselves")
        state = module.state
        if not isinstance(state, dict):
            raise ConversionError(f"{label}: no module state")
        groups = []
        for key in ("_parameters", "_buffers", "_modules"):
            group = state.get(key)
            if not isinstance(group, dict):
                raise ConversionError(f"{label}: {key} is missing or not a dict")
            groups.append(group)
        parameters, buffers, modules = groups
        non_persistent = state.get("_non_persistent_buffers_set") or set()
        on_path.add(id(module))
        for kind, group in (("parameter", parameters), ("buffer", buffers)):
            for name, tensor in group.items():
                if tensor is None or (kind == "buffer" and name in non_persistent):
                    continue
                if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                    raise ConversionError(f"{label}: {kind} {name!r} is not a tensor")
                full = prefix + name
                if full in out:
                    raise ConversionError(f"{where}: two tensors named {full!r}")
                out[full] = own(tensor)
        for name, child in modules.items():
            if child is None:
                continue
            if not isinstance(name, str) or not isinstance(child, PersistentObject):
                raise ConversionError(
                    f"{label}: submodule {name!r} is a {type(child).__name__}, not a pickled "
                    f"network module"
                )
            visit(child, f"{prefix}{name}.", depth + 1)
        on_path.discard(id(module))

    visit(network, "", 0)
    return out


def _describe_augment_pipe(pipe: Any, where: str, result: ForeignCheckpoint) -> dict[str, Any]:
    """Class, kwargs and current ADA probability ``p`` of a pickled augmentation pipeline."""
    if not isinstance(pipe, PersistentObject) or not isinstance(pipe.state, dict):
        result.notes.append(f"augment_pipe is a {type(pipe).__name__}; not kept")
        return {}
    info: dict[str, Any] = {"class_name": pipe.short_name}
    kwargs = pipe.state.get("_init_kwargs")
    info["init_kwargs"] = _plain_or_note(kwargs or {}, where, "augment_pipe init_kwargs", result)
    args = _plain_or_none(pipe.state.get("_init_args") or [])
    if args:
        info["init_args"] = args
    buffers = pipe.state.get("_buffers")
    p = buffers.get("p") if isinstance(buffers, dict) else None
    if isinstance(p, torch.Tensor) and p.numel() == 1:
        info["p"] = float(p.reshape(()).item())
    return info
