"""Reader of BigGAN-PyTorch checkpoints (format ``"biggan-pytorch"``), through ganzoo's restricted
loader only (:func:`ganzoo.readers.safe_pickle.load_torch_file`: nothing in the files runs).

What it reads:

* the release's weights folder, as its ``utils.save_weights`` writes it: ``G.pth``, ``G_ema.pth``,
  ``D.pth`` (``state_dict()`` of each network), ``G_optim.pth``/``D_optim.pth`` (optimizer states:
  noted, not read) and ``state_dict.pth`` (training counters and ``config``, the settings the
  networks were built with);
* a zip of that folder (the files at the top or in one folder inside, e.g. ``138k/G_ema.pth``), as
  Google Drive hands out a shared folder;
* a lone network file (``G_ema.pth`` or ``G.pth``), or a dict of them under ``G_ema``/``G``/``D``
  (``ganzoo export`` writes one, with ``init_kwargs``).

Either torch serialization (the legacy one of the 2019 release, or zip). The constructor
settings come, in this order of precedence, from ``--config`` (``{"generator": {...},
"discriminator": {...}}``, or one flat BigGAN-PyTorch config for both), the file's
``init_kwargs``, ``state_dict.pth``'s ``config``, and otherwise from the tensors' names and shapes
(:func:`infer_generator_kwargs`, :func:`infer_discriminator_kwargs`), the notes saying which.

The release's ``train.py`` stores its activation modules (``torch.nn.ReLU`` objects) in that
``config``: the restricted loader refuses a file that names a class, so such a ``state_dict.pth``
is not read, the settings are inferred instead, and a note says so. Any other refusal is an error.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from ganzoo._build import check_state_dict, format_names, network_skeleton
from ganzoo.architectures.biggan.networks import (
    _D_LABELS,
    _D_WIDTHS,
    _G_WIDTHS,
    Discriminator,
    Generator,
)
from ganzoo.errors import ConversionError, UnsafeCheckpointError
from ganzoo.readers.base import ForeignCheckpoint, NetworkSpec, tensor_shape

FORMAT = "biggan-pytorch"
ARCHITECTURE = "biggan"
WEIGHT_FILES = {"G_ema": "G_ema.pth", "G": "G.pth", "D": "D.pth"}
STATE_FILE = "state_dict.pth"
OPTIMIZER_FILES = ("G_optim.pth", "D_optim.pth")
# Tensor names only a BigGAN-PyTorch generator has (its output BN and convolution).
_MARKERS = (b"output_layer.2.weight", b"output_layer.0.gain")
_LEGACY_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# What a tensor file in a zip may decompress to, relative to its compressed size (weights hardly
# compress; this refuses decompression bombs before anything is inflated).
_MAX_INFLATION = 64
# The release's train.py stores these modules in state_dict.pth's config.
_RELEASE_MODULES = ("torch.nn.modules.activation.ReLU",)
# Settings the tensors cannot tell, as the ImageNet 128 release was trained (its
# scripts/launch_BigGAN_bs256x8.sh): spectral-norm epsilon 1e-6, batch-norm epsilon 1e-5, ReLU.
RELEASE_DEFAULTS = {"SN_eps": 1e-6, "BN_eps": 1e-5, "activation": "relu", "num_SV_itrs": 1}
_G_RESOLUTION = {len(widths): res for res, widths in _G_WIDTHS.items()}
_D_RESOLUTION = {len(widths): res for res, widths in _D_WIDTHS.items()}
_ROLE_KEY = {"G_ema": "generator", "G": "generator", "D": "discriminator"}
_CLASSES = {"G_ema": Generator, "G": Generator, "D": Discriminator}
_TRAINING_STATE = ("itr", "epoch", "save_num", "save_best_num", "best_IS", "best_FID")


# ----------------------------------------------------------------------------------------------
# Recognizing


def _has_marker(head: bytes) -> bool:
    return any(marker in head for marker in _MARKERS)


def _file_head(path: Path, size: int = 1 << 16) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _zip_names(path: Path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _is_torch_archive(names: list[str]) -> bool:
    return any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names)


def _generator_members(names: list[str]) -> list[str]:
    return [n for n in names if PurePosixPath(n).name in (WEIGHT_FILES["G_ema"], WEIGHT_FILES["G"])]


def sniff(path: Path, head: bytes) -> bool:
    """Whether ``path`` is a BigGAN-PyTorch weights folder, a zip of one, or a torch file holding
    a BigGAN-PyTorch generator (recognized by its ``output_layer`` tensors)."""
    path = Path(path)
    if path.is_dir():
        return any(_has_marker(_file_head(path / WEIGHT_FILES[role])) for role in ("G_ema", "G"))
    if zipfile.is_zipfile(path):
        names = _zip_names(path)
        if names is None:
            return False
        if _is_torch_archive(names):
            return _has_marker(head)
        return bool(_generator_members(names))
    return _LEGACY_TORCH_MAGIC in head[:32] and _has_marker(head)


# ----------------------------------------------------------------------------------------------
# Settings: from the release's config, or from the tensors


def _parameters(cls: type) -> list[str]:
    return [name for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind is p.POSITIONAL_OR_KEYWORD and name not in ("self", "skip_init")]  # fmt: skip


def kwargs_from_release_config(config: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The constructor kwargs of ``role``'s network in a BigGAN-PyTorch ``config`` dict (its other
    keys, learning rates and paths, are left out). ``G_nl``/``D_nl`` name the activation where
    ``G_activation``/``D_activation`` is not a name."""
    cls = _CLASSES[role]
    kwargs = {name: copy.deepcopy(config[name]) for name in _parameters(cls) if name in config}
    act, nl = ("D_activation", "D_nl") if role == "D" else ("G_activation", "G_nl")
    if not isinstance(kwargs.get(act), str):
        kwargs.pop(act, None)
        if isinstance(config.get(nl), str):
            kwargs[act] = config[nl]
    return kwargs


