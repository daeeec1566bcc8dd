"""BigGAN in the shared training loop: BigGAN-PyTorch's hinge loss and ImageNet settings, its
G EMA with a start, FreezeD on its spectrally normalized D, and finetuning the converted
``../shared/fixtures/biggan/biggan64`` with every recipe, resumed exactly."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import ganzoo
from ganzoo.architectures import get_architecture
from ganzoo.architectures.biggan import Discriminator, Generator
from ganzoo.architectures.biggan.objective import ortho_penalty
from ganzoo.checkpoint import GAN
from ganzoo.errors import GanzooError
from ganzoo.train.dataset import TrainingImages
from ganzoo.train.loop import Trainer, TrainingOptions
from helpers import random_images, tiny_gan

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = "biggan/biggan64"
WEIGHTS = ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors",
           "training_state.safetensors")  # fmt: skip


@pytest.fixture(scope="module")
def kwargs(shared_fixtures):
    """The fixture's constructor settings (G_ch 4, D_ch 16, 64x64, 10 classes, hier, attention at 32)."""
    config = json.loads((shared_fixtures / FIXTURE / "biggan64-config.json").read_text())
    return config["generator_kwargs"], config["discriminator_kwargs"]


def pair(kwargs, seed: int = 0):
    torch.manual_seed(seed)
    G, D = Generator(**kwargs[0]), Discriminator(**kwargs[1])
    return G.train().requires_grad_(False), D.train().requires_grad_(False)


def options(batch: int = 4, **extra) -> TrainingOptions:
    arch = get_architecture("biggan")
    return TrainingOptions(batch=batch, aug="none", **{**arch.training_defaults({}, batch), **extra})


def test_defaults_are_the_releases():
    s = get_architecture("biggan").training_defaults({}, 256)
    # launch_BigGAN_bs256x8.sh: --G_lr 1e-4 --D_lr 4e-4 --G_B2/--D_B2 0.999 (B1 default 0), --ema_start 20000
    assert s["lr_G"] == 1e-4 and s["lr_D"] == 4e-4 and tuple(s["betas"]) == (0.0, 0.999)
    assert s["ema_beta"] == 0.9999 and s["ema_rampup"] is None and s["ema_start_kimg"] == 20000 * 256 / 1000
    assert s["adam_eps"] == 1e-6  # --adam_eps 1e-6
    assert s["r1_gamma"] == 0 and s["pl_weight"] == 0 and s["style_mixing_prob"] == 0
    assert s["G_reg_interval"] is None and s["D_reg_interval"] is None
    assert get_architecture("biggan").training_defaults({}, 256, "scratch")["ema_start_kimg"] == 20000 * 256 / 1000


@pytest.mark.parametrize("recipe", ["full", "freezed"])
def test_a_finetune_averages_from_its_first_minibatch(recipe):
    """Finetuning continues the source's average at once, as the release resuming its
    checkpoint does (its iteration counter is past --ema_start)."""
    assert get_architecture("biggan").training_defaults({}, 256, recipe)["ema_start_kimg"] == 0.0


def _grads(net):
    return {k: p.grad.clone() for k, p in net.named_parameters()}


