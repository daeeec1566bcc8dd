"""Tests of the restricted unpickler and the StyleGAN2-ADA pickle reader."""

from __future__ import annotations

import collections
import io
import json
import pickle
import re
import sys
import types

import numpy as np
import pytest
import torch

from ganzoo.readers import safe_pickle
from ganzoo.readers.safe_pickle import (
    EasyDict,
    PersistentObject,
    TFNetwork,
    load_pickle,
    load_torch_file,
    plain,
)
from ganzoo.architectures.stylegan2.ada_pickle import read_stylegan2_ada_pickle
from ganzoo.errors import ConversionError, UnsafeCheckpointError

FIXTURES = ("tiny32", "cond64")

EXPECTED_G_KWARGS = {
    "tiny32": {
        "z_dim": 32, "w_dim": 32, "c_dim": 0, "img_resolution": 32, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 2048, "channel_max": 64, "num_fp16_res": 0,
                             "conv_clamp": None},
    },
    "cond64": {
        "z_dim": 64, "w_dim": 64, "c_dim": 5, "img_resolution": 64, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 4},
        "synthesis_kwargs": {"channel_base": 4096, "channel_max": 128, "num_fp16_res": 2,
                             "conv_clamp": 256},
    },
}  # fmt: skip
EXPECTED_D_KWARGS = {
    "tiny32": {
        "c_dim": 0, "img_resolution": 32, "img_channels": 3, "channel_base": 2048,
        "channel_max": 64, "num_fp16_res": 0, "conv_clamp": None, "block_kwargs": {},
        "mapping_kwargs": {}, "epilogue_kwargs": {"mbstd_group_size": 4},
    },
    "cond64": {
        "c_dim": 5, "img_resolution": 64, "img_channels": 3, "channel_base": 4096,
        "channel_max": 128, "num_fp16_res": 2, "conv_clamp": 256, "block_kwargs": {},
        "mapping_kwargs": {}, "epilogue_kwargs": {"mbstd_group_size": 4},
    },
}  # fmt: skip
BUFFER_RE = re.compile(r"(resample_filter|noise_const|w_avg)$")


def snapshot_path(shared_fixtures, name):
    return shared_fixtures / "stylegan2-ada" / name / f"{name}-snapshot.pkl"


