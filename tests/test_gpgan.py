"""GP-GAN (``gpgan``): the ResNet GANs of GAN_stability (Mescheder et al., ICML 2018).

The acceptance fixture ``gpgan/resnet2-32`` is a checkpoint as GAN_stability's
``CheckpointIO.save`` writes it (legacy torch serialization, ``module.`` prefixes, optimizer
states); read through ganzoo's reader it must reproduce the reference outputs of both
generators and of the discriminator to 1e-4 (CPU, float32). The other three variants are built
small and must run forward and backward, be read back from a GAN_stability-style file with the
settings inferred exactly, and round-trip through a checkpoint directory unchanged.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.architectures import get_architecture
from ganzoo.architectures.gpgan.networks import Discriminator, Generator
from ganzoo.cli import main
from ganzoo.errors import ConversionError, GanzooError
from ganzoo.conversion import foreign_to_gan
from ganzoo.readers import detect_format, read_foreign

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "gpgan-resnet2-32"
TOL = 1e-4


@pytest.fixture(scope="module")
def folder(shared_fixtures):
    return shared_fixtures / "gpgan" / "resnet2-32"


@pytest.fixture(scope="module")
def model_file(folder):
    return folder / f"{NAME}-model.pt"


@pytest.fixture(scope="module")
def reference(folder):
    return {k: torch.from_numpy(v) for k, v in np.load(folder / f"{NAME}-reference.npz").items()}


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a.double() - b.double()).abs().max())


# ----------------------------------------------------------------------------------------------
# The acceptance fixture


def test_reproduces_the_gan_stability_checkpoint(model_file, reference):
    gan = foreign_to_gan(model_file)
    assert gan.config["architecture"] == "gpgan" and gan.config["source"]["format"] == "gan-stability-pt"
    z, y = reference["z"], reference["y"]
    with torch.no_grad():
        img_g = gan.G(z, y)
        img_test = gan.G_ema(z, y)
        errors = {
            "img_generator": _max_err(img_g, reference["img_generator"]),
            "img_generator_test": _max_err(img_test, reference["img_generator_test"]),
            "d_logits_input": _max_err(gan.D(reference["x_input"], y), reference["d_logits_input"]),
            "d_logits_img": _max_err(gan.D(reference["img_generator_test"], y), reference["d_logits_img"]),
            "d_logits_img (of our G_ema's images)": _max_err(gan.D(img_test, y), reference["d_logits_img"]),
        }
    assert all(err <= TOL for err in errors.values()), errors
    # The two generators differ (G_ema is the parameter average): the reader kept them apart.
    assert _max_err(img_g, img_test) > 1e-3


def test_settings_are_inferred_from_the_tensors(folder, model_file):
    expected = json.loads((folder / f"{NAME}-config.json").read_text())
    foreign = read_foreign(model_file)
    assert foreign.format == "gan-stability-pt" and foreign.architecture == "gpgan"
    # resnet2 takes nfilter_max and ignores it: it cannot be read from tensors and is not recorded.
    wanted_g = {k: v for k, v in expected["generator_kwargs"].items() if k != "nfilter_max"}
    wanted_d = {k: v for k, v in expected["discriminator_kwargs"].items() if k != "nfilter_max"}
    assert foreign.G_ema.init_kwargs == foreign.G.init_kwargs == {"arch": expected["architecture"], **wanted_g}
    assert foreign.D.init_kwargs == {"arch": expected["architecture"], **wanted_d}
    notes = "\n".join(foreign.notes)
    assert "inferred from tensors: arch='resnet2', z_dim=8, nlabels=3, embed_size=8, nfilter=4, size=32" in notes
    assert "removed tensor-name prefix 'module.'" in notes and "'generator_test'" in notes
    assert "'g_optimizer'" in notes and "'d_optimizer'" in notes  # ignored, with a note
    assert foreign.extra["it"] == 4242
    gan = foreign_to_gan(model_file)
    counts = {role: sum(p.numel() for p in net.parameters()) for role, net in (("G", gan.G), ("D", gan.D))}
    assert counts == expected["params"]


def test_convert_then_load_and_sample(model_file, reference, tmp_path, capsys):
    assert main(["convert", str(model_file), str(tmp_path / "ckpt")]) == 0
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["architecture"] == "gpgan" and config["generator"]["arch"] == "resnet2"
    assert config["source"]["format"] == "gan-stability-pt" and config["source"]["extra"]["it"] == 4242
    assert config["metadata"] == {"resolution": 32, "channels": 3, "num_classes": 3, "latent_dim": 8,
                                  "truncation": False, "class_names": None, "noise": False}  # fmt: skip
    gan = ganzoo.load(tmp_path / "ckpt")
    images = gan.sample(seeds=[0, 1, 2], class_idx=2)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 and images.std() > 1
    # By hand: standard-normal z per seed (numpy RandomState), label 2, G_ema, [-1, 1] -> uint8.
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(8) for s in (0, 1, 2)])).float()
    with torch.no_grad():
        by_hand = gan.G_ema(z, torch.full([3], 2, dtype=torch.long))
    by_hand = (by_hand.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(images, by_hand)
    assert not np.array_equal(images, gan.sample(seeds=[0, 1, 2], class_idx=0))  # the class matters
    with pytest.raises(GanzooError, match="conditional with 3 classes"):
        gan.sample(seeds=[0])
    # The reference images survive the round trip through safetensors unchanged.
    with torch.no_grad():
        out = gan.G_ema(reference["z"], reference["y"])
    assert _max_err(out, reference["img_generator_test"]) <= TOL
    capsys.readouterr()
    out_png = tmp_path / "g.png"
    assert main(["generate", str(tmp_path / "ckpt"), "--seeds", "0-3", "--class", "1", "--out", str(out_png)]) == 0
    assert out_png.is_file()


def test_the_zip_serialization_reads_the_same(model_file, tmp_path):
    from ganzoo.readers.safe_pickle import load_torch_file

    torch.save(load_torch_file(model_file), tmp_path / "zip.pt")  # what torch >= 1.6 writes
    assert detect_format(tmp_path / "zip.pt") == "gan-stability-pt"
    legacy, zipped = read_foreign(model_file), read_foreign(tmp_path / "zip.pt")
    for role in ("G_ema", "G", "D"):
        a, b = getattr(legacy, role), getattr(zipped, role)
        assert a.init_kwargs == b.init_kwargs and a.state_dict.keys() == b.state_dict.keys()
        assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_config_overrides_the_inferred_settings(model_file, tmp_path, capsys):
    config = {"generator": {"nfilter_max": 1024}, "discriminator": {"embed_size": 256}}
    foreign = read_foreign(model_file, config=config)
    assert foreign.G_ema.init_kwargs["nfilter_max"] == 1024 and foreign.D.init_kwargs["embed_size"] == 256
    assert any("given by config (override): nfilter_max" in note for note in foreign.notes)
    with pytest.raises(ConversionError) as info:
        read_foreign(model_file, config={"generator": {"nfilter": 8}})
    message = str(info.value)
    assert "\n" not in message and str(model_file) in message and "wrong shapes" in message
    with pytest.raises(ConversionError, match="config must be a JSON object"):
        read_foreign(model_file, config=["resnet2"])
    (tmp_path / "cfg.json").write_text(json.dumps({"generator": {"nfilter_max": 2048}}))
    assert main(["convert", str(model_file), str(tmp_path / "ckpt"), "--config", str(tmp_path / "cfg.json")]) == 0
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["generator"]["nfilter_max"] == 2048


def test_sniffing_claims_gan_stability_files_only(model_file, tmp_path):
    from helpers import tiny_gan

    assert detect_format(model_file) == "gan-stability-pt"
    gan = tiny_gan(seed=1)
    # Plain StyleGAN2 state-dict files, also under GAN_stability's keys and with module. prefixes.
    torch.save({"G_ema": gan.G_ema.state_dict(), "D": gan.D.state_dict()}, tmp_path / "sg2.pt")
    wrapped = {"generator": {f"module.{k}": v for k, v in gan.G_ema.state_dict().items()},
               "discriminator": {f"module.{k}": v for k, v in gan.D.state_dict().items()}, "it": 3}  # fmt: skip
    torch.save(wrapped, tmp_path / "sg2-wrapped.pt")
    torch.save(wrapped, tmp_path / "sg2-legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("sg2.pt", "sg2-wrapped.pt", "sg2-legacy.pt"):
        assert detect_format(tmp_path / name) == "state-dict-pt", name
        assert read_foreign(tmp_path / name).architecture == "stylegan2"


def test_bad_files_fail_in_one_line_naming_the_file(model_file, tmp_path, capsys):
    data = model_file.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    gan = foreign_to_gan(model_file)
    g = {f"module.{k}": v for k, v in gan.G_ema.state_dict().items()}
    torch.save({"generator": {k: v for k, v in g.items() if "resnet_3_1" not in k}}, tmp_path / "missing.pt")
    torch.save({"discriminator": {f"module.{k}": v for k, v in gan.D.state_dict().items()}}, tmp_path / "no-g.pt")
    torch.save({"generator": {**g, "module.fc.weight": torch.zeros(65, 16)}}, tmp_path / "odd-fc.pt")
    torch.save({"generator": g, "generator_test": [1, 2]}, tmp_path / "not-a-state-dict.pt")
    expected = {"truncated.pt": "truncated or corrupt", "missing.pt": "missing tensors: resnet_3_1",
                "no-g.pt": "no generator state dict", "odd-fc.pt": "fc.weight has 65 features",
                "not-a-state-dict.pt": "'generator_test' is not a state dict"}  # fmt: skip
    for name, what in expected.items():
        with pytest.raises(ConversionError) as info:
            read_foreign(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and what in str(info.value), (name, str(info.value))
        capsys.readouterr()
        assert main(["convert", str(tmp_path / name), str(tmp_path / f"out-{name}")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and name in err, err
        assert not (tmp_path / f"out-{name}").exists()


# ----------------------------------------------------------------------------------------------
# The four variants

# Small settings of each variant; resnet's width cap bites (widths 2, 4, 4) so it is inferred.
SMALL = {
    "resnet": dict(arch="resnet", z_dim=6, nlabels=2, size=16, embed_size=3, nfilter=2, nfilter_max=4),
    "resnet2": dict(arch="resnet2", z_dim=5, nlabels=4, size=32, embed_size=4, nfilter=2),
    "resnet3": dict(arch="resnet3", z_dim=6, nlabels=1, size=64, embed_size=1, nfilter=1),
    "resnet4": dict(arch="resnet4", z_dim=6, nlabels=1, size=64, embed_size=1, nfilter=1),
}


def _pair(kwargs: dict, seed: int) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    G = Generator(**kwargs)
    D = Discriminator(**{k: v for k, v in kwargs.items() if k != "z_dim"})
    with torch.no_grad():  # biases away from zero, so every tensor matters
        for p in list(G.parameters()) + list(D.parameters()):
            p.add_(torch.randn_like(p) * 0.05)
    return G.eval(), D.eval()


def test_tensor_names_are_gan_stabilitys():
    """The names GAN_stability's networks give their tensors (``nn.Sequential`` indices of
    ``resnet``: blocks at even places, resamplers between them; ``resnet_{stage}_{block}``)."""
    G, D = _pair(SMALL["resnet"], 0)
    blocks = [f"resnet.{i}.conv_0.weight" for i in (0, 2, 4)]
    assert [k for k in G.state_dict() if k.endswith("conv_0.weight")] == blocks
    assert [k for k in D.state_dict() if k.endswith("conv_0.weight")] == blocks
    assert "resnet.2.conv_s.weight" in G.state_dict() and "resnet.0.conv_s.weight" not in G.state_dict()
    assert {"embedding.weight", "fc.weight", "fc.bias", "conv_img.weight", "conv_img.bias"} <= set(G.state_dict())
    blocks = {
        "resnet2": (["resnet_0_0", "resnet_0_1", "resnet_1_0", "resnet_1_1", "resnet_2_0", "resnet_2_1", "resnet_3_0",
                     "resnet_3_1", "resnet_4_0", "resnet_4_1", "resnet_5_0", "resnet_5_1"], 3),
        "resnet3": ([f"resnet_{i}_0" for i in range(6)], 7),
        "resnet4": ([f"resnet_{i}_0" for i in range(7)], 7),
    }  # fmt: skip
    for arch, (names, kernel) in blocks.items():
        G, D = _pair(SMALL[arch], 0)
        for net in (G, D):
            found = sorted({k.rsplit(".", 2)[0] for k in net.state_dict() if k.startswith("resnet_")})
            assert found == sorted(names), arch
        assert G.conv_img.weight.shape[-1] == D.conv_img.weight.shape[-1] == kernel
        assert D.state_dict().keys() == {"conv_img.weight", "conv_img.bias", "fc.weight", "fc.bias"} | {
            k for k in D.state_dict() if k.startswith("resnet_")}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_variant_builds_runs_backward_and_round_trips(arch, tmp_path):
    kwargs = SMALL[arch]
    G, D = _pair(kwargs, seed=3)
    G_avg, _ = _pair(kwargs, seed=4)
    n, size = 3, kwargs["size"]
    z = torch.randn([n, kwargs["z_dim"]], generator=torch.Generator().manual_seed(0))
    y = torch.arange(n) % kwargs["nlabels"]

    img = G(z, y)
    assert img.shape == (n, 3, size, size) and img.abs().max() <= 1
    logits = D(img, y)
    assert logits.shape == (n,)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in list(G.parameters()) + list(D.parameters()))
    # D's logit is the one of class y; one-hot rows (ganzoo's c) pick the same.
    with torch.no_grad():
        assert torch.equal(D(img, y), D.logits(img)[torch.arange(n), y])
        assert torch.equal(D(img, torch.nn.functional.one_hot(y, kwargs["nlabels"]).float()), D(img, y))

    # As GAN_stability saves it (DataParallel prefixes, legacy serialization), then back.
    def wrapped(net):
        return {f"module.{k}": v.detach() for k, v in net.state_dict().items()}

    payload = {"it": 7, "generator": wrapped(G), "discriminator": wrapped(D), "generator_test": wrapped(G_avg),
               "g_optimizer": {"state": {}, "param_groups": []}}  # fmt: skip
    torch.save(payload, tmp_path / "model.pt", _use_new_zipfile_serialization=False)
    foreign = read_foreign(tmp_path / "model.pt")
    assert foreign.G_ema.init_kwargs == G_avg.init_kwargs == G.init_kwargs == foreign.G.init_kwargs
    assert foreign.D.init_kwargs == {**D.init_kwargs, "embed_size": kwargs["embed_size"]} == D.init_kwargs
    assert main(["convert", str(tmp_path / "model.pt"), str(tmp_path / "ckpt")]) == 0
    loaded = ganzoo.load(tmp_path / "ckpt")
    # Same weights; the outputs agree to float rounding (tensors memory-mapped from safetensors
    # sit at other alignments, which may change a kernel's summation order by an ulp).
    same = dict(atol=1e-6, rtol=0)
    with torch.no_grad():
        for mine, theirs in ((loaded.G_ema, G_avg), (loaded.G, G), (loaded.D, D)):
            assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in mine.state_dict().items())
        for mine, theirs in ((loaded.G_ema, G_avg), (loaded.G, G)):
            torch.testing.assert_close(mine(z, y), theirs(z, y), **same)
        torch.testing.assert_close(loaded.D(img.detach(), y), D(img.detach(), y), **same)
    # ganzoo's own format: save, load, the same weights and outputs.
    loaded.save(tmp_path / "again")
    again = ganzoo.load(tmp_path / "again")
    assert all(torch.equal(v, G_avg.state_dict()[k]) for k, v in again.G_ema.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(again.G_ema(z, y), G_avg(z, y), **same)
        torch.testing.assert_close(again.D(img.detach(), y), D(img.detach(), y), **same)
    meta = again.metadata
    assert (meta.resolution, meta.latent_dim, meta.truncation) == (size, kwargs["z_dim"], False)
    assert meta.num_classes == (kwargs["nlabels"] if kwargs["nlabels"] > 1 else 0)


def test_networks_without_the_dataparallel_prefix_and_exports_read_too(tmp_path):
    G, D = _pair(SMALL["resnet4"], seed=5)
    torch.save({"generator": G.state_dict(), "discriminator": D.state_dict()}, tmp_path / "plain.pt")
    foreign = read_foreign(tmp_path / "plain.pt")
    assert foreign.G is None and foreign.G_ema.init_kwargs == G.init_kwargs
    assert any("no parameter average" in note for note in foreign.notes)
    assert main(["convert", str(tmp_path / "plain.pt"), str(tmp_path / "ckpt")]) == 0
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "exported.pt")]) == 0
    again = read_foreign(tmp_path / "exported.pt")  # ganzoo export's layout, kwargs stored
    assert again.G_ema.init_kwargs == G.init_kwargs and again.D.init_kwargs == D.init_kwargs
    assert all(torch.equal(again.G_ema.state_dict[k], v) for k, v in G.state_dict().items())


def test_constructor_checks_its_arguments():
    with pytest.raises(ValueError, match="arch must be one of"):
        Generator(8, 1, 32, arch="resnet5")
    with pytest.raises(ValueError, match="multiple of 32"):
        Generator(8, 1, 48, arch="resnet2")
    with pytest.raises(ValueError, match="4 \\* 2\\*\\*k"):
        Discriminator(nlabels=1, size=24, arch="resnet")
    with pytest.raises(ValueError, match="nlabels must be a positive integer"):
        Discriminator(size=64, arch="resnet3")


# ----------------------------------------------------------------------------------------------
# The plug-in


def test_the_plug_in_samples_one_label_models_unconditionally(tmp_path):
    from ganzoo.checkpoint import GAN

    arch = get_architecture("gpgan")
    assert arch.formats == ("gan-stability-pt",) and set(arch.recipes) == {"full", "freezed", "adafm", "scratch"}
    assert arch.mergeable
    G, D = _pair(SMALL["resnet3"], seed=6)
    gan = GAN(G, None, D, config={"license": "mit"})
    assert gan.config["architecture"] == "gpgan" and gan.metadata.num_classes == 0
    images = gan.sample(seeds=[4, 5])
    z = torch.from_numpy(arch.latents([4, 5], 6)).float()
    with torch.no_grad():
        expected = G(z, torch.zeros(2, dtype=torch.long))
        assert torch.equal(arch.generate(G, z, torch.zeros([2, 0]), seeds=[4, 5], truncation_psi=0.5,
                                         truncation_cutoff=None, noise_mode="random"), expected)  # fmt: skip
    assert np.array_equal(images, (expected.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy())
    with pytest.raises(GanzooError, match="unconditional"):
        gan.sample(seeds=[0], class_idx=0)
    arch.require("finetune", "adafm")  # trains (tests/test_gpgan_training.py)


def test_registry_entries_are_the_seven_releases():
    from ganzoo.registry import get_entry, list_models

    names = [n for n in list_models("gpgan") if get_entry(n).family == "gan-stability"]  # not the bundled starter
    assert names == ["celeba-gpgan-256", "celebahq-gpgan-1024", "imagenet-gpgan-128", "lsunbedroom-gpgan-256",
                     "lsunbridge-gpgan-256", "lsunchurch-gpgan-256", "lsuntower-gpgan-256"]  # fmt: skip
    files = set()
    for name in names:
        entry = get_entry(name)
        assert entry.architecture == "gpgan" and entry.license == "mit" and "Mescheder" in entry.paper.bibtex
        (artifact,) = entry.artifacts
        assert artifact.format == "gan-stability-pt" and artifact.sha256 is None
        base = "https://s3.eu-central-1.amazonaws.com/avg-projects/gan_stability/models/"
        assert artifact.url == base + artifact.filename
        files.add(artifact.filename)
        kwargs = dict(entry.generator)
        assert kwargs["size"] == entry.resolution and kwargs["z_dim"] == 256
        assert get_architecture("gpgan").metadata(kwargs).num_classes == entry.c_dim
        with torch.device("meta"):  # the released settings build
            Generator(**kwargs)
    assert files == {"imagenet-8c505f47.pt", "celebahq-baab46b2.pt", "celeba-ab478c9d.pt", "lsun_bedroom-df4e7dd2.pt",
                     "lsun_bridge-82887d22.pt", "lsun_church-b6f0191b.pt", "lsun_tower-1af5e570.pt"}  # fmt: skip
    assert get_entry("imagenet-gpgan-128").c_dim == 1000


def test_released_settings_are_inferred_back_from_their_tensor_shapes():
    """The seven releases' settings, built on the meta device (no memory): the reader infers
    each back from the tensor names and shapes alone."""
    from ganzoo.architectures.gpgan.reader import infer_discriminator_kwargs, infer_generator_kwargs
    from ganzoo.registry import get_entry, list_models

    for name in list_models("gpgan"):
        if get_entry(name).family != "gan-stability":
            continue  # the bundled starter: its widths stop at 128 before any cap, so nfilter_max is not in its shapes
        kwargs = dict(get_entry(name).generator)
        with torch.device("meta"):
            G = Generator(**kwargs)
            D = Discriminator(**{k: v for k, v in kwargs.items() if k != "z_dim"})
        inferred, _ = infer_generator_kwargs(G.state_dict(), name)
        assert inferred == G.init_kwargs, name
        inferred, _ = infer_discriminator_kwargs(D.state_dict(), name, embed_size=kwargs["embed_size"])
        assert inferred == D.init_kwargs, name


def test_pull_takes_the_upstream_route_for_a_release_on_loopback(model_file, tmp_path, monkeypatch):
    """A registry entry like the seven releases (a direct download, format gan-stability-pt, file
    named ``NAME-<sha256 prefix>.pt``), its file served on loopback and the Hub unreachable:
    ``ganzoo pull`` downloads it, converts it safely and ``ganzoo.load`` samples from it."""
    import hashlib
    import os

    from ganzoo import hub
    from olah_server import FileServer, free_port

    data = model_file.read_bytes()
    filename = f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pt"  # the releases' naming convention
    files = FileServer({filename: data}).start()
    try:
        (tmp_path / "registry").mkdir()
        (tmp_path / "registry" / "gpgan-test.toml").write_text(f"""