def test_d_phase_is_the_hinge_loss(kwargs):
    """Dmain: mean(relu(1 - D(x, y))) + mean(relu(1 + D(G(z, G.shared(y')), y'))), fakes and reals
    in one D forward (the release's G_D), written out here on copies of the networks."""
    G, D = pair(kwargs, 1)
    G_hand, D_hand = copy.deepcopy(G), copy.deepcopy(D)
    arch = get_architecture("biggan")
    loss = arch.objective(G, D, None, options(), None)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand([4, 3, 64, 64], generator=gen) * 2 - 1
    y_real, y_fake = torch.tensor([0, 9, 3, 3]), torch.tensor([5, 1, 9, 0])
    z = torch.randn([4, G.dim_z], generator=gen)
    D.requires_grad_(True)
    stats = loss.accumulate("Dmain", x, F.one_hot(y_real, 10).float(), z, F.one_hot(y_fake, 10).float(), 1.0,
                            torch.Generator())  # fmt: skip
    ours = _grads(D)

    D_hand.requires_grad_(True)
    with torch.no_grad():
        fake = G_hand(z, G_hand.shared(y_fake))
    logits = D_hand(torch.cat([fake, x]), torch.cat([y_fake, y_real]))
    total = F.relu(1 - logits[4:]).mean() + F.relu(1 + logits[:4]).mean()
    total.backward()
    for k, p in D_hand.named_parameters():
        torch.testing.assert_close(ours[k], p.grad, atol=1e-6, rtol=1e-5, msg=k)
    torch.testing.assert_close(stats.real_logits, logits[4:, 0].detach())
    # One power iteration per D step, and G's train-mode forward moved its statistics, as upstream.
    for net, hand in ((D, D_hand), (G, G_hand)):
        for k, b in net.named_buffers():
            torch.testing.assert_close(b, dict(hand.named_buffers())[k], atol=0, rtol=0, msg=k)
    assert not torch.equal(G.blocks[0][0].bn1.stored_mean, pair(kwargs, 1)[0].blocks[0][0].bn1.stored_mean)


def test_g_phase_is_minus_d_and_ortho_is_the_releases_gradient(kwargs):
    G, D = pair(kwargs, 2)
    G_hand, D_hand = copy.deepcopy(G), copy.deepcopy(D)
    z = torch.randn([4, G.dim_z], generator=torch.Generator().manual_seed(3))
    y = torch.tensor([2, 0, 1, 7])
    arch = get_architecture("biggan")
    loss = arch.objective(G, D, None, options(), None)
    G.requires_grad_(True)
    loss.accumulate("Gmain", None, None, z, F.one_hot(y, 10).float(), 1.0, torch.Generator())
    ours = _grads(G)
    G_hand.requires_grad_(True)
    (-D_hand(G_hand(z, G_hand.shared(y)), y).mean()).backward()
    for k, p in G_hand.named_parameters():
        torch.testing.assert_close(ours[k], p.grad, atol=1e-6, rtol=1e-5, msg=k)

    # The penalty's gradient is what BigGAN-PyTorch's utils.ortho adds: strength * 2 (W W^T * (1 - I)) W
    # for each parameter with two or more axes, the shared embedding excepted.
    G.zero_grad(set_to_none=True)
    ortho_penalty(G, 1e-4).backward()
    for k, p in G.named_parameters():
        if p.ndim < 2 or k.startswith("shared."):
            assert p.grad is None, k
            continue
        w = p.detach().reshape(p.shape[0], -1)
        expected = 1e-4 * 2 * ((w @ w.t()) * (1 - torch.eye(w.shape[0]))) @ w
        torch.testing.assert_close(p.grad.reshape(p.shape[0], -1), expected, atol=1e-9, rtol=1e-5, msg=k)


def test_r1_is_refused(kwargs):
    G, D = pair(kwargs)
    with pytest.raises(GanzooError, match="no R1"):
        get_architecture("biggan").objective(G, D, None, options(r1_gamma=1.0), None)


