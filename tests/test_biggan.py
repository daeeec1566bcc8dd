"""BigGAN (the BigGAN-PyTorch release layout) as the ``biggan`` architecture: the networks
reproduce ``../shared/fixtures/biggan/biggan64`` in eval and train mode from files read by ganzoo's
reader; the reader takes the weights folder, a zip of it and a lone ``G_ema.pth`` in both torch
serializations; other settings build, run and round-trip; sampling is class-conditional with
BigGAN's truncation, seeded exactly."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.architectures import get_architecture
from ganzoo.architectures.biggan import BigGAN, truncated_latents
from ganzoo.architectures.biggan.networks import (
    RELEASE_CONFIG_KEYS,
    Discriminator,
    Generator,
    standing_statistics,
)
from ganzoo.architectures.biggan.reader import (
    infer_discriminator_kwargs,
    infer_generator_kwargs,
    read,
)
from ganzoo.checkpoint import GAN
from ganzoo.errors import ConversionError, UnsafeCheckpointError
from ganzoo.conversion import foreign_to_gan
from ganzoo.readers import detect_format, read_foreign
from ganzoo.readers.safe_pickle import load_torch_file
from helpers import assert_same_images

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = "biggan/biggan64"
TOLERANCE = 1e-4
FILES = ("G.pth", "G_ema.pth", "D.pth", "state_dict.pth")


@pytest.fixture(scope="module")
def fixture_dir(shared_fixtures):
    return shared_fixtures / FIXTURE


@pytest.fixture(scope="module")
def reference(fixture_dir):
    return dict(np.load(fixture_dir / "biggan64-reference.npz"))


@pytest.fixture(scope="module")
def fixture_config(fixture_dir):
    return json.loads((fixture_dir / "biggan64-config.json").read_text())


def _max_error(a: torch.Tensor, b: np.ndarray) -> float:
    assert tuple(a.shape) == b.shape
    return float((a.detach().float() - torch.from_numpy(b)).abs().max())


def reference_errors(gan: GAN, ref: dict) -> dict[str, float]:
    """Max |ours - reference| for every key of the reference file (train-mode forwards run on
    copies, from the saved state, as the reference did)."""
    import copy

    z, y, x = (torch.from_numpy(ref[k]) for k in ("z", "y", "x_input"))
    errors = {}
    with torch.no_grad():
        for role in ("G_ema", "G"):
            net = getattr(gan, role).eval()
            errors[f"img_{role}_eval"] = _max_error(net(z, net.shared(y)), ref[f"img_{role}_eval"])
        D = gan.D.eval()
        errors["d_logits_input_eval"] = _max_error(D(x, y), ref["d_logits_input_eval"])
        errors["d_logits_img_eval"] = _max_error(D(torch.from_numpy(ref["img_G_ema_eval"]), y), ref["d_logits_img_eval"])
        G, D = copy.deepcopy(gan.G).train(), copy.deepcopy(gan.D).train()
        errors["img_G_train"] = _max_error(G(z, G.shared(y)), ref["img_G_train"])
        errors["d_logits_input_train"] = _max_error(D(x, y), ref["d_logits_input_train"])
    after = {"G": G.state_dict(), "D": D.state_dict()}
    for key in ref:
        for role in ("G", "D"):
            if key.startswith(f"{role}_after_train_"):
                errors[key] = _max_error(after[role][key[len(role) + 13:]], ref[key])
    assert set(errors) == set(ref) - {"z", "y", "x_input"}
    return errors


def test_fixture_reproduces_every_reference_key_from_the_files_the_reader_reads(fixture_dir, reference, fixture_config):
    foreign = read_foreign(fixture_dir)
    assert foreign.format == "biggan-pytorch" and foreign.architecture == "biggan"
    for role, key in (("G_ema", "generator_kwargs"), ("G", "generator_kwargs"), ("D", "discriminator_kwargs")):
        kwargs = getattr(foreign, role).init_kwargs
        assert {k: kwargs[k] for k in fixture_config[key]} == fixture_config[key], role
    assert foreign.extra["training_state"]["itr"] == 1234
    gan = foreign_to_gan(fixture_dir)
    errors = reference_errors(gan, reference)
    assert max(errors.values()) <= TOLERANCE, errors
    # Train mode really stored something: the saved u0 moved, and BN statistics moved.
    saved = load_torch_file(fixture_dir / "G.pth")
    assert not torch.equal(saved["linear.u0"], torch.from_numpy(reference["G_after_train_linear.u0"]))


def _power_step_float64(weight: torch.Tensor, us: list[torch.Tensor], steps: int) -> tuple[list, list]:
    """One spectral-norm update as BigGAN-PyTorch defines it, written out independently in
    float64: per stored left vector u_k, v_k = normalize(u_k W minus its projections on the
    earlier v), u_k' = normalize(v_k Wᵀ minus its projections on the earlier u'), sigma_k =
    v_k Wᵀ u_k'ᵀ; ``steps`` times. Returns the new vectors and singular values."""
    W = weight.detach().double().reshape(weight.shape[0], -1)
    us = [u.detach().double().reshape(1, -1) for u in us]
    for _ in range(steps):
        vs, new_us, sigmas = [], [], []
        for u in us:
            v = u @ W
            for b in vs:
                v = v - (b @ v.t()) * b / (b @ b.t())
            v = v / v.norm().clamp_min(1e-12)
            vs.append(v)
            left = v @ W.t()
            for b in new_us:
                left = left - (b @ left.t()) * b / (b @ b.t())
            left = left / left.norm().clamp_min(1e-12)
            new_us.append(left)
            sigmas.append(float((v @ W.t() @ left.t()).squeeze()))
        us = new_us
    return us, sigmas