def trusted_load(path):
    """Unpickles a *trusted* fixture with plain pickle, persistence objects as ('P', meta)."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch_utils.persistence":
                return lambda meta: ("P", meta)
            if module == "dnnlib.util":
                return dict
            return super().find_class(module, name)

    with open(path, "rb") as f:
        return Unpickler(f).load()


def assert_same(ours, ref, where="$"):
    """Compares a safe load with a trusted load: same structure, dtypes, strides and values."""
    if isinstance(ref, tuple) and len(ref) == 2 and ref[0] == "P":
        assert isinstance(ours, PersistentObject), where
        assert_same(ours.meta, ref[1], where)
    elif isinstance(ref, torch.Tensor):
        assert isinstance(ours, torch.Tensor), where
        assert (ours.dtype, ours.shape, ours.stride()) == (ref.dtype, ref.shape, ref.stride()), where
        assert torch.equal(ours, ref.detach()), where
    elif isinstance(ref, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == ref.dtype, where
        np.testing.assert_array_equal(ours, ref)
    elif isinstance(ref, dict):
        assert isinstance(ours, dict) and list(ours) == list(ref), where
        for key in ref:
            assert_same(ours[key], ref[key], f"{where}.{key}")
    elif isinstance(ref, (list, tuple)):
        assert type(ours) is type(ref) and len(ours) == len(ref), where
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(ref) and ours == ref, (where, ours, ref)


# -- the StyleGAN2-ADA fixtures through load_pickle ----------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_snapshot_loads_as_stand_ins(shared_fixtures, name):
    snap = load_pickle(snapshot_path(shared_fixtures, name))
    assert set(snap) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    for key, cls in (("G", "Generator"), ("G_ema", "Generator"), ("D", "Discriminator")):
        net = snap[key]
        assert isinstance(net, PersistentObject)
        assert net.short_name == cls and net.class_name == cls
        assert net.module_src.startswith("# module source omitted")  # kept as text, never run
        assert isinstance(net.state["_init_kwargs"]["mapping_kwargs"], EasyDict)
    assert snap["augment_pipe"].short_name == "AugmentPipe"


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_matches_trusted_unpickling(shared_fixtures, name):
    path = snapshot_path(shared_fixtures, name)
    assert_same(load_pickle(path), trusted_load(path))


def test_tf_fixture_loads_as_stand_ins(shared_fixtures):
    path = shared_fixtures / "stylegan2-tf" / "tf32" / "tf32-tf.pkl"
    G, D, Gs = load_pickle(path)
    assert [net.name for net in (G, D, Gs)] == ["G", "D", "Gs"]
    assert all(isinstance(net, TFNetwork) for net in (G, D, Gs))
    assert G.state["static_kwargs"]["resolution"] == 32
    assert G.state["build_module_src"].startswith("#")
    assert set(Gs.state["components"]) == {"mapping", "synthesis"}
    variables = dict(Gs.state["components"]["synthesis"].state["variables"])
    const = variables["4x4/Const/const"]
    assert isinstance(const, np.ndarray) and const.dtype == np.float32 and const.shape == (1, 64, 4, 4)
    assert const.flags.writeable and np.isfinite(const).all()
    mapping = dict(Gs.state["components"]["mapping"].state["variables"])
    assert mapping["Dense0/weight"].shape == (32, 32)


# -- round trips of what pickle/torch write -----------------------------------------------------


def sample_values():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "float": torch.randn(3, 4),
        "half": torch.randn(5).half(),
        "bfloat16": torch.randn(5).bfloat16(),
        "double": torch.randn(2, 2, dtype=torch.float64),
        "long": torch.arange(7),
        "int8": torch.tensor([-3, 4], dtype=torch.int8),
        "bool": torch.tensor([True, False, True]),
        "complex": torch.randn(3, dtype=torch.complex64),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),
        "offset_view": base[1:3, 2:5],
        "parameter": torch.nn.Parameter(torch.randn(2, 3)),
        "array": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "big_endian": np.arange(4, dtype=">f8"),
        "bool_array": np.array([True, False]),
        "zero_d": np.array(3.0),
        "np_scalars": [np.float64(1.5), np.int64(-3), np.float32(0.25), np.bool_(True)],
        "containers": collections.OrderedDict(a=[1, 2.5, "x", None, True], b=(b"raw", bytearray(b"ba"))),
        "sets": [{1, 2}, frozenset({"a"})],
        "complex_number": 1 + 2j,
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "nested": {"k": {"k": {"k": [[[]]]}}},
        "big_int": 2**100,
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_roundtrip_of_pickled_values(protocol):
    data = pickle.dumps(sample_values(), protocol=protocol)
    # The reference is plain pickle on this trusted data (parameters come back as plain tensors).
    assert_same(load_pickle(data, what="values.pkl"), pickle.loads(data))


def test_easydict_from_dnnlib(monkeypatch):
    dnnlib = types.ModuleType("dnnlib")
    util = types.ModuleType("dnnlib.util")

    class FakeEasyDict(dict):
        pass

    FakeEasyDict.__module__, FakeEasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = FakeEasyDict
    monkeypatch.setitem(sys.modules, "dnnlib", dnnlib)
    monkeypatch.setitem(sys.modules, "dnnlib.util", util)
    data = pickle.dumps(FakeEasyDict(a=1, b=FakeEasyDict(c=[1, 2])), protocol=4)
    loaded = load_pickle(data)
    assert type(loaded) is EasyDict and loaded.a == 1 and loaded.b.c == [1, 2]
    assert plain(loaded) == {"a": 1, "b": {"c": [1, 2]}}


# -- torch files --------------------------------------------------------------------------------


def state_dict_sample():
    return collections.OrderedDict(
        w=torch.randn(3, 4), b=torch.nn.Parameter(torch.zeros(2)), h=torch.randn(2).half(),
        n=torch.tensor(5), view=torch.arange(12.0).reshape(3, 4)[:, 1],
    )  # fmt: skip


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_load_torch_file_roundtrip(tmp_path, legacy):
    sd = state_dict_sample()
    path = tmp_path / "sd.pt"
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    loaded = load_torch_file(path)
    assert list(loaded) == list(sd)
    for key, value in sd.items():
        assert torch.equal(loaded[key], value.detach()), key


def _real_checkpoint() -> dict:
    """What training code saves: real state_dict()s (OrderedDicts with ``_metadata``; BatchNorm's
    version 2 among them), a stepped optimizer's state beside them, nested dicts, counters."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    ema = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(2, 3, 4, 4)).sum().backward()
    opt.step()
    return {"nets": {"G": net.state_dict(), "G_ema": ema.state_dict()}, "opt": opt.state_dict(),
            "module": torch.nn.DataParallel(net).state_dict(), "it": 1234, "lr": 2e-4}  # fmt: skip


