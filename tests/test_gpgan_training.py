"""GP-GAN in the shared training loop: GAN_stability's objective and settings, FreezeD on its
D, AdaFM on its general blocks, the parameter average."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganzoo.architectures import get_architecture
from ganzoo.architectures.gpgan import Discriminator, Generator
from ganzoo.checkpoint import GAN
from ganzoo.train.loop import Trainer, TrainingOptions

pytestmark = pytest.mark.usefixtures("one_thread")
KW = dict(z_dim=8, nlabels=3, size=32, embed_size=8, nfilter=4, arch="resnet2")


def pair(seed: int = 0):
    torch.manual_seed(seed)
    return Generator(**KW), Discriminator(**KW)


def test_defaults_are_gan_stabilitys():
    s = get_architecture("gpgan").training_defaults(Generator(**KW).init_kwargs, 64)
    assert s["lr_G"] == s["lr_D"] == 1e-4 and tuple(s["betas"]) == (0.0, 0.99)
    assert s["r1_gamma"] == 20.0  # reg_param 10 in GAN_stability's reg_param * ||grad||^2
    assert s["ema_beta"] == 0.999 and s["ema_rampup"] is None
    assert s["D_reg_interval"] is None and s["G_reg_interval"] is None and s["pl_weight"] == 0


def test_d_phase_gives_gan_stabilitys_gradient():
    """Dmain = BCE(D(x), 1) + 10 * ||grad_x D(x)||^2 (mean over images) + BCE(D(G(z)), 0), as
    GAN_stability's discriminator step computes it, written out here by hand."""
    G, D = pair(1)
    arch = get_architecture("gpgan")
    opts = TrainingOptions.from_dict({**arch.training_defaults(G.init_kwargs, 4)})
    loss = arch.objective(G, D, None, opts, None)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([4, 3, 32, 32], generator=gen)
    y = torch.tensor([0, 1, 2, 1])
    z = torch.randn([4, 8], generator=gen)
    c = F.one_hot(y, 3).float()
    D.requires_grad_(True)
    loss.accumulate("Dmain", x, c, z, c, 1.0, torch.Generator())
    ours = {k: p.grad.clone() for k, p in D.named_parameters()}

    D.zero_grad(set_to_none=True)
    x_real = x.clone().requires_grad_(True)
    d_real = D(x_real, y)
    bce = F.binary_cross_entropy_with_logits
    (grad,) = torch.autograd.grad(d_real.sum(), x_real, create_graph=True)
    reg = 10.0 * grad.pow(2).reshape(4, -1).sum(1).mean()
    with torch.no_grad():
        fake = G(z, y)
    total = bce(d_real, torch.ones(4)) + reg + bce(D(fake, y), torch.zeros(4))
    total.backward()
    for k, p in D.named_parameters():
        torch.testing.assert_close(ours[k], p.grad, atol=1e-6, rtol=1e-5, msg=k)


def test_g_phase_is_the_non_saturating_bce():
    G, D = pair(2)
    arch = get_architecture("gpgan")
    loss = arch.objective(G, D, None, TrainingOptions.from_dict(arch.training_defaults(G.init_kwargs, 4)), None)
    z = torch.randn([4, 8], generator=torch.Generator().manual_seed(3))
    y = torch.tensor([2, 0, 1, 1])
    G.requires_grad_(True)
    loss.accumulate("Gmain", None, None, z, F.one_hot(y, 3).float(), 1.0, torch.Generator())
    ours = {k: p.grad.clone() for k, p in G.named_parameters()}
    G.zero_grad(set_to_none=True)
    F.binary_cross_entropy_with_logits(D(G(z, y), y), torch.ones(4)).backward()
    for k, p in G.named_parameters():
        torch.testing.assert_close(ours[k], p.grad, atol=1e-6, rtol=1e-5, msg=k)