def _images(n: int = 8) -> TrainingImages:
    data = (torch.rand([n, 3, 64, 64], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    labels = F.one_hot(torch.arange(n) % 10, 10).float()
    return TrainingImages(data, "<in-memory>", "0" * 64, labels=labels)


def test_g_ema_copies_g_before_the_start_then_moves_by_the_fixed_decay(kwargs):
    G, D = pair(kwargs, 4)
    G_ema = copy.deepcopy(G).eval()
    trainer = Trainer(G, G_ema, D, _images(), options(ema_start_kimg=0.004))  # averages from the 2nd minibatch
    trainer.step()
    assert "r1_penalty" not in trainer.last_stats and "pl_penalty" not in trainer.last_stats
    for k, v in G.state_dict().items():
        assert torch.equal(G_ema.state_dict()[k], v), k  # before the start: a copy of G
    before = {k: v.clone() for k, v in G_ema.state_dict().items()}
    trainer.step()
    params = dict(G.named_parameters())
    for k, v in G_ema.state_dict().items():
        if k in params:
            torch.testing.assert_close(v, before[k] * 0.9999 + params[k] * 0.0001, atol=1e-7, rtol=1e-6, msg=k)
        else:  # batch-norm statistics and spectral-norm vectors: G's (the loop's convention)
            assert torch.equal(v, G.state_dict()[k]), k
    moved = [k for k in params if not torch.equal(G_ema.state_dict()[k], before[k])]
    assert moved


def test_freezed_keeps_exactly_the_named_layers(kwargs):
    from ganzoo.train.recipes import default_freeze_d, prepare

    G, D = pair(kwargs, 5)
    source = GAN(G.eval(), copy.deepcopy(G), D.eval(), config={"architecture": "biggan"})
    arch = get_architecture("biggan")
    # 64x64 D: blocks read 64, 32, 16, 8, 4; the attention (D_attn 32) follows the first block.
    assert arch.d_blocks(D) == [(64, 4), (32, 3), (16, 3), (8, 3), (4, 3)]
    assert arch.g_blocks(G) == [8, 16, 32, 64]
    assert default_freeze_d(arch, D) == 10
    prepared = prepare(source, "freezed", freeze_d=5)
    frozen_D = prepared.D
    assert frozen_D.init_kwargs["freeze_layers"] == 5 and "freeze_layers" not in prepare(source, "full").D.init_kwargs
    frozen = {"blocks.0.0.conv1", "blocks.0.0.conv2", "blocks.0.0.conv_sc", "blocks.0.1", "blocks.1.0.conv1"}
    buffers = dict(frozen_D.named_buffers())
    assert {f"{m}.weight" for m in frozen if m != "blocks.0.1"} | {"blocks.0.1.gamma", "blocks.0.1.theta.weight"} <= set(buffers)
    assert "blocks.1.0.conv2.weight" in dict(frozen_D.named_parameters())
    assert set(frozen_D.state_dict()) == set(D.state_dict())  # the release's names, unchanged

    before = {k: v.clone() for k, v in frozen_D.state_dict().items()}
    trainer = Trainer(prepared.G, prepared.G_ema, frozen_D, _images(), options())
    trainer.step()
    after = frozen_D.state_dict()
    for k, v in after.items():
        in_frozen = any(k.startswith(m + ".") for m in frozen)
        if in_frozen:  # weights, biases, gamma and the spectral-norm u0/sv0: not moved at all
            assert torch.equal(v, before[k]), k
        elif k.endswith((".weight", ".u0")):  # (sv0 of an orthogonal init may stay exactly 1)
            assert not torch.equal(v, before[k]), k  # trained, and its power iteration stored


def _labeled_data(folder, n: int = 8):
    random_images(folder, n, size=64)
    (folder / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i % 10] for i in range(n)]}))
    return folder


def _same_files(a, b) -> bool:
    for name in WEIGHTS:
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        if ta.keys() != tb.keys() or not all(torch.equal(ta[k], tb[k]) for k in ta):
            return False
    return True


@pytest.mark.parametrize("recipe", ["full", "freezed", "scratch"])
def test_finetune_from_the_release_fixture_resumes_exactly(recipe, shared_fixtures, tmp_path):
    from ganzoo.conversion import convert
    from ganzoo.train.runner import finetune

    convert(shared_fixtures / FIXTURE, tmp_path / "src")
    data = _labeled_data(tmp_path / "data")
    settings = dict(recipe=recipe, batch=4, snap=0.008, progress=False, ema_start_kimg=0.004)
    full = finetune(tmp_path / "src", data, tmp_path / "full", kimg=0.016, **settings)
    half = finetune(tmp_path / "src", data, tmp_path / "half", kimg=0.008, **settings)
    finetune(resume=half, data=data, kimg=0.016, progress=False)
    assert _same_files(full, half)
    trained = ganzoo.load(full)
    assert trained.config["architecture"] == "biggan"
    source = ganzoo.load(tmp_path / "src")
    changed = [k for k, v in trained.G.state_dict().items() if not torch.equal(v, source.G.state_dict()[k])]
    assert changed
    if recipe == "freezed":
        frozen = [k for k, _ in trained.D.named_buffers() if k.endswith(".weight")]
        assert "blocks.0.0.conv1.weight" in frozen
        for k in ("blocks.0.0.conv1.weight", "blocks.0.0.conv1.u0", "blocks.0.0.conv1.sv0"):
            assert torch.equal(trained.D.state_dict()[k], source.D.state_dict()[k]), k