def _assert_same(loaded, trusted, where="$"):
    """Exact equality of two loaded objects, tensors by value, OrderedDict ``_metadata`` included."""
    assert type(loaded) is type(trusted), where
    if isinstance(trusted, torch.Tensor):
        assert loaded.dtype == trusted.dtype and torch.equal(loaded, trusted), where
    elif isinstance(trusted, dict):
        assert list(loaded) == list(trusted), where
        assert getattr(loaded, "_metadata", None) == getattr(trusted, "_metadata", None), where
        for key in trusted:
            _assert_same(loaded[key], trusted[key], f"{where}.{key}")
    elif isinstance(trusted, (list, tuple)):
        assert len(loaded) == len(trusted), where
        for i, (a, b) in enumerate(zip(loaded, trusted)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert loaded == trusted, where


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_real_state_dicts_load_as_torch_load_weights_only_does(tmp_path, legacy):
    path = tmp_path / "ckpt.pt"
    torch.save(_real_checkpoint(), path, _use_new_zipfile_serialization=not legacy)
    trusted = torch.load(path, map_location="cpu", weights_only=True)
    assert trusted["nets"]["G"]._metadata["1"] == {"version": 2}  # BatchNorm's layout version
    loaded = load_torch_file(path)
    _assert_same(loaded, trusted)
    assert len(loaded["opt"]["state"]) == 6 and set(loaded["module"]) == {f"module.{k}" for k in loaded["nets"]["G"]}


# Torch files the upstream projects' own code wrote (../shared/fixtures/README.md): a StyleGAN2-ADA
# state-dict dict (zip), a GAN_stability CheckpointIO file (legacy; DataParallel names, RMSprop
# states, the iteration), and the BigGAN-PyTorch weights folder (legacy; plain state dicts and the
# training state with its config).
UPSTREAM_TORCH_FILES = [
    "stylegan2-ada/loss32/loss32-networks.pt", "gpgan/resnet2-32/gpgan-resnet2-32-model.pt",
    "biggan/biggan64/G.pth", "biggan/biggan64/G_ema.pth", "biggan/biggan64/D.pth",
    "biggan/biggan64/state_dict.pth",
]  # fmt: skip


@pytest.mark.parametrize("name", UPSTREAM_TORCH_FILES)
def test_upstream_written_torch_files(shared_fixtures, name):
    path = shared_fixtures / name
    trusted = torch.load(path, map_location="cpu", weights_only=True)
    _assert_same(load_torch_file(path), trusted)


def test_reference_written_state_dict_file(shared_fixtures):
    """A file the StyleGAN2-ADA code itself wrote with torch.save({'G': G.state_dict(), ...})."""
    loaded = load_torch_file(shared_fixtures / "stylegan2-ada" / "loss32" / "loss32-networks.pt")
    assert "mapping" in loaded["G"]._metadata and "b32.fromrgb" in loaded["D"]._metadata
    gpgan = load_torch_file(shared_fixtures / "gpgan" / "resnet2-32" / "gpgan-resnet2-32-model.pt")
    assert gpgan["it"] >= 0 and all(k.startswith("module.") for k in gpgan["generator_test"])


def _od_with(**attributes) -> bytes:
    """A pickled OrderedDict carrying instance attributes (what BUILD restores)."""
    od = collections.OrderedDict(w=1)
    od.__dict__.update(attributes)
    return pickle.dumps(od, protocol=2)


# BUILD on an OrderedDict: only the one attribute a state dict has, holding only plain values.
_STATE_DICT_BUILDS = {
    "method-shadowing attribute": (dict(get=1), "BUILD sets attribute 'get' on an OrderedDict"),
    "second attribute": (dict(_metadata={}, a=1), "BUILD sets attribute 'a'"),
    "metadata not a dict": (dict(_metadata=[1]), "_metadata is a list, not a dict"),
    "entry not a dict": (dict(_metadata={"": 1}), "must map module names to dicts"),
    "nested container": (dict(_metadata={"": {"version": [1]}}), "holds a list; only plain numbers and strings"),
}  # fmt: skip


def test_state_dict_metadata_is_read_as_torch_writes_it():
    metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    data = _od_with(_metadata=metadata)
    loaded = load_pickle(data)
    assert type(loaded) is collections.OrderedDict and dict(loaded) == {"w": 1}
    assert loaded._metadata == pickle.loads(data)._metadata == metadata


@pytest.mark.parametrize("case", sorted(_STATE_DICT_BUILDS))
def test_state_dict_builds_beyond_metadata_are_refused(case):
    attributes, fragment = _STATE_DICT_BUILDS[case]
    with pytest.raises(ConversionError) as info:
        load_pickle(_od_with(**attributes), what="sd.pt")
    assert str(info.value).startswith("sd.pt: truncated or corrupt pickle") and fragment in str(info.value)


def test_load_torch_file_refuses_plain_pickle(tmp_path):
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ConversionError, match=r"plain\.pt: not a torch\.save file"):
        load_torch_file(path)