def _data():
    images = (torch.rand([8, 3, 32, 32], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    return images


def test_a_minibatch_moves_g_ema_by_the_fixed_average(tmp_path):
    from ganzoo.train.dataset import TrainingImages

    G, D = pair(4)
    G_ema = Generator(**KW)
    G_ema.load_state_dict(G.state_dict())
    arch = get_architecture("gpgan")
    opts = TrainingOptions(batch=4, aug="none", **arch.training_defaults(G.init_kwargs, 4))
    labels = F.one_hot(torch.arange(8) % 3, 3).float()
    trainer = Trainer(G, G_ema, D, TrainingImages(_data(), "<in-memory>", "0" * 64, labels=labels), opts)
    before = {k: v.clone() for k, v in G_ema.state_dict().items()}
    trainer.step()
    assert "r1_penalty" not in trainer.last_stats and "loss_D" in trainer.last_stats  # R1 inside Dmain
    for k, p in G.state_dict().items():
        torch.testing.assert_close(G_ema.state_dict()[k], before[k] * 0.999 + p * 0.001, atol=1e-7, rtol=1e-6)


def test_freezed_and_adafm_keep_what_they_freeze(tmp_path):
    from ganzoo.train.recipes import prepare

    G, D = pair(5)
    source = GAN(G, G, D, config={"architecture": "gpgan"})
    frozen = prepare(source, "freezed", freeze_d=6)
    buffers = dict(frozen.D.named_buffers())
    assert {"conv_img.weight", "resnet_0_0.conv_0.weight", "resnet_0_1.conv_1.weight"} <= set(buffers)
    assert "resnet_1_0.conv_0.weight" in dict(frozen.D.named_parameters())
    adafm = prepare(source, "adafm")  # the 3 highest-resolution G blocks: 8, 16, 32 at 32x32
    assert adafm.architecture == "gpgan-adafm" and adafm.settings["adafm_resolutions"] == [8, 16, 32]
    params = dict(adafm.G.named_parameters())
    assert "resnet_5_1.conv_0.adafm_gamma" in params and "resnet_5_1.conv_0.weight" not in params
    assert "resnet_2_0.conv_0.weight" in params  # the specific part trains
    z, y = torch.randn([2, 8]), torch.tensor([0, 2])
    torch.testing.assert_close(adafm.G(z, y), G(z, y), atol=0, rtol=0)  # identity modulation at the start


def test_a_resumed_gpgan_run_gives_the_bytes_of_an_uninterrupted_one(shared_fixtures, tmp_path):
    from ganzoo.conversion import convert
    from ganzoo.train.runner import finetune

    convert(shared_fixtures / "gpgan" / "resnet2-32" / "gpgan-resnet2-32-model.pt", tmp_path / "src")
    images = (torch.rand([8, 3, 32, 32], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    folder = tmp_path / "data"
    folder.mkdir()
    from PIL import Image
    import json

    for i, img in enumerate(images):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    (folder / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i % 3] for i in range(8)]}))
    settings = dict(recipe="adafm", batch=4, snap=0.008, progress=False)
    whole = finetune(tmp_path / "src", folder, tmp_path / "whole", kimg=0.016, **settings)
    half = finetune(tmp_path / "src", folder, tmp_path / "half", kimg=0.008, **settings)
    finetune(resume=half, data=folder, kimg=0.016, progress=False)
    for name in ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        assert (whole / name).read_bytes() == (half / name).read_bytes(), name


def _paper_source(seed: int = 6):
    G, D = pair(seed)
    return G, D, GAN(G, G, D, config={"architecture": "gpgan"})


def test_adafm_paper_variant_takes_rebuilds_and_freezes_what_zhaos_code_does():
    """--adafm-variant paper (Zhao et al.'s Flower_[h]our.py with resnet2_AdaFM.py): from the
    source only the general blocks, G's conv_img and D's convolutions; G's fc, embedding and
    lower blocks and D's fc rebuilt from the seed with one label; in the general part only
    gamma/beta train; D's first resolution (conv_img, resnet_0_*) frozen."""
    from ganzoo.train.recipes import prepare

    G, D, source = _paper_source()
    p = prepare(source, "adafm", adafm_variant="paper", seed=3)
    assert p.architecture == "gpgan-adafm"
    assert p.settings == {"general_g": 3, "general_d": 1, "adafm_resolutions": [8, 16, 32], "freeze_d": 6,
                          "adafm_variant": "paper"}  # fmt: skip
    assert p.G.nlabels == p.D.nlabels == 1 and p.G.init_kwargs["adafm_only"] is True
    src_g, src_d = G.state_dict(), D.state_dict()
    new_g, new_d = p.G.state_dict(), p.D.state_dict()
    general = ("resnet_3_", "resnet_4_", "resnet_5_", "conv_img.")
    for k, v in new_g.items():
        if k.endswith(".adafm_gamma"):
            assert torch.equal(v, torch.ones_like(v)), k
        elif k.endswith(".adafm_beta"):
            assert torch.equal(v, torch.zeros_like(v)), k
        elif k.startswith(general):
            assert torch.equal(v, src_g[k]), k  # transferred
        elif k != "embedding.weight":  # fc, resnet_0..2: fresh (the embedding changed shape)
            assert not torch.equal(v, src_g[k]), k
    for k, v in new_d.items():
        assert torch.equal(v, src_d[k]) if not k.startswith("fc.") else v.shape[0] == 1, k
    # Fresh parts are the seed's: the same seed gives the same tensors, another seed others.
    again = prepare(source, "adafm", adafm_variant="paper", seed=3)
    other = prepare(source, "adafm", adafm_variant="paper", seed=4)
    for net, same, diff in ((p.G, again.G, other.G), (p.D, again.D, other.D)):
        for k, v in net.state_dict().items():
            assert torch.equal(v, same.state_dict()[k]), k
        assert not torch.equal(net.state_dict()["fc.weight"], diff.state_dict()["fc.weight"])
    # G_ema starts as G (one source generator, as the authors' deepcopy).
    for k, v in p.G_ema.state_dict().items():
        assert torch.equal(v, new_g[k]), k
    # Trained (parameters) vs frozen (buffers).
    g_params, d_params = set(dict(p.G.named_parameters())), set(dict(p.D.named_parameters()))
    assert all(k.endswith((".adafm_gamma", ".adafm_beta")) for k in g_params if k.startswith(general))
    assert {"fc.weight", "fc.bias", "embedding.weight", "resnet_0_0.conv_0.weight", "resnet_2_0.conv_s.weight"} <= g_params
    g_buffers = set(dict(p.G.named_buffers()))
    assert {"conv_img.weight", "conv_img.bias", "resnet_3_0.conv_s.weight", "resnet_3_0.conv_0.bias",
            "resnet_5_1.conv_1.weight", "resnet_5_1.conv_1.bias"} <= g_buffers  # fmt: skip
    d_buffers = set(dict(p.D.named_buffers()))
    assert {"conv_img.weight", "resnet_0_0.conv_0.weight", "resnet_0_1.conv_s.weight"} <= d_buffers
    assert {"resnet_1_0.conv_0.weight", "fc.weight"} <= d_params