def test_eval_forwards_store_nothing_train_forwards_store_u_sv_and_statistics(fixture_dir, reference):
    from ganzoo.architectures.biggan.networks import _SpectralNorm

    gan = foreign_to_gan(fixture_dir)
    G = gan.G
    z, y = torch.from_numpy(reference["z"]), torch.from_numpy(reference["y"])
    # Start every spectral-norm layer from vectors far from converged, so that one step moves
    # them by O(1), whatever the CPU's rounding: a layer that skipped its step cannot pass. The
    # release's weights are orthogonal (every singular value 1), where one step already lands on
    # the fixed point; scaling them elementwise spreads the singular values, so that a second
    # step would move the vectors again.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in G.modules():
            if isinstance(module, _SpectralNorm):
                module.weight.mul_(torch.rand(module.weight.shape, generator=generator) * 2)
                for u in module.u:
                    u.copy_(torch.randn(u.shape, generator=generator))
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        G.eval()(z, G.shared(y))
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())  # eval writes nothing at all
    with torch.no_grad():
        G.train()(z, G.shared(y))
    after = G.state_dict()
    # Train mode wrote buffers only: never a parameter.
    for name, _ in G.named_parameters():
        assert torch.equal(after[name], before[name]), name
    # Every BN statistic took its momentum step towards this batch's statistics (a real batch of
    # random latents moves them by far more than rounding).
    statistics = [k for k in before if k.endswith(("stored_mean", "stored_var"))]
    assert statistics and all((after[k] - before[k]).abs().max() > 1e-4 for k in statistics), statistics
    # Every spectral-norm layer stored exactly one power-iteration step per forward (num_itrs of
    # them), computed here independently in float64 from the vectors it started with.
    # Measured (ATEN_CPU_CAPABILITY default/avx2/avx512, AVX-512+AMX Xeon): agreement to 3e-7 in u
    # and 2e-7 relative in sv; the vectors moved by 0.08-3.7; a forward that took two steps
    # instead of one is off by 0.4.
    checked = 0
    for name, module in G.named_modules():
        if not isinstance(module, _SpectralNorm):
            continue
        prefix = f"{name}." if name else ""
        start = [before[f"{prefix}u{k}"] for k in range(module.num_svs)]
        expected_u, expected_sv = _power_step_float64(module.weight, start, module.num_itrs)
        for k in range(module.num_svs):
            stored_u, stored_sv = after[f"{prefix}u{k}"].double(), float(after[f"{prefix}sv{k}"])
            assert (stored_u - expected_u[k]).abs().max() < 1e-5, (name, k)
            assert abs(stored_sv - expected_sv[k]) <= 1e-5 * max(1.0, abs(expected_sv[k])), (name, k)
            assert (stored_u - start[k].double()).abs().max() > 0.02, (name, k)  # it moved: a real step
        checked += 1
    assert checked > 10 and "linear.u0" in before


def _full(kwargs: dict, role: str) -> dict:
    """The kwargs as the network records them (defaults filled in)."""
    with torch.device("meta"):
        return (Discriminator if role == "D" else Generator)(**kwargs).init_kwargs


def _zip_serialized(source, target) -> None:
    """The folder with every .pth re-saved in torch's zip serialization (the fixture's is legacy)."""
    target.mkdir()
    for name in FILES:
        torch.save(load_torch_file(source / name), target / name)


