"""StyleGAN3's objective and training settings (the plug-in's training hooks): what the StyleGAN3
code configures for T and R, the blur of D's inputs that fades out, and the magnitude EMAs the
generator pass of D's phase updates."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganzoo.architectures import get_architecture
from ganzoo.architectures.stylegan2.networks import Discriminator
from ganzoo.architectures.stylegan3 import Generator, config_kwargs
from ganzoo.train.loop import TrainingOptions

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = dict(channel_base=256, channel_max=16)


def tiny(config: str) -> Generator:
    kwargs = {**config_kwargs(config), **SMALL}
    torch.manual_seed(0)
    return Generator(8, 0, 8, 16, 3, mapping_kwargs={"num_layers": 2}, **kwargs)


def objective(G, **options):
    arch = get_architecture("stylegan3")
    settings = {**arch.training_defaults(G.init_kwargs, 8), "r1_gamma": 1.0, **options}
    D = Discriminator(0, 16, 3, channel_base=256, channel_max=16)
    return arch.objective(G, D, None, TrainingOptions.from_dict(settings), None)


def test_configs_t_and_r_train_with_the_stylegan3_settings():
    arch = get_architecture("stylegan3")
    for config in "TR":
        settings = arch.training_defaults(tiny(config).init_kwargs, 32)
        assert settings["lr_G"] == 0.0025 and settings["lr_D"] == 0.002
        assert settings["pl_weight"] == 0 and settings["style_mixing_prob"] == 0 and settings["G_reg_interval"] is None
    assert "blur_sigma" not in arch.training_defaults(tiny("T").init_kwargs, 32)
    r = arch.training_defaults(tiny("R").init_kwargs, 32)
    assert r["blur_sigma"] == 10 and r["blur_fade_kimg"] == 200  # batch 32: 200 kimg
    assert arch.training_defaults(tiny("R").init_kwargs, 64)["blur_fade_kimg"] == 400


def test_the_blur_of_d_inputs_is_the_normalized_exp2_kernel_and_fades_out_linearly():
    loss = objective(tiny("R"))
    img = torch.randn([2, 3, 16, 16], generator=torch.Generator().manual_seed(1))
    sigma = 10.0
    reach = math.floor(3 * sigma)
    taps = torch.arange(-reach, reach + 1, dtype=torch.float64).div(sigma).square().neg().exp2()
    taps /= taps.sum()
    # The same blur as two 1-D convolutions with zero padding, in float64.
    x = img.double().reshape(6, 1, 16, 16)
    x = F.conv2d(F.pad(x, [reach, reach, 0, 0]), taps.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, [0, 0, reach, reach]), taps.view(1, 1, -1, 1)).reshape(2, 3, 16, 16)
    loss.cur_nimg = 0
    torch.testing.assert_close(loss.d_input(img), x.float(), atol=1e-6, rtol=0)
    loss.cur_nimg = int(loss.blur_fade_kimg * 1000 / 2)  # half way: sigma 5
    assert loss.current_blur() == pytest.approx(5.0)
    loss.cur_nimg = int(loss.blur_fade_kimg * 1000)
    assert loss.current_blur() == 0 and loss.d_input(img) is img
    assert objective(tiny("T")).d_input(img) is img  # config T: no blur


def test_the_magnitude_emas_move_in_ds_phase_only():
    G = tiny("T").train()
    loss = objective(G)
    emas = lambda: torch.stack([b.clone() for n, b in G.named_buffers() if n.endswith("magnitude_ema")])  # noqa: E731
    start = emas()
    real = torch.randn([4, 3, 16, 16])
    z, c = torch.randn([4, 8]), torch.zeros([4, 0])
    gen = torch.Generator().manual_seed(0)
    G.requires_grad_(True)
    loss.accumulate("Gmain", None, None, z, c, 1.0, gen)
    assert torch.equal(emas(), start)
    loss.accumulate("Dmain", real, torch.zeros([4, 0]), z, c, 1.0, gen)
    assert not torch.equal(emas(), start)


def test_a_finetune_of_config_r_blurs_d_and_records_the_settings(tmp_path):
    from ganzoo.checkpoint import GAN
    from ganzoo.train.runner import finetune

    G = tiny("R")
    D = Discriminator(0, 16, 3, channel_base=256, channel_max=16)
    GAN(G, G, D, config={"architecture": "stylegan3"}).save(tmp_path / "src")
    data = (torch.rand([8, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    out = finetune(tmp_path / "src", data, tmp_path / "run", kimg=0.008, batch=4, snap=0.008, progress=False)
    import json

    run = json.loads((out / "run.json").read_text())
    assert run["options"]["blur_sigma"] == 10 and run["options"]["blur_fade_kimg"] == 4 * 200 / 32
    assert run["options"]["G_reg_interval"] is None and run["options"]["lr_D"] == 0.002
