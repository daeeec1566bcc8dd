"""The checkpoint directory and the GAN bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import ganzoo
import ganzoo.checkpoint as checkpoint_module
from ganzoo.checkpoint import GAN, dump_config, parse_seeds, read_config
from ganzoo.errors import CheckpointError, ChecksumMismatchError, ConversionError, GanzooError

from helpers import assert_same_images, tiny_gan


def _rewrite(path, state, ckpt):
    """Replaces a weight file and re-records its sha256, so only the tensors are wrong."""
    save_file(state, str(path))
    config = json.loads((ckpt / "config.json").read_text())
    config["files"][path.name]["sha256"] = ganzoo._io.sha256_file(path)
    (ckpt / "config.json").write_text(dump_config(config))


def test_layout_and_config(tmp_path):
    gan = tiny_gan()
    gan.save(tmp_path / "ckpt", card="# card\n")
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["README.md", "config.json", "discriminator.safetensors", "generator.safetensors"]
    text = (tmp_path / "ckpt" / "config.json").read_text()
    config = json.loads(text)
    assert text == json.dumps(config, sort_keys=True, indent=2) + "\n"
    assert config["format_version"] == 2 and config["architecture"] == "stylegan2"
    assert config["metadata"] == {"resolution": 16, "channels": 3, "num_classes": 0, "latent_dim": 8,
                                  "truncation": True, "class_names": None, "noise": True}  # fmt: skip
    assert config["generator"] == gan.G_ema.init_kwargs and config["discriminator"] == gan.D.init_kwargs
    assert config["license"] == "cc-by-4.0"
    for name in ("generator.safetensors", "discriminator.safetensors"):
        assert config["files"][name]["sha256"] == ganzoo._io.sha256_file(tmp_path / "ckpt" / name)
    sd = load_file(str(tmp_path / "ckpt" / "generator.safetensors"))
    assert "mapping.fc0.weight" in sd and "synthesis.b16.torgb.affine.bias" in sd
    loaded = GAN.load(tmp_path / "ckpt")
    assert loaded.G is None and loaded.D is not None
    assert loaded.config["license"] == "cc-by-4.0"


def test_checksum_mismatch_is_detected(tmp_path):
    ckpt = tiny_gan().save(tmp_path / "ckpt")
    path = ckpt / "generator.safetensors"
    state = load_file(str(path))
    state["mapping.fc0.bias"] = state["mapping.fc0.bias"] + 1
    save_file(state, str(path))  # same structure, different values, stale recorded sha256
    with pytest.raises(ChecksumMismatchError, match="generator.safetensors"):
        GAN.load(ckpt)
    loaded = GAN.load(ckpt, verify=False)
    assert torch.equal(loaded.G_ema.mapping.fc0.bias, state["mapping.fc0.bias"])


@pytest.mark.parametrize("problem", ["missing", "unexpected", "misshaped"])
def test_strict_loading_lists_bad_tensors(tmp_path, problem):
    ckpt = tiny_gan().save(tmp_path / "ckpt")
    path = ckpt / "discriminator.safetensors"
    state = load_file(str(path))
    if problem == "missing":
        del state["b4.out.weight"]
        expected = "missing tensors: b4.out.weight"
    elif problem == "unexpected":
        state["b4.extra"] = torch.zeros(3)
        expected = "unexpected tensors: b4.extra"
    else:
        state["b4.out.weight"] = torch.zeros(2, 2)
        expected = "wrong shapes: b4.out.weight"
    _rewrite(path, state, ckpt)
    with pytest.raises(ConversionError, match=expected):
        GAN.load(ckpt)


def test_config_problems(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        GAN.load(tmp_path)
    ckpt = tiny_gan().save(tmp_path / "ckpt")
    config = read_config(ckpt)
    (ckpt / "config.json").write_text(dump_config({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer than this ganzoo"):
        GAN.load(ckpt)
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        GAN.load(ckpt)
    (ckpt / "config.json").write_text(dump_config(config))
    (ckpt / "discriminator.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        GAN.load(ckpt)


def test_save_is_atomic(tmp_path, monkeypatch):
    gan = tiny_gan()
    calls = []

    def failing_save(state, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        save_file(state, path, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):  # the injected failure, not another one
        gan.save(tmp_path / "ckpt")
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []  # no half-written directory, no temp left behind
    monkeypatch.undo()
    gan.save(tmp_path / "ckpt")
    with pytest.raises(GanzooError, match="already exists"):
        gan.save(tmp_path / "ckpt")
    gan.config["license"] = "mit"
    gan.save(tmp_path / "ckpt", overwrite=True)
    assert read_config(tmp_path / "ckpt")["license"] == "mit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_architecture_comes_from_the_networks_not_the_config(tmp_path):
    from ganzoo.architectures.stylegan2.adafm import AdaFMGenerator

    plain = tiny_gan()
    G_ema = AdaFMGenerator.from_generator(plain.G_ema, [16])
    with torch.no_grad():  # a modulation that changes the images (a uniform scale demodulates away)
        torch.manual_seed(0)
        G_ema.synthesis.b16.conv0.adafm_gamma.uniform_(0.5, 1.5)
    gan = GAN(G_ema, None, plain.D, config={"architecture": "stylegan2", "license": "mit"})
    assert gan.config["architecture"] == "stylegan2-adafm"
    gan.save(tmp_path / "ckpt")
    assert read_config(tmp_path / "ckpt")["architecture"] == "stylegan2-adafm"
    loaded = GAN.load(tmp_path / "ckpt")
    assert type(loaded.G_ema) is AdaFMGenerator
    assert np.array_equal(loaded.sample(seeds=[0, 1]), gan.sample(seeds=[0, 1]))
    assert not np.array_equal(loaded.sample(seeds=[0, 1]), plain.sample(seeds=[0, 1]))
    # A plain generator under a config that says AdaFM is plain StyleGAN2.
    assert GAN(plain.G_ema, config={"architecture": "stylegan2-adafm"}).config["architecture"] == "stylegan2"
    with pytest.raises(GanzooError, match="G_ema=AdaFMGenerator, G=Generator form no known architecture"):
        GAN(G_ema, plain.G_ema)


def test_save_refuses_a_directory_that_would_not_load(tmp_path):
    gan = tiny_gan()
    gan.config["generator"]["z_dim"] = 12  # the recorded kwargs no longer build these networks
    with pytest.raises(CheckpointError) as info:
        gan.save(tmp_path / "ckpt")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'ckpt'}: not saved: the written checkpoint does not load back")
    assert "mapping.fc0.weight" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temp left behind


def test_sample_is_seeded_and_batch_independent():
    gan = tiny_gan()
    a = gan.sample(seeds=[3, 7, 11], truncation_psi=0.7, batch_size=1)
    assert a.dtype == np.uint8 and a.shape == (3, 16, 16, 3)
    assert np.array_equal(a, gan.sample(seeds=[3, 7, 11], truncation_psi=0.7, batch_size=1))
    assert np.array_equal(gan.sample(seeds=[7], truncation_psi=0.7), a[1:2])
    # Batching changes float rounding only: at most one level on a few pixels.
    b = gan.sample(seeds=[3, 7, 11], truncation_psi=0.7, batch_size=3)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    # The seed convention of the official scripts: z = RandomState(seed).randn(z_dim).
    z = torch.from_numpy(np.random.RandomState(7).randn(1, 8)).float()
    with torch.no_grad():
        img = gan.G_ema(z, None, truncation_psi=0.7, noise_mode="const")
    expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(a[1:2], expected)
    r1 = gan.sample(seeds=[1, 2], noise_mode="random", batch_size=1)
    assert np.array_equal(r1, gan.sample(seeds=[1, 2], noise_mode="random", batch_size=1))
    assert not np.array_equal(r1, gan.sample(seeds=[1, 2], noise_mode="const", batch_size=1))
    assert np.array_equal(gan.sample(n=2), gan.sample(seeds=[0, 1]))


def test_sample_conditional_by_name_or_index():
    gan = tiny_gan(c_dim=3)
    by_name = gan.sample(seeds=[0, 1], class_idx="class2")
    by_index = gan.sample(seeds=[0, 1], class_idx=2)
    assert np.array_equal(by_name, by_index)
    assert not np.array_equal(by_index, gan.sample(seeds=[0, 1], class_idx=0))
    with pytest.raises(GanzooError, match="conditional with 3 classes"):
        gan.sample(seeds=[0])
    with pytest.raises(GanzooError, match="unknown class"):
        gan.sample(seeds=[0], class_idx="dog")
    with pytest.raises(GanzooError, match="out of range"):
        gan.sample(seeds=[0], class_idx=3)


@pytest.mark.parametrize("channels", [1, 4])
def test_sample_other_channel_counts(channels):
    gan = tiny_gan(img_channels=channels)
    images = gan.sample(n=2)
    assert images.shape == (2, 16, 16, channels)
    # Every channel is the network's own, in order: no channel dropped, repeated or reordered.
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(8) for s in (0, 1)])).float()
    with torch.no_grad():
        img = gan.G_ema(z, None, noise_mode="const")
    expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(images, expected)
    assert all(len(np.unique(images[..., k])) > 1 for k in range(channels))  # no blank channel


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert parse_seeds("5") == [5]
    assert parse_seeds(" 1 , 4-5 ,") == [1, 4, 5]
    assert parse_seeds(range(2, 5)) == [2, 3, 4]
    for bad in ["", "a-b", "3-1", "-2"]:
        with pytest.raises(GanzooError, match=re.escape(f"invalid seeds {bad!r}")):
            parse_seeds(bad)


def test_load_api_accepts_directories(tmp_path):
    saved = tiny_gan(c_dim=3)
    ckpt = saved.save(tmp_path / "ckpt")
    gan = ganzoo.load(ckpt)
    assert isinstance(gan, GAN)
    # The directory's own networks and config, not some other model's.
    assert gan.config["license"] == "cc-by-4.0" and gan.class_names == ["class0", "class1", "class2"]
    for role in ("G_ema", "D"):
        ours, theirs = saved.networks()[role].state_dict(), gan.networks()[role].state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), role
    assert np.array_equal(gan.sample(seeds=[0, 1], class_idx=1), saved.sample(seeds=[0, 1], class_idx=1))
    with pytest.raises(ganzoo.UnknownModelError):
        ganzoo.load(tmp_path / "nope")


def test_verification_is_remembered_but_any_write_is_caught(tmp_path, monkeypatch):
    ckpt = tiny_gan().save(tmp_path / "ckpt")
    GAN.load(ckpt)  # first load hashes every weight file
    hashed = []
    real_sha = ganzoo._io.sha256_file
    monkeypatch.setattr(ganzoo._io, "sha256_file", lambda p, *a: hashed.append(p) or real_sha(p, *a))
    GAN.load(ckpt)
    assert hashed == []  # unchanged files: remembered
    path = ckpt / "generator.safetensors"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last tensor's data, keep the size
    path.write_bytes(bytes(data))
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime restored
    with pytest.raises(ChecksumMismatchError):
        GAN.load(ckpt)
    assert hashed  # the write changed ctime, so the file was hashed again


def test_loaded_networks_share_no_state(tmp_path):
    ckpt = tiny_gan().save(tmp_path / "ckpt")
    a, b = GAN.load(ckpt), GAN.load(ckpt)
    assert a.G_ema is not b.G_ema and a.G_ema.init_kwargs is not b.G_ema.init_kwargs
    with torch.no_grad():
        a.G_ema.mapping.fc0.weight.add_(1)
    assert not torch.equal(a.G_ema.mapping.fc0.weight, b.G_ema.mapping.fc0.weight)
    a.D.train()
    assert a.D.training and not b.D.training and not b.D.b4.training
    hook_calls = []
    a.G_ema.register_forward_hook(lambda *args: hook_calls.append(1))
    b.G_ema(torch.randn(1, 8), None)
    assert hook_calls == []
    assert not any(p.requires_grad for p in b.G_ema.parameters())
    params = dict(b.D.named_parameters())
    assert "b4.out.weight" in params and isinstance(params["b4.out.weight"], torch.nn.Parameter)


def test_mmap_safetensors_reader_matches_the_library(tmp_path):
    from ganzoo._safetensors_mmap import load_safetensors

    tensors = {
        "a": torch.randn(3, 5),
        "b": torch.arange(7, dtype=torch.int16),  # odd byte count: the next tensor is misaligned
        "c": torch.randn(2, 2, dtype=torch.float64),
        "d": torch.tensor(True),
        "e": torch.zeros(0, 4),
    }
    save_file(tensors, str(tmp_path / "t.safetensors"))
    ours, theirs = load_safetensors(tmp_path / "t.safetensors"), load_file(str(tmp_path / "t.safetensors"))
    assert ours.keys() == theirs.keys()
    for k in theirs:
        assert ours[k].dtype == theirs[k].dtype and torch.equal(ours[k], theirs[k]), k


@pytest.mark.parametrize("damage", ["truncate", "header", "empty"])
def test_damaged_weight_file_is_a_one_line_error(tmp_path, damage):
    ckpt = tiny_gan().save(tmp_path / "ckpt")
    path = ckpt / "generator.safetensors"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "header":
        path.write_bytes(data[:8] + b"{" * (len(data) - 8))
    else:
        path.write_bytes(b"")
    with pytest.raises(ChecksumMismatchError):
        GAN.load(ckpt)
    with pytest.raises(CheckpointError, match="generator.safetensors: invalid safetensors file") as info:
        GAN.load(ckpt, verify=False)
    assert "\n" not in str(info.value)


# Sample bytes of the bundled starter zoo (format-1 directories written before format 2 and the
# architecture table): seeds 0-7 const noise, and seeds 0-3 at psi 0.7 with per-seed random noise.
BUNDLED_SAMPLES = {
    "primitives-ps-stylegan2-32": ("ca7c6e15a03d72a1cd60c29fa20162de839da481e04d90ea234e2efa0b2b7869",
                                   "5e986b04f7b834e1d445d658bba09472fe5e4126b7a2ceae7391bbb0ba95645d"),
    "discs-stylegan2-32": ("30c8e2aa78ce6b8c8abff4d499d4864f7556798ddbb9c1f695ab18d9b7097ebf",
                           "5d16f43783b64383de65baeb98ed6d8fd7a2913a4b1a17f96cbc1201d6847d25"),
    "stripes-stylegan2-32": ("64716d246cebc2f25f5da2e53f93e8e3a6a52328bf88a8651fbd5d6ae389c927",
                             "d873d78df1775120a70bce901b5b0ffc5be4225ffce5e73f3301c00aad3180cf"),
}  # fmt: skip


def _samples(gan) -> tuple[np.ndarray, np.ndarray]:
    const = gan.sample(seeds=range(8))
    random = gan.sample(seeds=range(4), truncation_psi=0.7, noise_mode="random")
    return const, random


def _assert_bundled_samples(gan, name: str) -> None:
    """``gan`` draws the recorded samples of ``name``: the images of tests/data/bundled_samples.npz
    (whose bytes are the recorded digests), up to one level of rounding; a CPU with other kernels
    (ATen's default path, say) rounds a few pixels the other way, so the digests themselves
    cannot be compared."""
    import hashlib

    with np.load(Path(__file__).parent / "data" / "bundled_samples.npz") as recorded:
        expected = recorded[f"{name}/const"], recorded[f"{name}/random"]
    assert tuple(hashlib.sha256(e.tobytes()).hexdigest() for e in expected) == BUNDLED_SAMPLES[name]
    for what, ours, theirs in zip(("const", "random"), _samples(gan), expected):
        assert_same_images(ours, theirs, (name, what))


@pytest.mark.parametrize("name", sorted(BUNDLED_SAMPLES))
def test_format_1_directories_load_unchanged_and_resave_as_format_2(name, tmp_path):
    from ganzoo.registry import bundled_dir

    folder = bundled_dir(name)
    assert read_config(folder)["format_version"] == 1 and "metadata" not in read_config(folder)
    gan = GAN.load(folder)
    _assert_bundled_samples(gan, name)
    gan.save(tmp_path / "v2")
    config = read_config(tmp_path / "v2")
    assert config["format_version"] == 2 and config["metadata"]["resolution"] == 32
    assert config["metadata"]["latent_dim"] == gan.G_ema.z_dim and config["metadata"]["channels"] == gan.G_ema.img_channels
    for file in ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        old, new = load_file(str(folder / file)), load_file(str(tmp_path / "v2" / file))
        assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)  # tensors untouched
    _assert_bundled_samples(GAN.load(tmp_path / "v2"), name)
    # Generic code reads one Metadata from either format: format 1 computes what format 2 stores.
    from ganzoo.checkpoint import config_metadata

    assert config_metadata(read_config(folder)) == config_metadata(config) == gan.metadata
    assert config_metadata(config).to_dict() == config["metadata"]


def test_saved_metadata_follows_the_config_at_save_time(tmp_path):
    gan = tiny_gan(c_dim=2)
    gan.config["class_names"] = ["cats", "dogs"]  # set after the GAN was made, as merge's callers may
    gan.save(tmp_path / "ckpt")
    metadata = read_config(tmp_path / "ckpt")["metadata"]
    assert metadata["class_names"] == ["cats", "dogs"] and metadata["num_classes"] == 2


def test_a_newer_format_is_refused_in_one_line(tmp_path):
    tiny_gan().save(tmp_path / "ckpt")
    config = read_config(tmp_path / "ckpt")
    config["format_version"] = 3
    (tmp_path / "ckpt" / "config.json").write_text(dump_config(config))
    with pytest.raises(CheckpointError, match=r"format_version 3 is newer than this ganzoo \(2\); upgrade ganzoo"):
        GAN.load(tmp_path / "ckpt")


def test_a_user_registered_architecture_saves_loads_and_samples(tmp_path, monkeypatch):
    """A plug-in written outside ganzoo: a generator of one linear layer, no discriminator."""
    import ganzoo.architectures
    from ganzoo.architectures import Architecture, Metadata, get_architecture, register_architecture

    # Registered into a copy of the table, so the plug-in does not outlive this test.
    monkeypatch.setattr(ganzoo.architectures, "_REGISTRY", dict(ganzoo.architectures._REGISTRY))

    class LinearG(torch.nn.Module):
        def __init__(self, z_dim: int, resolution: int):
            super().__init__()
            self.init_kwargs = {"z_dim": z_dim, "resolution": resolution}
            self.resolution = resolution
            self.fc = torch.nn.Linear(z_dim, 3 * resolution * resolution)

        def forward(self, z):
            return torch.tanh(self.fc(z)).reshape(-1, 3, self.resolution, self.resolution)

    class LinearGAN(Architecture):
        name = "test-linear"
        generator_class = LinearG

        def metadata(self, generator_kwargs, class_names=None):
            return Metadata(resolution=generator_kwargs["resolution"], channels=3, num_classes=0,
                            latent_dim=generator_kwargs["z_dim"], truncation=False)  # fmt: skip

        def generate(self, G, z, c, *, seeds, truncation_psi, truncation_cutoff, noise_mode):
            return G(z)

    register_architecture(LinearGAN(), replace=True)
    torch.manual_seed(0)
    G = LinearG(4, 8)
    gan = GAN(G, config={"license": "mit"})
    assert gan.config["architecture"] == "test-linear" and gan.metadata.resolution == 8
    images = gan.sample(seeds=[0, 1, 2])
    gan.save(tmp_path / "linear")
    loaded = GAN.load(tmp_path / "linear")
    assert type(loaded.G_ema) is LinearG and loaded.D is None
    assert np.array_equal(loaded.sample(seeds=[0, 1, 2]), images) and images.shape == (3, 8, 8, 3)
    expected = torch.from_numpy(np.random.RandomState(1).randn(1, 4)).float()
    with torch.no_grad():
        by_hand = ((G(expected).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)).numpy()
    assert_same_images(images[1:2], by_hand)  # seed 1's latent, the architecture's own generate (batch 3 vs 1)
    with pytest.raises(GanzooError, match="test-linear: has no D network"):
        get_architecture("test-linear").network_class("D")
    with pytest.raises(GanzooError, match="architecture 'test-linear' is already registered"):
        register_architecture(LinearGAN())