@pytest.mark.parametrize("serialization", ["legacy", "zip"])
def test_the_folder_a_zip_of_it_and_a_lone_g_ema_read_alike(serialization, fixture_dir, reference, tmp_path):
    folder = tmp_path / "run"
    if serialization == "legacy":
        folder.mkdir()
        for name in FILES:
            shutil.copy(fixture_dir / name, folder / name)
        assert (folder / "G.pth").read_bytes()[:2] != b"PK"
    else:
        _zip_serialized(fixture_dir, folder)
        assert (folder / "G.pth").read_bytes()[:2] == b"PK"
    (folder / "G_optim.pth").write_bytes((fixture_dir / "state_dict.pth").read_bytes())  # present, never read
    archive = tmp_path / "138k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"138k/{path.name}")
    lone = tmp_path / "G_ema.pth"
    shutil.copy(folder / "G_ema.pth", lone)

    from_folder = read(folder)
    assert any("optimizer states not read: G_optim.pth" in n for n in from_folder.notes)
    for source in (folder, archive, lone):
        assert detect_format(source) == "biggan-pytorch", source
        foreign = read_foreign(source)
        roles = ("G_ema",) if source == lone else ("G_ema", "G", "D")
        for role in roles:
            spec, expected = getattr(foreign, role), getattr(from_folder, role)
            assert _full(spec.init_kwargs, role) == _full(expected.init_kwargs, role), (source, role)
            assert spec.state_dict.keys() == expected.state_dict.keys()
            assert all(torch.equal(spec.state_dict[k], v) for k, v in expected.state_dict.items())
    lone_foreign = read_foreign(lone)
    assert lone_foreign.G is None and lone_foreign.D is None
    assert any("inferred from tensor names and shapes" in n for n in lone_foreign.notes)
    gan = foreign_to_gan(lone)
    with torch.no_grad():
        z, y = torch.from_numpy(reference["z"]), torch.from_numpy(reference["y"])
        assert _max_error(gan.G_ema(z, gan.G_ema.shared(y)), reference["img_G_ema_eval"]) <= TOLERANCE
    # Through `ganzoo convert` from the zip and from the folder.
    from ganzoo.cli import main

    assert main(["convert", str(archive), str(tmp_path / "ckpt")]) == 0
    assert main(["convert", str(folder), str(tmp_path / "ckpt2")]) == 0
    config = json.loads((tmp_path / "ckpt2" / "config.json").read_text())
    assert config["architecture"] == "biggan" and config["source"]["format"] == "biggan-pytorch"
    assert set(config["source"]["files"]) == {*FILES, "G_optim.pth"}
    assert ganzoo.load(tmp_path / "ckpt").metadata.num_classes == 10


def test_settings_inferred_from_tensors_match_the_release_config(fixture_dir, fixture_config):
    g_kwargs, g_notes = infer_generator_kwargs(load_torch_file(fixture_dir / "G_ema.pth"))
    d_kwargs, _ = infer_discriminator_kwargs(load_torch_file(fixture_dir / "D.pth"))
    assert {k: g_kwargs[k] for k in fixture_config["generator_kwargs"] if k != "G_init"} == {
        k: v for k, v in fixture_config["generator_kwargs"].items() if k != "G_init"}
    assert {k: d_kwargs[k] for k in fixture_config["discriminator_kwargs"] if k != "D_init"} == {
        k: v for k, v in fixture_config["discriminator_kwargs"].items() if k != "D_init"}
    assert "SN_eps=1e-06" in g_notes[0] and "defaulted" in g_notes[0]


def test_config_overrides_the_inferred_settings(fixture_dir, tmp_path):
    lone = tmp_path / "G_ema.pth"
    shutil.copy(fixture_dir / "G_ema.pth", lone)
    foreign = read_foreign(lone, config={"generator": {"SN_eps": 1e-8, "BN_eps": 2e-5}})
    assert foreign.G_ema.init_kwargs["SN_eps"] == 1e-8 and foreign.G_ema.init_kwargs["BN_eps"] == 2e-5
    assert any("given by config (override): BN_eps, SN_eps" in n for n in foreign.notes)
    # A flat BigGAN-PyTorch config (its keys for both networks; the others ignored).
    flat = read_foreign(lone, config={"SN_eps": 1e-7, "G_lr": 1e-4, "dataset": "I128_hdf5", "G_nl": "inplace_relu"})
    assert flat.G_ema.init_kwargs["SN_eps"] == 1e-7 and flat.G_ema.init_kwargs["G_activation"] == "inplace_relu"
    with pytest.raises(ConversionError, match="wrong shapes"):
        read_foreign(lone, config={"generator": {"G_ch": 8}})


@pytest.mark.parametrize("serialization", [False, True])
def test_the_release_state_dict_with_its_activation_modules_is_not_run_and_settings_are_inferred(
        serialization, fixture_dir, tmp_path):  # fmt: skip
    """The real release's state_dict.pth holds config['G_activation'] = nn.ReLU(inplace=True): a
    class, refused by the restricted loader; the reader notes it and infers the settings."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("G.pth", "G_ema.pth", "D.pth"):
        shutil.copy(fixture_dir / name, folder / name)
    state = load_torch_file(fixture_dir / "state_dict.pth")
    state["config"].update(G_activation=torch.nn.ReLU(inplace=True), D_activation=torch.nn.ReLU(inplace=True))
    torch.save(state, folder / "state_dict.pth", _use_new_zipfile_serialization=serialization)
    foreign = read_foreign(folder)
    assert any("state_dict.pth not read" in n and "torch.nn.modules.activation.ReLU" in n for n in foreign.notes)
    assert foreign.G_ema.init_kwargs["G_ch"] == 4 and foreign.D.init_kwargs["D_ch"] == 16

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"config": {"G_ch": 4, "x": Payload()}}, folder / "state_dict.pth", _use_new_zipfile_serialization=serialization)
    with pytest.raises(UnsafeCheckpointError, match="builtins.print"):
        read_foreign(folder)


def test_the_sniff_leaves_stylegan_files_to_their_readers(shared_fixtures, tmp_path):
    from helpers import tiny_gan

    gan = tiny_gan()
    for serialization in (False, True):
        path = tmp_path / f"sg2-{serialization}.pt"
        torch.save({"G_ema": gan.G_ema.state_dict(), "D": gan.D.state_dict()}, path, _use_new_zipfile_serialization=serialization)
        assert detect_format(path) == "state-dict-pt"
    assert detect_format(shared_fixtures / "stylegan2-ada/loss32/loss32-networks.pt") == "state-dict-pt"
    assert detect_format(shared_fixtures / "stylegan2-ada/tiny32/tiny32-snapshot.pkl") == "stylegan2-ada-pkl"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no reader recognizes"):
        detect_format(tmp_path / "empty")


def test_a_zip_with_two_checkpoints_is_refused(fixture_dir, tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for folder in ("a", "b"):
            zf.write(fixture_dir / "G_ema.pth", f"{folder}/G_ema.pth")
    with pytest.raises(ConversionError, match="several checkpoints"):
        read_foreign(archive)


# ------------------------------------------------------------------------------------------------
# Other settings: build, run, round-trip


def _release_folder(folder, G, G_ema, D, config) -> None:
    """What BigGAN-PyTorch's utils.save_weights writes."""
    folder.mkdir()
    torch.save(G.state_dict(), folder / "G.pth")
    torch.save(G_ema.state_dict(), folder / "G_ema.pth")
    torch.save(D.state_dict(), folder / "D.pth")
    torch.save({"itr": 1, "epoch": 0, "config": config}, folder / "state_dict.pth")