def test_load_torch_file_refuses_compressed_bomb_declaration(tmp_path):
    # A zip whose data record claims far more than the archive holds (as a deflate bomb would).
    import zipfile

    path = tmp_path / "zipbomb.pt"
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buffer)
    src = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                # declare 10**7 floats for storage '0' (and a record that really holds them)
                data = data.replace(b"K\x04t", b"J\x80\x96\x98\x00t")
            if info.filename.endswith("data/0"):
                out.writestr(info.filename, b"\0" * 4 * 10**7, compress_type=zipfile.ZIP_DEFLATED)
                continue
            out.writestr(info.filename, data)
    assert path.stat().st_size < 200_000
    pattern = r"zipbomb\.pt: refused: storage 0 needs 40,000,000 bytes"
    with pytest.raises(UnsafeCheckpointError, match=pattern):
        load_torch_file(path)


# -- plain() -------------------------------------------------------------------------------------


def test_plain_converts_kwargs():
    value = EasyDict(
        a=(1, 2), b=collections.OrderedDict(c=np.float64(0.5), d=np.int64(3)),
        e={"y", "x"}, f=None, g=True, h="s", i=np.bool_(False),
    )  # fmt: skip
    out = plain(value)
    assert out == {"a": [1, 2], "b": {"c": 0.5, "d": 3}, "e": ["x", "y"], "f": None, "g": True,
                   "h": "s", "i": False}  # fmt: skip
    assert type(out) is dict and type(out["b"]) is dict and type(out["b"]["d"]) is int
    json.dumps(out)


@pytest.mark.parametrize(
    "value, pattern",
    [
        ({"t": torch.zeros(1)}, r"kw: value at \$\.t is a Tensor"),
        ({1: 2}, r"kw: key 1 at \$ is not a string"),
        ({"b": b"x"}, "is a bytes"),
    ],
)
def test_plain_refuses_non_json(value, pattern):
    with pytest.raises(ConversionError, match=pattern):
        plain(value, what="kw")


def test_plain_guards_depth():
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ConversionError, match="nested deeper"):
        plain(deep)


# -- errors and limits -------------------------------------------------------------------------