def _numbered(state_dict: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for name in state_dict if (m := regex.fullmatch(name))})



def _block_count(state_dict: Mapping[str, torch.Tensor], table: Mapping[int, int], what: str, where: str) -> int:
    blocks = _numbered(state_dict, r"blocks\.(\d+)\.0\.conv1\.weight")
    if not blocks or blocks != list(range(len(blocks))):
        raise ConversionError(f"{where}: {what} blocks {blocks} are not numbered 0..n-1")
    if len(blocks) not in table:
        raise ConversionError(f"{where}: {len(blocks)} {what} blocks match no BigGAN resolution ({sorted(table.values())})")
    return len(blocks)


def _spectral_norms(state_dict: Mapping[str, torch.Tensor], layer: str) -> int:
    return len(_numbered(state_dict, re.escape(layer) + r"\.u(\d+)"))


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())


def infer_generator_kwargs(state_dict: Mapping[str, torch.Tensor], where: str = "generator") -> tuple[dict, list[str]]:
    """Generator kwargs from a BigGAN-PyTorch generator's tensor names and shapes.

    From the tensors: ``resolution`` (number of blocks), ``G_ch``, ``bottom_width``,
    ``n_classes``, ``G_shared``/``shared_dim`` (``shared.weight``), ``hier`` and ``dim_z`` (the
    first linear layer's inputs and the BN gains' inputs), ``G_attn`` (blocks with ``gamma``),
    ``G_param`` and ``num_G_SVs`` (the ``u{k}`` buffers), ``norm_style`` (BN buffers or none).
    Defaulted (:data:`RELEASE_DEFAULTS`): ``SN_eps``, ``BN_eps``, ``num_G_SV_itrs``, the activation.

    Returns:
        (kwargs, notes): JSON-able kwargs and a note of what was inferred and defaulted.
    """
    count = _block_count(state_dict, _G_RESOLUTION, "generator", where)
    resolution = _G_RESOLUTION[count]
    widths = _G_WIDTHS[resolution]
    in0 = tensor_shape(state_dict, "blocks.0.0.conv1.weight", 4, where)[1]
    if in0 % widths[0]:
        raise ConversionError(f"{where}: blocks.0.0.conv1 has {in0} input channels, not a multiple of {widths[0]}")
    G_ch = in0 // widths[0]
    linear_out, linear_in = tensor_shape(state_dict, "linear.weight", 2, where)
    bottom_width = math.isqrt(linear_out // in0) if linear_out % in0 == 0 else 0
    if bottom_width < 1 or bottom_width**2 * in0 != linear_out:
        raise ConversionError(f"{where}: linear.weight has {linear_out} outputs, not {in0} channels times a square")
    gain_shape = tensor_shape(state_dict, "blocks.0.0.bn1.gain.weight", 2, where)
    G_shared = "shared.weight" in state_dict
    if G_shared:
        n_classes, shared_dim = tensor_shape(state_dict, "shared.weight", 2, where)
        chunk = gain_shape[1] - shared_dim
        hier = chunk > 0
        if hier and chunk != linear_in:
            raise ConversionError(f"{where}: latent chunks of {chunk} (BN gains) and {linear_in} (linear.weight) disagree")
        dim_z = linear_in * (count + 1) if hier else linear_in
    else:
        n_classes, hier, dim_z, shared_dim = gain_shape[0], False, linear_in, 0
    attention = [8 << i for i in range(count) if f"blocks.{i}.1.gamma" in state_dict]
    svs = _spectral_norms(state_dict, "linear")
    norm_style = "bn" if "blocks.0.0.bn1.stored_mean" in state_dict else "nonorm"
    inferred = {
        "G_ch": G_ch, "dim_z": dim_z, "bottom_width": bottom_width, "resolution": resolution,
        "G_attn": "_".join(map(str, attention)) or "0", "n_classes": n_classes, "G_shared": G_shared,
        "shared_dim": shared_dim, "hier": hier, "G_param": "SN" if svs else "none", "norm_style": norm_style,
    }  # fmt: skip
    if svs:
        inferred["num_G_SVs"] = svs
    defaulted = {"num_G_SV_itrs": RELEASE_DEFAULTS["num_SV_itrs"], "SN_eps": RELEASE_DEFAULTS["SN_eps"],
                 "BN_eps": RELEASE_DEFAULTS["BN_eps"], "G_activation": RELEASE_DEFAULTS["activation"]}  # fmt: skip
    note = f"inferred from tensor names and shapes: {_describe(inferred)}; defaulted to the ImageNet release's settings (the tensors cannot tell): {_describe(defaulted)}"
    if norm_style == "bn":
        note += " ('bn' norm style assumed: 'in' stores the same tensors)"
    return {**inferred, **defaulted}, [note]


def infer_discriminator_kwargs(state_dict: Mapping[str, torch.Tensor], where: str = "discriminator") -> tuple[dict, list[str]]:
    """Discriminator kwargs from a BigGAN-PyTorch discriminator's tensor names and shapes:
    ``resolution``, ``D_ch``, ``D_wide``, ``D_attn``, ``n_classes``, ``output_dim``,
    ``num_D_SVs``; defaulted: ``SN_eps``, ``num_D_SV_itrs``, the activation."""
    count = _block_count(state_dict, _D_RESOLUTION, "discriminator", where)
    resolution = _D_RESOLUTION[count]
    out0 = tensor_shape(state_dict, "blocks.0.0.conv2.weight", 4, where)[0]
    if out0 % _D_WIDTHS[resolution][0]:
        raise ConversionError(f"{where}: blocks.0.0.conv2 has {out0} channels, not a multiple of {_D_WIDTHS[resolution][0]}")
    hidden0 = tensor_shape(state_dict, "blocks.0.0.conv1.weight", 4, where)[0]
    n_classes = tensor_shape(state_dict, "embed.weight", 2, where)[0]
    output_dim = tensor_shape(state_dict, "linear.weight", 2, where)[0]
    labels = _D_LABELS[resolution]
    with_attention = {i for i in range(count) if f"blocks.{i}.1.gamma" in state_dict}
    named = sorted({labels[i] for i in with_attention}, reverse=True)
    if {i for i in range(count) if labels[i] in named} != with_attention:
        raise ConversionError(f"{where}: attention in blocks {sorted(with_attention)} is not what any D_attn setting builds")
    inferred = {
        "D_ch": out0 // _D_WIDTHS[resolution][0], "D_wide": hidden0 == out0, "resolution": resolution,
        "D_attn": "_".join(map(str, named)) or "0", "n_classes": n_classes, "output_dim": output_dim,
        "num_D_SVs": max(_spectral_norms(state_dict, "linear"), 1),
    }  # fmt: skip
    defaulted = {"num_D_SV_itrs": RELEASE_DEFAULTS["num_SV_itrs"], "SN_eps": RELEASE_DEFAULTS["SN_eps"],
                 "D_activation": RELEASE_DEFAULTS["activation"]}  # fmt: skip
    note = f"inferred from tensor names and shapes: {_describe(inferred)}; defaulted to the ImageNet release's settings (the tensors cannot tell): {_describe(defaulted)}"
    return {**inferred, **defaulted}, [note]


def _looks_like(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    if "output_layer.2.weight" in state_dict and "linear.weight" in state_dict:
        return "Generator"
    if "embed.weight" in state_dict and "linear.weight" in state_dict and "blocks.0.0.conv1.weight" in state_dict:
        return "Discriminator"
    return None


# ----------------------------------------------------------------------------------------------
# Sources: a folder, a zip of one, or a single file


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    result, stripped = dict(state_dict), []
    for prefix in _WRAPPER_PREFIXES:
        if result and all(name.startswith(prefix) for name in result):
            result = {name[len(prefix):]: tensor for name, tensor in result.items()}
            stripped.append(prefix)
    return result, stripped


def _tensor_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


class _Folder:
    """Files of a weights folder by name: ``files`` maps a name to a loader of its content."""

    def __init__(self, label: str, files: dict[str, Callable[[], Any]], others: list[str],
                 close: Callable[[], None] = lambda: None):  # fmt: skip
        self.label, self.files, self.others, self.close = label, files, others, close


def _folder_on_disk(path: Path) -> _Folder:
    from ganzoo.readers.safe_pickle import load_torch_file

    names = sorted(p.name for p in path.iterdir() if p.is_file())
    files = {name: (lambda p=path / name: load_torch_file(p)) for name in names if name.endswith(".pth")}
    return _Folder(str(path), files, names)


def _folder_in_zip(path: Path) -> _Folder:
    from ganzoo.readers.safe_pickle import load_torch_file

    try:
        archive = zipfile.ZipFile(path)
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ConversionError(f"{path}: corrupt zip archive ({exc})") from None
    folders = sorted({str(PurePosixPath(n).parent) for n in _generator_members([i.filename for i in infos])})
    if len(folders) != 1:
        archive.close()
        raise ConversionError(f"{path}: weights of several checkpoints in one zip (folders {', '.join(folders)}); unzip the one to convert")
    folder = folders[0]
    members = {PurePosixPath(i.filename).name: i for i in infos if str(PurePosixPath(i.filename).parent) == folder}

    def loader(info: zipfile.ZipInfo) -> Callable[[], Any]:
        def load() -> Any:
            where = f"{path}:{info.filename}"
            if info.file_size > _MAX_INFLATION * info.compress_size + (1 << 20):
                raise UnsafeCheckpointError(f"{where}: refused: it would inflate {info.compress_size:,} bytes to {info.file_size:,}")
            try:
                with archive.open(info) as f:
                    data = f.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise ConversionError(f"{where}: corrupt zip member ({exc})") from None
            if len(data) != info.file_size:
                raise ConversionError(f"{where}: corrupt zip member (size differs from its header)")
            return load_torch_file(data, what=where)

        return load

    files = {name: loader(info) for name, info in members.items() if name.endswith(".pth")}
    label = f"{path}:{folder}" if folder != "." else str(path)
    return _Folder(label, files, sorted(members), archive.close)


def _read_release_state(folder: _Folder, notes: list[str]) -> Mapping[str, Any] | None:
    """``state_dict.pth``'s content, or None when absent or refused for the release's stored
    activation modules (with a note)."""
    if STATE_FILE not in folder.files:
        return None
    try:
        state = folder.files[STATE_FILE]()
    except UnsafeCheckpointError as exc:
        if not any(f"'{name}'" in str(exc) for name in _RELEASE_MODULES):
            raise
        notes.append(f"{STATE_FILE} not read: its config stores the release's activation modules "
                     f"({', '.join(_RELEASE_MODULES)}), classes the restricted loader does not load; "
                     "the settings were inferred from the tensors instead")  # fmt: skip
        return None
    if not isinstance(state, Mapping):
        raise ConversionError(f"{folder.label}/{STATE_FILE}: expected a dict (itr, epoch, config, …), found {type(state).__name__}")
    return state


def _plain_items(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able entries of ``mapping`` (the others are left out)."""
    from ganzoo.readers.safe_pickle import plain

    out = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
            value = float(value)  # the release stores best_FID as a 0-d tensor
        try:
            out[key] = plain(value)
        except ConversionError:
            continue
    return out


# ----------------------------------------------------------------------------------------------
# Reading


def _split_config(config: Mapping[str, Any] | None, where: str) -> dict[str, dict[str, Any]]:
    """``--config`` as per-role kwargs: ``{"generator": {...}, "discriminator": {...}}``, or a
    flat BigGAN-PyTorch config used for both networks."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConversionError(f"{where}: config must be a JSON object")
    if "generator" in config or "discriminator" in config:
        out = {}
        for key in ("generator", "discriminator"):
            if key in config:
                if not isinstance(config[key], Mapping):
                    raise ConversionError(f"{where}: config[{key!r}] must be a JSON object of constructor kwargs")
                out[key] = dict(config[key])
        return out
    return {"generator": kwargs_from_release_config(config, "G"), "discriminator": kwargs_from_release_config(config, "D")}


def _network(slot: str, raw: Mapping[str, torch.Tensor], label: str, stored: Mapping[str, Any] | None,
             stored_from: str, given: Mapping[str, Any] | None) -> tuple[NetworkSpec, str]:  # fmt: skip
    """One network's spec (kwargs checked against its tensors) and its note."""
    state_dict, stripped = _strip_prefix(raw)
    state_dict = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
    expected_kind = "Discriminator" if slot == "D" else "Generator"
    kind = _looks_like(state_dict)
    if kind != expected_kind:
        raise ConversionError(f"{label}: tensor names are not those of a BigGAN-PyTorch {expected_kind.lower()}")
    infer = infer_discriminator_kwargs if slot == "D" else infer_generator_kwargs
    if stored is not None:
        kwargs, notes = copy.deepcopy(dict(stored)), [f"settings read from {stored_from}"]
    else:
        try:
            kwargs, notes = infer(state_dict, label)
        except ConversionError:
            if not given:
                raise
            kwargs, notes = {}, ["could not infer settings from the tensors"]
    if given:
        kwargs.update(copy.deepcopy(dict(given)))
        notes.append(f"given by config (override): {', '.join(sorted(given))}")
    if stripped:
        notes.append(f"removed tensor-name prefix {''.join(stripped)!r}")
    _, expected = network_skeleton(_CLASSES[slot], kwargs, label)
    check_state_dict(state_dict, expected, label)
    return NetworkSpec(class_name=expected_kind, init_kwargs=kwargs, state_dict=state_dict), f"{slot}: " + "; ".join(notes)


def _from_networks(result: ForeignCheckpoint, raw: dict[str, Mapping[str, torch.Tensor]], labels: dict[str, str],
                   stored: dict[str, Any], stored_from: str, given: dict[str, dict[str, Any]]) -> ForeignCheckpoint:  # fmt: skip
    if "G_ema" not in raw:
        if "G" not in raw:
            raise ConversionError(f"{labels.get('D', 'file')}: no generator (G_ema.pth or G.pth) beside the discriminator")
        raw["G_ema"], labels["G_ema"] = raw.pop("G"), labels.pop("G")
        stored = {("G_ema" if k == "G" else k): v for k, v in stored.items()}
        result.notes.append("no EMA generator; the raw generator G is used as G_ema")
    for slot in ("G_ema", "G", "D"):
        if slot in raw:
            spec, note = _network(slot, raw[slot], labels[slot], stored.get(slot), stored_from, given.get(_ROLE_KEY[slot]))
            setattr(result, slot, spec)
            result.notes.append(note)
    return result


def _read_folder(folder: _Folder, result: ForeignCheckpoint, given: dict[str, dict[str, Any]]) -> ForeignCheckpoint:
    raw, labels = {}, {}
    for slot, name in WEIGHT_FILES.items():
        if name in folder.files:
            obj = folder.files[name]()
            if not _tensor_dict(obj):
                raise ConversionError(f"{folder.label}/{name}: not a state dict of tensors")
            raw[slot], labels[slot] = obj, f"{folder.label}/{name}"
    if not raw:
        raise ConversionError(f"{folder.label}: no G_ema.pth, G.pth or D.pth")
    stored: dict[str, Any] = {}
    state = _read_release_state(folder, result.notes)
    if state is not None:
        result.extra["training_state"] = _plain_items({k: state[k] for k in _TRAINING_STATE if k in state})
        config = state.get("config")
        if isinstance(config, Mapping):
            if "deep" in str(config.get("model", "BigGAN")).lower():
                raise ConversionError(f"{folder.label}/{STATE_FILE}: config model {config.get('model')!r} is BigGAN-deep; this reader reads BigGAN networks")
            result.extra["release_config"] = _plain_items(config)
            stored = {slot: kwargs_from_release_config(config, slot) for slot in raw}
    optimizers = [name for name in OPTIMIZER_FILES if name in folder.files]
    if optimizers:
        result.notes.append(f"optimizer states not read: {', '.join(optimizers)}")
    known = set(WEIGHT_FILES.values()) | {STATE_FILE} | set(OPTIMIZER_FILES)
    ignored = [name for name in folder.others if name not in known]
    if ignored:
        result.notes.append(f"other files ignored: {format_names(ignored)}")
    result.extra["layout"] = "weights folder: " + ", ".join(sorted(n for n in folder.others if n in known))
    return _from_networks(result, raw, labels, stored, f"{STATE_FILE}'s config", given)


def _read_file(path: Path, result: ForeignCheckpoint, given: dict[str, dict[str, Any]]) -> ForeignCheckpoint:
    from ganzoo.readers.safe_pickle import load_torch_file

    where = os.fspath(path)
    obj = load_torch_file(path)
    if _tensor_dict(obj):
        kind = _looks_like(_strip_prefix(obj)[0])
        if kind != "Generator":
            raise ConversionError(f"{where}: a single state dict that is not a BigGAN-PyTorch generator")
        result.extra["layout"] = "a single generator state dict"
        return _from_networks(result, {"G_ema": obj}, {"G_ema": where}, {}, "", given)
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{where}: expected a state dict or a dict of them, found {type(obj).__name__}")
    raw, labels = {}, {}
    for slot in WEIGHT_FILES:
        if slot in obj:
            if not _tensor_dict(obj[slot]):
                raise ConversionError(f"{where}: entry {slot!r} is not a state dict of tensors")
            raw[slot], labels[slot] = obj[slot], f"{where} [{slot}]"
    if not raw:
        raise ConversionError(f"{where}: no BigGAN-PyTorch networks (G_ema, G, D) found")
    stored, stored_from = {}, ""
    if isinstance(obj.get("init_kwargs"), Mapping):
        stored = {slot: dict(v) for slot, v in obj["init_kwargs"].items() if slot in raw and isinstance(v, Mapping)}
        stored_from = "the file's 'init_kwargs'"
    elif isinstance(obj.get("config"), Mapping):
        stored = {slot: kwargs_from_release_config(obj["config"], slot) for slot in raw}
        stored_from = "the file's 'config'"
    ignored = [str(k) for k in obj if k not in raw and k not in ("init_kwargs", "config")]
    if ignored:
        result.notes.append(f"ignored non-network entries: {format_names(repr(k) for k in ignored)}")
    result.extra["layout"] = "networks under keys " + ", ".join(repr(k) for k in raw)
    return _from_networks(result, raw, labels, stored, stored_from, given)


def read(path: str | os.PathLike, config: Mapping[str, Any] | None = None) -> ForeignCheckpoint:
    """Reads a BigGAN-PyTorch weights folder, a zip of one, or a generator file (see the module
    docstring); ``config`` overrides the constructor settings.

    Raises:
        ConversionError: no networks, settings that cannot be inferred, or tensors that do not
            match the settings (every missing, unexpected and mis-shaped one is named).
        UnsafeCheckpointError: a file asks to run code (other than the release's stored
            activation modules in ``state_dict.pth``, see the module docstring).
    """
    path = Path(path)
    given = _split_config(config, os.fspath(path))
    result = ForeignCheckpoint(format=FORMAT, architecture=ARCHITECTURE)
    names = _zip_names(path) if path.is_file() and zipfile.is_zipfile(path) else None
    if path.is_dir() or (names is not None and not _is_torch_archive(names)):
        folder = _folder_on_disk(path) if path.is_dir() else _folder_in_zip(path)
        try:
            return _read_folder(folder, result, given)
        finally:
            folder.close()
    return _read_file(path, result, given)