VARIANTS = {
    "res32-attn16": dict(resolution=32, G_attn="16", D_attn="16"),
    "res128-attn32_64": dict(resolution=128, G_attn="32_64", D_attn="64_8", D_ch=8, dim_z=30, shared_dim=6),
    "res128-hier-off": dict(resolution=128, hier=False, G_attn="0", D_attn="0", dim_z=12),
    "res64-unshared": dict(resolution=64, G_shared=False, hier=False, G_attn="64", D_attn="4", D_wide=False),
    "res64-two-svs-in": dict(resolution=64, num_G_SVs=2, num_G_SV_itrs=2, num_D_SVs=2, norm_style="in", output_dim=2),
    "res64-plain-nonorm": dict(resolution=64, G_param="none", norm_style="nonorm", G_attn="8_16"),
    "res256": dict(resolution=256, G_attn="0", D_attn="0", G_ch=2, D_ch=2, dim_z=14),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_other_settings_build_run_and_round_trip(name, tmp_path):
    config = {"G_ch": 4, "D_ch": 4, "dim_z": 20, "shared_dim": 8, "hier": True, "G_shared": True, "n_classes": 5,
              "SN_eps": 1e-6, "BN_eps": 1e-5, "G_lr": 1e-4, "batch_size": 8, **VARIANTS[name]}  # fmt: skip
    torch.manual_seed(0)
    G, D = Generator(**config), Discriminator(**config)
    with torch.no_grad():
        for net in (G, D):
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # gamma and BN gains off their init values
    res = config["resolution"]
    z = torch.randn([2, G.dim_z])
    y = torch.tensor([1, 3])
    with torch.no_grad():
        G.train()(z, G.shared(y))  # statistics and u move off their init values
        D.train()(torch.randn([2, 3, res, res]), y)
    G_ema = Generator(**config, skip_init=True)
    G_ema.load_state_dict(G.state_dict())
    G.eval(), G_ema.eval(), D.eval()
    with torch.no_grad():
        img = G(z, G.shared(y))
        logits = D(img, y)
    assert img.shape == (2, 3, res, res) and logits.shape == (2, config.get("output_dim", 1))
    assert torch.isfinite(img).all() and torch.isfinite(logits).all()
    assert G.init_kwargs["G_ch"] == config["G_ch"] and "G_lr" not in G.init_kwargs

    _release_folder(tmp_path / "run", G, G_ema, D, config)
    gan = foreign_to_gan(tmp_path / "run")
    assert gan.metadata.resolution == res and gan.metadata.latent_dim == G.dim_z and gan.metadata.num_classes == 5
    gan.save(tmp_path / "ckpt")
    loaded = GAN.load(tmp_path / "ckpt")
    # Settings inferred from the tensors alone (no state_dict.pth): the same networks.
    (tmp_path / "run" / "state_dict.pth").unlink()
    inferred = foreign_to_gan(tmp_path / "run")
    assert any("inferred from tensor names and shapes" in n for n in inferred.config["source"]["notes"])
    for key in ("G_ch", "resolution", "dim_z", "n_classes", "hier", "G_shared", "bottom_width", "G_param"):
        assert inferred.G_ema.init_kwargs[key] == G.init_kwargs[key], key
    for key in ("D_ch", "resolution", "n_classes", "D_wide", "output_dim", "num_D_SVs"):
        assert inferred.D.init_kwargs[key] == D.init_kwargs[key], key
    for net in (gan.G_ema, loaded.G_ema, gan.G, inferred.G_ema):
        with torch.no_grad():
            torch.testing.assert_close(net(z, net.shared(y)), img, rtol=0, atol=1e-5)
    for net in (gan.D, loaded.D, inferred.D):
        with torch.no_grad():
            torch.testing.assert_close(net(img, y), logits, rtol=1e-5, atol=1e-5)


def test_generator_512_and_settings_the_release_lacks():
    G = Generator(G_ch=2, dim_z=16, resolution=512, G_attn="0", n_classes=3, shared_dim=4, hier=True)
    with torch.no_grad():
        img = G.eval()(torch.randn([1, G.dim_z]), G.shared(torch.tensor([2])))
    assert img.shape == (1, 3, 512, 512) and G.dim_z == 16 and G.num_slots == 8
    assert get_architecture("biggan").metadata(G.init_kwargs).resolution == 512
    with pytest.raises(ValueError, match="resolution"):
        Discriminator(D_ch=2, resolution=512)  # the release has no 512 discriminator
    with pytest.raises(TypeError, match="G_chh"):
        Generator(G_chh=4)  # not a key of the release's config either
    with pytest.raises(ValueError, match="hier=True needs G_shared"):
        Generator(G_shared=False, hier=True)
    with pytest.raises(ValueError, match="mybn"):
        Generator(mybn=True)
    # The ImageNet release's hierarchical latent: 120 = 6 chunks of 20; 128 rounds down to 126.
    arch = get_architecture("biggan")
    assert arch.metadata({"dim_z": 120, "hier": True, "resolution": 128}).latent_dim == 120
    assert arch.metadata({"dim_z": 128, "hier": True, "resolution": 128}).latent_dim == 126


# ------------------------------------------------------------------------------------------------
# Sampling


def test_latents_are_the_truncated_normal_seeded_exactly():
    z = truncated_latents([0, 1, 2**40 + 3], 120)
    assert z.shape == (3, 120) and np.abs(z).max() <= 2.0
    for row, seed in zip(z, [0, 1, (2**40 + 3) % 2**32]):
        plain = np.random.RandomState(seed).randn(120)
        inside = np.abs(plain) <= 2
        assert np.array_equal(row[inside], plain[inside])
        assert np.array_equal(row, plain) == inside.all()
    assert np.array_equal(truncated_latents([5], 64), get_architecture("biggan").latents([5], 64))
    many = truncated_latents(range(200), 120)
    assert abs(many.std() - 0.88) < 0.02  # the std of N(0, 1) truncated to [-2, 2]: 0.8796


def test_sampling_is_class_conditional_with_truncation_and_g_in_eval_mode(fixture_dir):
    gan = foreign_to_gan(fixture_dir)
    gan.config["class_names"] = [f"c{i}" for i in range(10)]
    G = gan.G_ema
    G.train()  # sampling must not use batch statistics or move any buffer
    before = {k: v.clone() for k, v in G.state_dict().items()}
    images = gan.sample(seeds=[3, 4, 5], class_idx="c7", truncation_psi=0.5, batch_size=2)
    assert G.training and all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    z = torch.from_numpy(truncated_latents([3, 4, 5], G.dim_z)).float() * 0.5
    with torch.no_grad():
        G.eval()
        expected = G(z, G.shared(torch.tensor([7, 7, 7])))
    expected = (expected.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1
    # Another batch size: the same images up to rounding (batches of 2 and 3 may take other kernels).
    assert_same_images(images, gan.sample(seeds=[3, 4, 5], class_idx=7, truncation_psi=0.5, batch_size=3))
    assert not np.array_equal(images, gan.sample(seeds=[3, 4, 5], class_idx=2, truncation_psi=0.5))
    assert not np.array_equal(images, gan.sample(seeds=[3, 4, 5], class_idx=7, truncation_psi=1.0))


def test_standing_statistics_are_a_seeded_copy(fixture_dir):
    gan = foreign_to_gan(fixture_dir)
    before = {k: v.clone() for k, v in gan.G_ema.state_dict().items()}
    a = standing_statistics(gan.G_ema, num_accumulations=3, batch_size=8, seed=1)
    b = standing_statistics(gan.G_ema, num_accumulations=3, batch_size=8, seed=1)
    assert all(torch.equal(v, before[k]) for k, v in gan.G_ema.state_dict().items())
    assert not a.training and type(a) is Generator
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    changed = [k for k, v in a.state_dict().items() if not torch.equal(v, before[k])]
    assert "blocks.0.0.bn1.stored_mean" in changed and "output_layer.0.stored_var" in changed


def test_plugin_declares_its_roles_formats_and_registry_entries():
    from ganzoo.readers import FORMATS
    from ganzoo.registry import get_entry

    arch = get_architecture("biggan")
    assert isinstance(arch, BigGAN) and arch.recipes == ("full", "freezed", "scratch") and not arch.mergeable
    assert arch.formats == ("biggan-pytorch",) and "biggan-pytorch" in FORMATS
    entry = get_entry("imagenet-biggan-128")
    assert entry.architecture == "biggan" and entry.c_dim == 1000 and set(entry.includes) == {"G_ema", "G", "D"}
    assert all(a.manual_download and a.format == "biggan-pytorch" for a in entry.artifacts)
    # The registry's generator settings build the release's G (the shapes of its 138k files).
    with torch.device("meta"):
        G = Generator(**dict(entry.generator))
        D = Discriminator(**dict(entry.discriminator))
    assert G.dim_z == 120 and G.shared.weight.shape == (1000, 128) and tuple(G.linear.weight.shape) == (16 * 96 * 16, 20)
    assert tuple(D.embed.weight.shape) == (1000, 16 * 96)


def test_reading_never_unpickles_with_pickle(fixture_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert read_foreign(fixture_dir).G_ema is not None


# ------------------------------------------------------------------------------------------------
# Export: BigGAN-PyTorch's weights folder


@pytest.fixture(scope="module")
def converted(fixture_dir, tmp_path_factory):
    """The fixture converted into a ganzoo checkpoint directory."""
    from ganzoo.conversion import convert

    out = tmp_path_factory.mktemp("biggan-export") / "ckpt"
    convert(fixture_dir, out)
    return out


def _outputs(gan: GAN, ref: dict) -> dict[str, torch.Tensor]:
    z, y, x = (torch.from_numpy(ref[k]) for k in ("z", "y", "x_input"))
    with torch.no_grad():
        out = {role: getattr(gan, role).eval()(z, getattr(gan, role).shared(y)) for role in ("G_ema", "G")}
        out["D"] = gan.D.eval()(x, y)
    return out


def test_export_writes_the_release_folder_that_reads_back_exactly(converted, fixture_dir, reference, tmp_path, capsys):
    from ganzoo.cli import main

    out = tmp_path / "release"  # no suffix: the release's folder
    assert main(["export", str(converted), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "ganzoo.json"])  # + the class names, license
    for name in ("G.pth", "G_ema.pth", "D.pth"):
        ours, theirs = (torch.load(folder / name, weights_only=True) for folder in (out, fixture_dir))
        assert list(ours) == list(theirs), name  # the release's names, in its order
        assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}, name
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name  # converted, exported: the same tensors
    state = torch.load(out / "state_dict.pth", weights_only=True)
    release = torch.load(fixture_dir / "state_dict.pth", weights_only=True)
    assert set(state) == set(release)  # the release's utils.load_weights reads each of these keys
    assert {k: state[k] for k in state if k != "config"} == {"itr": 0, "epoch": 0, "save_num": 0, "save_best_num": 0,
                                                              "best_IS": 0, "best_FID": 999999}  # fmt: skip
    config = state["config"]
    assert {k: config[k] for k in release["config"]} == release["config"]  # every setting the release stored
    assert config["G_nl"] == config["D_nl"] == "relu"
    assert set(config) <= RELEASE_CONFIG_KEYS  # every key a name of the release's config (its parser's options)
    # Read back by ganzoo's own reader: the same networks, the same outputs to the last bit.
    foreign = read_foreign(out)
    assert any("settings read from state_dict.pth's config" in n for n in foreign.notes)
    assert _same_outputs(foreign_to_gan(out), GAN.load(converted), reference)
    # A .pt name: the single file every family exports (the reader reads it too).
    assert main(["export", str(converted), str(tmp_path / "one.pt")]) == 0
    payload = torch.load(tmp_path / "one.pt", weights_only=True)
    assert set(payload) == {"G_ema", "G", "D", "init_kwargs", "architecture"}
    assert _same_outputs(foreign_to_gan(tmp_path / "one.pt"), GAN.load(converted), reference)


def _own_storage(gan: GAN) -> GAN:
    """``gan`` with every tensor in memory of its own: a loaded checkpoint's tensors are views of
    one file-sized storage, and where a tensor lies can change the last bit of a CPU kernel."""
    for net in gan.networks().values():
        for module in net.modules():
            for name, p in module._parameters.items():
                if p is not None:
                    module._parameters[name] = torch.nn.Parameter(p.detach().clone(), requires_grad=False)
            for name, b in module._buffers.items():
                if b is not None:
                    module._buffers[name] = b.clone()
    return gan


def _same_outputs(a: GAN, b: GAN, ref: dict) -> bool:
    for role, net in b.networks().items():
        theirs = net.state_dict()
        assert {k: v for k, v in getattr(a, role).state_dict().items()}.keys() == theirs.keys(), role
        assert all(torch.equal(v, theirs[k]) for k, v in getattr(a, role).state_dict().items()), role
    ours, theirs = _outputs(_own_storage(a), ref), _outputs(_own_storage(b), ref)
    return all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_export_of_a_freezed_checkpoint_has_no_ganzoo_only_state(converted, fixture_dir, reference, tmp_path):
    from ganzoo.conversion import export

    source = GAN.load(converted)
    arch = get_architecture("biggan")
    frozen = GAN(source.G_ema, source.G, arch.freeze_d(source.D, 5), config=source.config)  # the freezed recipe's D
    assert frozen.D.init_kwargs["freeze_layers"] == 5 and "blocks.0.0.conv1.weight" in dict(frozen.D.named_buffers())
    frozen.save(tmp_path / "freezed")
    out = export(tmp_path / "freezed", tmp_path / "release")
    D = torch.load(out / "D.pth", weights_only=True)
    theirs = torch.load(fixture_dir / "D.pth", weights_only=True)
    assert list(D) == list(theirs) and all(torch.equal(D[k], theirs[k]) for k in theirs)
    config = torch.load(out / "state_dict.pth", weights_only=True)["config"]
    assert "freeze_layers" not in config
    back = foreign_to_gan(out)
    assert "freeze_layers" not in back.D.init_kwargs and not any(k.endswith(".weight") for k, _ in back.D.named_buffers())
    assert _same_outputs(back, frozen, reference)
    # The single file too: its init_kwargs are the release's settings.
    export(tmp_path / "freezed", tmp_path / "one.pt")
    assert "freeze_layers" not in torch.load(tmp_path / "one.pt", weights_only=True)["init_kwargs"]["D"]


def test_export_of_a_generator_alone_and_settings_g_and_d_disagree_on(fixture_dir, tmp_path):
    from ganzoo.errors import GanzooError
    from ganzoo.conversion import export

    foreign_to_gan(fixture_dir / "G_ema.pth").save(tmp_path / "g")
    out = export(tmp_path / "g", tmp_path / "g-release")
    assert sorted(p.name for p in out.iterdir()) == ["G_ema.pth", "ganzoo.json", "state_dict.pth"]
    assert "D_ch" not in torch.load(out / "state_dict.pth", weights_only=True)["config"]
    gan = foreign_to_gan(fixture_dir)
    D = Discriminator(**{**gan.D.init_kwargs, "SN_eps": 1e-8})
    D.load_state_dict(gan.D.state_dict())
    GAN(gan.G_ema, gan.G, D, config=gan.config).save(tmp_path / "mixed")
    with pytest.raises(GanzooError, match="disagree on SN_eps"):
        export(tmp_path / "mixed", tmp_path / "mixed-release")
    assert not (tmp_path / "mixed-release").exists()


def test_export_refuses_an_existing_out_in_one_line(converted, tmp_path, capsys):
    from ganzoo.cli import main

    out = tmp_path / "release"
    assert main(["export", str(converted), str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    (tmp_path / "file").write_text("mine")
    for target, message in ((out, "already exists and is not empty (use --overwrite"),
                            (tmp_path / "file", "exists and is not a directory")):  # fmt: skip
        assert main(["export", str(converted), str(target)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {target}: {message}"), err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and (tmp_path / "file").read_text() == "mine"
    (out / "note.txt").write_text("replaced as a whole")
    assert main(["export", str(converted), str(out), "--overwrite"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # replaced as a whole, the same bytes again


# ------------------------------------------------------------------------------------------------
# DiffAugment's BigGAN-CIFAR release (registry/diffaugment-biggan.toml): mit-han-lab/data-efficient-gans
# publishes lone generator state dicts (eval.py: G.load_state_dict(torch.load(file))), written by
# BigGAN-PyTorch's code at its CIFAR settings; its train.py writes BigGAN-PyTorch's weights folder.

DIFFAUGMENT_ENTRIES = {10: "diffaugment-biggan-cifar10", 100: "diffaugment-biggan-cifar100-0.1"}


def _diffaugment_networks(n_classes: int, G_ch: int = 4):
    """G, G_ema and D at a release entry's settings (G_ch, D_ch small), with weights, spectral-norm
    vectors and BN statistics moved off their init values."""
    from ganzoo.registry import get_entry

    config = {**dict(get_entry(DIFFAUGMENT_ENTRIES[n_classes]).generator), "G_ch": G_ch}  # the entry's G kwargs
    assert config["n_classes"] == n_classes and not config["G_shared"] and not config["hier"]
    torch.manual_seed(n_classes)
    G, D = Generator(**config), Discriminator(**{**config, "D_ch": G_ch, "D_attn": "0", "D_init": "N02"})
    with torch.no_grad():
        for net in (G, D):
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        y = torch.arange(4) % n_classes
        G.train()(torch.randn([4, G.dim_z]), G.shared(y))
        D.train()(torch.randn([4, 3, 32, 32]), y)
    G_ema = Generator(**config, skip_init=True)
    G_ema.load_state_dict(G.state_dict())
    with torch.no_grad():
        G_ema.train()(torch.randn([4, G.dim_z]), G_ema.shared(y))  # G_ema's own statistics and u
    return config, G, G_ema, D


def _save(obj, path, serialization: str) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=serialization == "zip")


def _assert_same_generator(net, G) -> None:
    """Strictly the same tensors, and bit-identical images in eval and in train mode (eval.py's
    default: batch statistics)."""
    import copy

    ours, theirs = net.state_dict(), G.state_dict()
    assert list(ours) == list(theirs)
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), name
    z = torch.randn([6, G.dim_z], generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3, 4, 5]) % G.n_classes
    for mode in ("eval", "train"):
        a, b = copy.deepcopy(net), copy.deepcopy(G)
        getattr(a, mode)(), getattr(b, mode)()
        with torch.no_grad():
            assert torch.equal(a(z, a.shared(y)), b(z, b.shared(y))), mode


@pytest.mark.parametrize("n_classes", sorted(DIFFAUGMENT_ENTRIES))
@pytest.mark.parametrize("serialization", ["legacy", "zip"])
def test_diffaugment_cifar_generator_file_converts_exactly(n_classes, serialization, tmp_path, monkeypatch):
    from ganzoo.hub import register_converted
    from ganzoo.conversion import convert
    from ganzoo.registry import get_entry

    config, G, G_ema, _ = _diffaugment_networks(n_classes)
    name = DIFFAUGMENT_ENTRIES[n_classes]
    entry = get_entry(name)
    path = tmp_path / entry.artifacts[0].filename
    _save(G_ema.state_dict(), path, serialization)
    assert detect_format(path) == "biggan-pytorch"

    # Settings inferred from the tensors: the entry's, but for what the tensors cannot tell.
    gan = convert(path, tmp_path / "inferred")
    inferred = gan.G_ema.init_kwargs
    for key in ("G_ch", "dim_z", "bottom_width", "resolution", "G_attn", "n_classes", "G_shared", "shared_dim", "hier",
                "G_param", "norm_style", "BN_eps", "G_activation"):  # fmt: skip
        assert inferred[key] == config[key], key
    assert inferred["SN_eps"] == 1e-6 and config["SN_eps"] == 1e-8  # defaulted: no output changes
    assert gan.D is None and gan.config["source"]["extra"]["layout"] == "a single generator state dict"
    _assert_same_generator(GAN.load(tmp_path / "inferred").G_ema, G_ema)

    # With the release's settings given (--config): recorded as upstream built the network.
    given = convert(path, tmp_path / "given", config={"generator": dict(config)})
    assert given.G_ema.init_kwargs["SN_eps"] == 1e-8 and given.G_ema.init_kwargs["G_init"] == "N02"
    _assert_same_generator(GAN.load(tmp_path / "given").G_ema, G_ema)

    # As `ganzoo convert FILE --as NAME` (or a pull) installs the real file: checked against the
    # entry, built with the entry's settings (so SN_eps is the release's 1e-8), with its class names.
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    _, _, full, _ = _diffaugment_networks(n_classes, G_ch=entry.generator["G_ch"])
    real = tmp_path / "real" / entry.artifacts[0].filename
    real.parent.mkdir()
    _save(full.state_dict(), real, serialization)
    installed = GAN.load(register_converted(real, name, artifact_url=entry.artifacts[0].url))
    assert installed.metadata.num_classes == n_classes and installed.config["class_names"] == list(entry.class_names)
    assert installed.config["license"] == "bsd-2-clause" and installed.G_ema.init_kwargs["SN_eps"] == 1e-8
    _assert_same_generator(installed.G_ema, full)


@pytest.mark.parametrize("serialization", ["legacy", "zip"])
def test_diffaugment_cifar_training_folder_reads_with_its_discriminator(serialization, tmp_path):
    """What DiffAugment-biggan-cifar's train.py writes (utils.save_weights: BigGAN-PyTorch's
    folder; its config holds the activation modules, so the settings are inferred)."""
    config, G, G_ema, D = _diffaugment_networks(10)
    folder = tmp_path / "DiffAugment-biggan-cifar10"
    folder.mkdir()
    for name, net in (("G.pth", G), ("G_ema.pth", G_ema), ("D.pth", D)):
        _save(net.state_dict(), folder / name, serialization)
    release_config = {**config, "G_activation": torch.nn.ReLU(inplace=False), "D_activation": torch.nn.ReLU(inplace=False),
                      "G_nl": "relu", "D_nl": "relu", "DiffAugment": "translation,cutout", "CR": 0.0}  # fmt: skip
    _save({"itr": 4000, "epoch": 3, "save_num": 0, "save_best_num": 0, "best_IS": 9.0, "best_FID": 8.7,
           "config": release_config}, folder / "state_dict.pth", serialization)  # fmt: skip
    gan = foreign_to_gan(folder)
    assert any("state_dict.pth not read" in n for n in gan.config["source"]["notes"])
    _assert_same_generator(gan.G_ema, G_ema)
    _assert_same_generator(gan.G, G)
    assert gan.D.init_kwargs["D_ch"] == config["G_ch"] and gan.D.init_kwargs["resolution"] == 32
    for name, tensor in D.state_dict().items():
        assert torch.equal(gan.D.state_dict()[name], tensor), name
    images = torch.rand([3, 3, 32, 32]) * 2 - 1
    y = torch.tensor([0, 5, 9])
    with torch.no_grad():
        assert torch.equal(gan.D.eval()(images, y), D.eval()(images, y))


def test_diffaugment_registry_entries_state_the_release_generators():
    from ganzoo.registry import load_registry

    registry = load_registry()
    entries = [registry.get(n) for n in registry.names() if registry.get(n).family == "diffaugment-biggan"]
    assert len(entries) == 22
    for entry in entries:
        assert entry.architecture == "biggan" and entry.resolution == 32 and entry.includes == ("G_ema",)
        assert entry.c_dim in (10, 100) and len(entry.class_names) == entry.c_dim
        (artifact,) = entry.artifacts
        assert artifact.format == "biggan-pytorch" and not artifact.manual_download
        assert artifact.url == "https://data-efficient-gans.mit.edu/models/" + artifact.filename
        assert artifact.filename.lower() == entry.aliases[0] + ".pth"
        with torch.device("meta"):
            G = Generator(**dict(entry.generator))
        # The release's CIFAR generator: G_ch 64 (4 * 64 channels per block), per-BN class embeddings.
        assert G.dim_z == 128 and tuple(G.linear.weight.shape) == (16 * 256, 128)
        assert tuple(G.blocks[0][0].bn1.gain.weight.shape) == (entry.c_dim, 256)