def test_adafm_paper_variant_trains_only_what_it_should():
    from ganzoo.train.dataset import TrainingImages
    from ganzoo.train.recipes import prepare

    _, _, source = _paper_source(7)
    p = prepare(source, "adafm", adafm_variant="paper", seed=0)
    arch = get_architecture(p.architecture)
    opts = TrainingOptions(batch=4, aug="none", **arch.training_defaults(p.G.init_kwargs, 4))
    trainer = Trainer(p.G, p.G_ema, p.D, TrainingImages(_data(), "<in-memory>", "0" * 64), opts)
    before = {role: {k: v.clone() for k, v in net.state_dict().items()} for role, net in (("G", p.G), ("D", p.D))}
    trainer.step()
    for role, net in (("G", p.G), ("D", p.D)):
        params = dict(net.named_parameters())
        for k, v in net.state_dict().items():
            assert torch.equal(v, before[role][k]) != (k in params), f"{role}.{k}"


def test_adafm_paper_variant_run_records_refuses_a_change_on_resume_and_exports_plain(shared_fixtures, tmp_path):
    import json

    from PIL import Image

    from ganzoo.errors import GanzooError
    from ganzoo.conversion import convert
    from ganzoo.train.runner import finetune

    convert(shared_fixtures / "gpgan" / "resnet2-32" / "gpgan-resnet2-32-model.pt", tmp_path / "src")
    folder = tmp_path / "data"
    folder.mkdir()
    for i, img in enumerate(_data()):  # unlabelled: the paper variant is unconditional
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    out = finetune(tmp_path / "src", folder, tmp_path / "run", recipe="adafm", adafm_variant="paper", batch=4,
                   kimg=0.008, snap=0.008, progress=False)  # fmt: skip
    info = json.loads((out / "run.json").read_text())
    assert info["lineage_step"]["settings"]["adafm_variant"] == "paper"
    with pytest.raises(GanzooError, match="--adafm-variant keep \\(the run's: paper\\)"):
        finetune(resume=out, adafm_variant="keep", kimg=0.016, progress=False)
    gan = GAN.load(out)
    assert gan.config["architecture"] == "gpgan-adafm" and gan.G_ema.init_kwargs["adafm_only"] is True
    plain, _ = gan.architecture.for_upload(gan)
    assert plain.config["architecture"] == "gpgan" and type(plain.G_ema) is Generator
    assert "adafm_only" not in plain.G_ema.init_kwargs and plain.G_ema.nlabels == 1
    z, y = torch.randn([2, 8]), torch.zeros(2, dtype=torch.long)
    torch.testing.assert_close(plain.G_ema(z, y), gan.G_ema(z, y), atol=1e-6, rtol=1e-5)


def test_adafm_variant_is_refused_where_it_does_not_apply():
    from ganzoo.errors import GanzooError
    from ganzoo.train.checks import check_settings
    from ganzoo.train.recipes import prepare

    _, _, source = _paper_source()
    with pytest.raises(GanzooError, match="applies to --recipe adafm"):
        prepare(source, "freezed", adafm_variant="paper")
    with pytest.raises(GanzooError, match="--adafm-variant bogus: choose from keep, paper"):
        check_settings(adafm_variant="bogus")
    with pytest.raises(GanzooError, match="not defined for stylegan2"):
        get_architecture("stylegan2").adafm_paper(None, None, [], 0)