def test_refused_global_message(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.")
    with pytest.raises(UnsafeCheckpointError) as info:
        load_pickle(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused global 'os.system'")
    assert "\n" not in message


def test_what_names_the_file():
    with pytest.raises(UnsafeCheckpointError, match=r"^upload\.pkl: refused global 'os\.system'"):
        load_pickle(io.BytesIO(b"\x80\x02cos\nsystem\n."), what="upload.pkl")


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"", "empty file"),
        (b"\x80\x02]q\x00(K\x01K\x02", r"truncated or corrupt pickle \(unexpected end of data"),
        (b"\x80\x02\xff.", r"unknown opcode 0xff"),
        (b"\x80\x02K\x01R.", "stack underflow"),
        (b"\x80\x02K\x01)R.", "cannot call a int"),
        (b"\x80\x02h\x05.", "memo key 5"),
        (b"\x80\x02X\x01\x00\x00\x00aQ.", "persistent id in a plain pickle"),
        (b"\x80\x02}}X\x01\x00\x00\x00aK\x01sb.", "BUILD with state on a dict"),
        (b"\x80\x02K\x01K\x02.", "unbalanced stack"),
        (b"\x80\x02)K\x01a.", "APPEND to a tuple"),
    ],
)
def test_corrupt_pickles(data, pattern):
    with pytest.raises(ConversionError, match=pattern) as info:
        load_pickle(data, what="bad.pkl")
    assert str(info.value).startswith("bad.pkl: ") and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConversionError, match="cannot read"):
        load_pickle(tmp_path / "nope.pkl")


def test_reasonable_depth_is_allowed():
    deep: list = []
    for _ in range(safe_pickle.MAX_NESTING - 2):
        deep = [deep]
    assert load_pickle(pickle.dumps(deep)) == deep


def test_shared_subtrees_below_limit_are_allowed():
    leaf = list(range(100))
    value = [[leaf] * 100] * 100  # 10^4 references to one list: 10^6 expanded nodes
    assert load_pickle(pickle.dumps(value)) == value


def test_allocation_budget_counts_views():
    base = torch.zeros(1000)
    views = [base[: 1000 - i] for i in range(200)]  # ~800 kB of views over a 4 kB storage
    load_pickle(pickle.dumps(views))  # within ALLOCATION_SLACK
    one = torch.zeros(1)
    many = [one.expand(10**6)[: 10**6 - i] for i in range(3)]  # 12 MB of stride-0 views
    with pytest.raises(UnsafeCheckpointError, match="allocation budget"):
        load_pickle(pickle.dumps(many))


def test_refuses_object_dtype_arrays():
    with pytest.raises(UnsafeCheckpointError, match="refused numpy dtype"):
        load_pickle(pickle.dumps(np.array([1, "a"], dtype=object)))


# -- read_stylegan2_ada_pickle -----------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_read_snapshot(shared_fixtures, name):
    config = json.loads((shared_fixtures / "stylegan2-ada" / name / f"{name}-config.json").read_text())
    ckpt = read_stylegan2_ada_pickle(snapshot_path(shared_fixtures, name))
    assert ckpt.format == "stylegan2-ada-pkl"
    assert ckpt.notes == []
    for spec in (ckpt.G_ema, ckpt.G):
        assert spec.class_name == "Generator"
        assert spec.init_kwargs == EXPECTED_G_KWARGS[name]
        assert len(spec.state_dict) == config["G_state_keys"]
        params = sum(t.numel() for k, t in spec.state_dict.items() if not BUFFER_RE.search(k))
        assert params == config["G_params"]
    assert ckpt.D.class_name == "Discriminator"
    assert ckpt.D.init_kwargs == EXPECTED_D_KWARGS[name]
    assert len(ckpt.D.state_dict) == config["D_state_keys"]
    d_params = sum(t.numel() for k, t in ckpt.D.state_dict.items() if not BUFFER_RE.search(k))
    assert d_params == config["D_params"]
    json.dumps([ckpt.G_ema.init_kwargs, ckpt.D.init_kwargs, ckpt.extra])

    res, w = config["resolution"], config["w_dim"]
    cmax = config["channel_max"]
    g = ckpt.G_ema.state_dict
    assert g["mapping.fc0.weight"].shape[1] == config["z_dim"] + (w if config["c_dim"] else 0)
    assert g["mapping.w_avg"].shape == (w,)
    assert g["synthesis.b4.const"].shape == (cmax, 4, 4)
    assert g[f"synthesis.b{res}.torgb.affine.bias"].shape[0] == g[f"synthesis.b{res}.torgb.weight"].shape[1]
    assert g["synthesis.b4.conv1.noise_const"].shape == (4, 4)
    assert g[f"synthesis.b{res}.conv1.resample_filter"].shape == (4, 4)
    d = ckpt.D.state_dict
    assert d[f"b{res}.fromrgb.weight"].shape[1:] == (3, 1, 1)
    assert d["b4.out.weight"].shape[0] == (max(cmax, 1) if config["c_dim"] else 1)
    assert ckpt.extra["training_set_kwargs"]["resolution"] == res
    assert ckpt.extra["augment_pipe"]["class_name"] == "AugmentPipe"
    assert 0.0 <= ckpt.extra["augment_pipe"]["p"] <= 1.0