[[models]]
name = "tiny-gpgan-32"
title = "the gpgan fixture, as a release"
architecture = "gpgan"
license = "mit"
resolution = 32
c_dim = 3
class_names = ["discs", "stripes", "shapes"]
includes = ["G_ema", "G", "D"]
dataset = {{ name = "test data" }}
paper = {{ title = "A test", authors = "ganzoo", year = 2024, url = "https://example.org/paper" }}
hub = {{ repo = "testorg/not-on-any-hub", revision = "main" }}
generator = {{ arch = "resnet2", z_dim = 8, nlabels = 3, size = 32, embed_size = 8, nfilter = 4 }}
[[models.artifacts]]
url = "{files.url}/{filename}"
format = "gan-stability-pt"
filename = "{filename}"
""")
        for name in list(os.environ):
            if name.startswith("HF_"):
                monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("GANZOO_REGISTRY_PATH", str(tmp_path / "registry"))
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing answers there
        result = hub.pull_checkpoint("tiny-gpgan-32")
        assert result.origin == "upstream" and files.requests[-1][0] == f"/{filename}"
        config = json.loads((result.path / "config.json").read_text())
        assert config["architecture"] == "gpgan" and config["license"] == "mit"
        assert config["source"]["format"] == "gan-stability-pt" and config["source"]["registry"] == "tiny-gpgan-32"
        assert config["source"]["sha256"] == hashlib.sha256(data).hexdigest()
        pulled = ganzoo.load("tiny-gpgan-32")
        direct = ganzoo.load(model_file)  # the same file, converted in memory
        assert np.array_equal(pulled.sample(seeds=[1, 2], class_idx=1), direct.sample(seeds=[1, 2], class_idx=1))
        # The entry's class names travel into the checkpoint: --class NAME works on the pulled model.
        assert config["class_names"] == ["discs", "stripes", "shapes"] == pulled.metadata.class_names
        assert np.array_equal(pulled.sample(seeds=[1], class_idx="stripes"), direct.sample(seeds=[1], class_idx=1))
    finally:
        files.stop()
