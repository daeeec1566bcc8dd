"""``ganzoo pretrain``: a StyleGAN2 trained from random init, with what the data was in its lineage."""

from __future__ import annotations

import json

import pytest
import torch

from ganzoo.checkpoint import GAN
from ganzoo.cli import main
from ganzoo.train.options import FinetuneOptions
from ganzoo.train.pretrain import build_gan, pretrain
from helpers import random_images

TINY = ["--z-dim", "8", "--mapping-layers", "1", "--channel-base", "256", "--channel-max", "16"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models, shared cores


def test_pretrain_cli_trains_from_random_init_and_records_the_data(tmp_path, capsys):
    data = tmp_path / "imgs"
    random_images(data, 8)
    out = tmp_path / "run"
    args = ["pretrain", "--data", str(data), "--resolution", "16", "--kimg", "0.016", "--batch", "4", "--snap", "0.008",
            "--out", str(out), *TINY]  # fmt: skip
    assert main(args) == 0
    gan = GAN.load(out)
    assert gan.G_ema.img_resolution == 16 and gan.G_ema.z_dim == 8
    assert gan.G_ema.init_kwargs["synthesis_kwargs"] == {"channel_base": 256, "channel_max": 16}
    config = json.loads((out / "config.json").read_text())
    step = config["lineage"][-1]
    assert step["recipe"] == "scratch" and step["parent"] == "random init (ganzoo pretrain)"
    assert any(str(data) in note for note in step["notes"])
    assert step["aug"] == "none"
    assert config["license"] == "apache-2.0" and config["source"]["made_by"] == "ganzoo pretrain"
    assert config["training"]["kimg"] == pytest.approx(0.016)
    # Training changed the weights away from the random init of the same seed.
    init = build_gan(16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=256, channel_max=16)
    assert not torch.equal(gan.D.b16.conv0.weight, init.D.b16.conv0.weight)

    # Resume continues the run to a longer total.
    assert main(["pretrain", "--resume", str(out), "--kimg", "0.024"]) == 0
    assert json.loads((out / "config.json").read_text())["training"]["kimg"] == pytest.approx(0.024)


def test_pretrain_lineage_names_synthetic_data():
    from ganzoo.train.pretrain import describe_data

    assert describe_data("synth:primitives-ps").startswith("trained on synthetic primitives-ps, no real images")
    from ganzoo.starter import domain_stream

    assert describe_data(domain_stream("discs")).startswith("trained on the synthetic toy domain discs, no real images")


def test_pretrain_bad_settings_are_one_line_errors(tmp_path, capsys):
    assert main(["pretrain", "--data", str(tmp_path), "--resolution", "24", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "power of two" in err
    assert not (tmp_path / "o").exists()
    assert main(["pretrain", "--resolution", "16"]) == 2  # a usage error: --data and --out missing
    assert "--data" in capsys.readouterr().err


def test_pretrain_takes_the_options_object(tmp_path):
    """pretrain(options=FinetuneOptions(...)) trains what its keyword form trains; the recipe is
    pretrain's own (scratch)."""
    from safetensors.torch import load_file

    images = (torch.rand([8, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    arch = dict(z_dim=8, w_dim=8, mapping_layers=1, channel_base=256, channel_max=16)
    by_keywords = pretrain(images, tmp_path / "keywords", 16, kimg=0.008, batch=4, snap=0.004, progress=False, **arch)
    opts = FinetuneOptions(kimg=0.008, batch=4, snap=0.004, progress=False)
    by_options = pretrain(images, tmp_path / "options", 16, options=opts, **arch)
    for name in ("generator.safetensors", "generator_raw.safetensors", "discriminator.safetensors"):
        a, b = load_file(str(by_keywords / name)), load_file(str(by_options / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert (by_options / "config.json").read_text() == (by_keywords / "config.json").read_text()
    with pytest.raises(TypeError, match=r"pretrain\(\) sets recipe itself"):
        pretrain(images, tmp_path / "x", 16, options=FinetuneOptions(recipe="full"), **arch)
    with pytest.raises(TypeError, match=r"pretrain\(\) got unexpected keyword argument\(s\) bogus"):
        pretrain(images, tmp_path / "x", 16, bogus=1, **arch)
    assert not (tmp_path / "x").exists()