@pytest.mark.parametrize("name", FIXTURES)
def test_state_dict_matches_trusted_tensors(shared_fixtures, name):
    path = snapshot_path(shared_fixtures, name)
    ckpt = read_stylegan2_ada_pickle(path)
    ref = trusted_load(path)

    def ref_state(meta, prefix=""):
        state = meta[1]["state"]
        out = {}
        for group in ("_parameters", "_buffers"):
            out.update({prefix + k: v for k, v in state[group].items() if v is not None})
        for k, child in state["_modules"].items():
            out.update(ref_state(child, f"{prefix}{k}."))
        return out

    for slot in ("G_ema", "G", "D"):
        expected = ref_state(ref[slot])
        ours = getattr(ckpt, slot).state_dict
        assert list(ours) == list(expected)
        for key, tensor in expected.items():
            assert torch.equal(ours[key], tensor.detach()), key
            assert ours[key].is_contiguous() and not ours[key].requires_grad


def test_state_dict_is_safetensors_ready(shared_fixtures):
    from safetensors.torch import save

    ckpt = read_stylegan2_ada_pickle(snapshot_path(shared_fixtures, "tiny32"))
    save(ckpt.G_ema.state_dict)


# Writing pickles in the real StyleGAN2-ADA format from loaded stand-ins (tests only).


@pytest.fixture
def stylegan_writer(monkeypatch):
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called: only its name is pickled
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class FakeEasyDict(dict):
        pass

    FakeEasyDict.__module__, FakeEasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = FakeEasyDict
    for name, module in [("torch_utils", types.ModuleType("torch_utils")),
                         ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, PersistentObject):
                return (_reconstruct_persistent_obj, (obj.meta,))
            if isinstance(obj, EasyDict):
                return (FakeEasyDict, (), None, None, iter(obj.items()))
            return NotImplemented

    def write(path, obj):
        with open(path, "wb") as f:
            Pickler(f, protocol=4).dump(obj)
        return path

    return write


def test_bare_generator_goes_to_g_ema(shared_fixtures, tmp_path, stylegan_writer):
    snap = load_pickle(snapshot_path(shared_fixtures, "tiny32"))
    path = stylegan_writer(tmp_path / "G.pkl", snap["G_ema"])
    ckpt = read_stylegan2_ada_pickle(path)
    assert ckpt.G is None and ckpt.D is None
    assert ckpt.G_ema.init_kwargs == EXPECTED_G_KWARGS["tiny32"]
    assert len(ckpt.G_ema.state_dict) == 75


def test_bare_discriminator(shared_fixtures, tmp_path, stylegan_writer):
    snap = load_pickle(snapshot_path(shared_fixtures, "tiny32"))
    ckpt = read_stylegan2_ada_pickle(stylegan_writer(tmp_path / "D.pkl", snap["D"]))
    assert ckpt.G_ema is None and ckpt.D.class_name == "Discriminator"
    assert ckpt.notes == ["the file holds a discriminator only"]