def test_g_ortho_reaches_the_objective_and_adds_the_penalty_to_g_phase(kwargs):
    """TrainingOptions.G_ortho (``--g-ortho``) reaches the objective the loop builds, and G's
    phase adds the orthogonal penalty's gradient to exactly the penalized parameters."""
    G, D = pair(kwargs, 6)
    assert Trainer(G, copy.deepcopy(G).eval(), D, _images(4), options(G_ortho=1e-2)).loss.G_ortho == 1e-2
    assert Trainer(G, copy.deepcopy(G).eval(), D, _images(4), options()).loss.G_ortho == 0
    z = torch.randn([4, G.dim_z], generator=torch.Generator().manual_seed(7))
    c = F.one_hot(torch.tensor([2, 0, 1, 7]), 10).float()
    grads = {}
    for strength in (0.0, 1e-2):
        G, D = pair(kwargs, 6)
        G.requires_grad_(True)
        loss = get_architecture("biggan").objective(G, D, None, options(G_ortho=strength), None)
        loss.accumulate("Gmain", None, None, z, c, 1.0, torch.Generator())
        grads[strength] = _grads(G)
    G, _ = pair(kwargs, 6)
    G.requires_grad_(True)
    ortho_penalty(G, 1e-2).backward()
    for k, p in G.named_parameters():
        if p.grad is None:  # not penalized (one axis, or the shared embedding): the same gradient
            assert torch.equal(grads[1e-2][k], grads[0.0][k]), k
        else:
            torch.testing.assert_close(grads[1e-2][k], grads[0.0][k] + p.grad, atol=1e-7, rtol=1e-5, msg=k)
    moved = {k for k in grads[0.0] if not torch.equal(grads[1e-2][k], grads[0.0][k])}
    assert {"linear.weight", "blocks.0.0.conv1.weight", "blocks.0.0.bn1.gain.weight"} <= moved  # (rows not orthogonal)


def test_g_ortho_from_the_cli_is_recorded_and_refused_for_other_families(shared_fixtures, tmp_path, capsys):
    from ganzoo.cli import main
    from ganzoo.conversion import convert

    convert(shared_fixtures / FIXTURE, tmp_path / "src")
    data = _labeled_data(tmp_path / "data", 4)
    short = ["--kimg", "0.004", "--batch", "4", "--snap", "0.004", "--aug", "none"]
    assert main(["finetune", str(tmp_path / "src"), "--data", str(data), "--out", str(tmp_path / "run"), *short,
                 "--g-ortho", "1e-4"]) == 0, capsys.readouterr().err  # fmt: skip
    assert json.loads((tmp_path / "run" / "run.json").read_text())["options"]["G_ortho"] == 1e-4
    capsys.readouterr()
    # A resume keeps it: another value is refused in one line.
    assert main(["finetune", "--resume", str(tmp_path / "run"), "--data", str(data), "--g-ortho", "1e-3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--g-ortho 0.001 (the run's: 0.0001)" in err[0], err
    # Negative: refused before anything is loaded.
    assert main(["finetune", str(tmp_path / "src"), "--data", str(data), "--out", str(tmp_path / "neg"), *short,
                 "--g-ortho", "-1"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --g-ortho -1:"), err
    # A family whose objective has no orthogonal regularization: one line, nothing written.
    tiny_gan(seed=1).save(tmp_path / "sg2")
    random_images(tmp_path / "imgs", 4, seed=2)
    assert main(["finetune", str(tmp_path / "sg2"), "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "o2"),
                 *short, "--g-ortho", "1e-4"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --g-ortho 0.0001: stylegan2 networks do not train with it (it applies to biggan)"], err
    assert not (tmp_path / "o2").exists()
    with pytest.raises(GanzooError, match="stylegan2 networks do not train with it"):
        ganzoo.finetune(tmp_path / "sg2", tmp_path / "imgs", tmp_path / "o3", kimg=0.004, batch=4, progress=False,
                        G_ortho=1e-4)  # fmt: skip