def test_only_raw_generator(shared_fixtures, tmp_path, stylegan_writer):
    snap = load_pickle(snapshot_path(shared_fixtures, "tiny32"))
    ckpt = read_stylegan2_ada_pickle(stylegan_writer(tmp_path / "g.pkl", {"G": snap["G"]}))
    assert ckpt.G is None and ckpt.G_ema.class_name == "Generator"
    assert "G is used as G_ema" in ckpt.notes[0]


def test_positional_init_args_are_named(shared_fixtures, tmp_path, stylegan_writer):
    snap = load_pickle(snapshot_path(shared_fixtures, "tiny32"))
    state = snap["G_ema"].state
    kwargs = dict(state["_init_kwargs"])
    state["_init_args"] = tuple(kwargs.pop(k) for k in ("z_dim", "c_dim", "w_dim"))
    state["_init_kwargs"] = EasyDict(kwargs)
    ckpt = read_stylegan2_ada_pickle(stylegan_writer(tmp_path / "G.pkl", snap["G_ema"]))
    assert ckpt.G_ema.init_kwargs == EXPECTED_G_KWARGS["tiny32"]


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda s: s["G_ema"].state.pop("_init_kwargs"), r"G_ema \(Generator\): .* no _init_kwargs"),
        (lambda s: s["D"].state["_modules"].update(x=[1]), "submodule 'x' is a list"),
        (lambda s: s["D"].state["_parameters"].update(p=3), "parameter 'p' is not a tensor"),
        (lambda s: s["D"].state.pop("_buffers"), "_buffers is missing"),
        (lambda s: [s.pop(k) for k in ("G", "D", "G_ema")], "no StyleGAN2-ADA networks found"),
    ],
)
def test_malformed_snapshots(shared_fixtures, tmp_path, stylegan_writer, mutate, pattern):
    snap = load_pickle(snapshot_path(shared_fixtures, "tiny32"))
    mutate(snap)
    path = stylegan_writer(tmp_path / "bad.pkl", snap)
    with pytest.raises(ConversionError, match=pattern) as info:
        read_stylegan2_ada_pickle(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_tf_pickle_is_named(shared_fixtures):
    with pytest.raises(ConversionError, match="TensorFlow pickle"):
        read_stylegan2_ada_pickle(shared_fixtures / "stylegan2-tf" / "tf32" / "tf32-tf.pkl")


def test_stylegan3_snapshot_reads_as_the_stylegan3_architecture(shared_fixtures):
    ckpt = read_stylegan2_ada_pickle(shared_fixtures / "stylegan3" / "sg3t32" / "sg3t32-snapshot.pkl")
    assert ckpt.architecture == "stylegan3"
    assert "synthesis.input.transform" in ckpt.G_ema.state_dict and "b32.fromrgb.weight" in ckpt.D.state_dict
    assert ckpt.G_ema.init_kwargs["magnitude_ema_beta"] == 0.999


def test_stylegan3_discriminator_alone_is_a_stylegan2_discriminator(shared_fixtures, tmp_path, stylegan_writer):
    """StyleGAN3 trains with the StyleGAN2 discriminator: that network alone reads as one."""
    snap = load_pickle(shared_fixtures / "stylegan3" / "sg3t32" / "sg3t32-snapshot.pkl")
    ckpt = read_stylegan2_ada_pickle(stylegan_writer(tmp_path / "D.pkl", snap["D"]))
    assert ckpt.D.class_name == "Discriminator" and "b32.fromrgb.weight" in ckpt.D.state_dict


def test_unknown_network_class_is_named(shared_fixtures, tmp_path, stylegan_writer):
    snap = load_pickle(snapshot_path(shared_fixtures, "tiny32"))
    snap["G_ema"].state["_modules"]["synthesis"].meta["class_name"] = "SuperResolutionNetwork"
    path = stylegan_writer(tmp_path / "G.pkl", {"G_ema": snap["G_ema"]})
    with pytest.raises(ConversionError) as info:
        read_stylegan2_ada_pickle(path)
    assert str(info.value) == (
        f"{path}: G_ema is a network ganzoo does not know (class 'Generator' with modules "
        "SuperResolutionNetwork); this version reads StyleGAN2-ADA and StyleGAN3 networks"
    )
