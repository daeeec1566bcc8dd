"""Every registered architecture through the generic paths, from its upstream fixture: convert
(restricted unpickler) -> checkpoint directory -> load -> sample -> rank (pixels) -> export ->
the exported state dicts load strictly into freshly built networks of that architecture ->
model card. Training and merging run for the architectures that support them elsewhere
(tests/test_train.py, tests/test_merge.py); for the others they are one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.architectures import architecture_names, get_architecture
from ganzoo.cli import main
from helpers import random_images

pytestmark = pytest.mark.usefixtures("one_thread")

# architecture -> its upstream fixture (a snapshot as the upstream training loop writes it)
FIXTURES = {
    "stylegan2": "stylegan2-ada/tiny32/tiny32-snapshot.pkl",
    "stylegan3": "stylegan3/sg3t32/sg3t32-snapshot.pkl",
}


def test_every_builtin_architecture_with_its_own_networks_has_a_fixture_here():
    # stylegan2-adafm is made by the adafm recipe (tests/test_train.py), not read from upstream files.
    assert set(architecture_names()) - {"stylegan2-adafm"} == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_architecture_through_the_generic_paths(name, shared_fixtures, tmp_path, capsys):
    architecture = get_architecture(name)
    assert main(["convert", str(shared_fixtures / FIXTURES[name]), str(tmp_path / "ckpt")]) == 0
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["architecture"] == name and config["format_version"] == 2
    gan = ganzoo.load(tmp_path / "ckpt")
    assert gan.architecture is architecture and gan.metadata.to_dict() == config["metadata"]
    meta = gan.metadata

    images = gan.sample(seeds=[0, 1, 2, 3])
    assert images.shape == (4, meta.resolution, meta.resolution, meta.channels) and images.std() > 1
    assert main(["generate", str(tmp_path / "ckpt"), "--seeds", "0-3", "--out", str(tmp_path / "g.png")]) == 0

    random_images(tmp_path / "data", 12, size=meta.resolution)
    capsys.readouterr()
    assert main(["rank", "--target", str(tmp_path / "data"), "--candidates", str(tmp_path / "ckpt"),
                 "--feature-extractor", "pixels", "--num-gen", "16", "--json", str(tmp_path / "rank.json")]) == 0  # fmt: skip
    ranked = json.loads((tmp_path / "rank.json").read_text())
    assert ranked["candidates"][0]["fid"] is not None and ranked["recommended"] == str(tmp_path / "ckpt")

    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "out.pt")]) == 0
    payload = torch.load(tmp_path / "out.pt", weights_only=True)
    for role, net in gan.networks().items():
        fresh = architecture.network_class(role)(**payload["init_kwargs"][role])
        fresh.load_state_dict(payload[role], strict=True)  # what the upstream code does with it
        for key, value in net.state_dict().items():
            assert torch.equal(fresh.state_dict()[key], value), (role, key)

    from ganzoo.modelcard import render_card

    card = str(render_card(config, name="ckpt"))
    assert f"{meta.resolution}" in card and "ganzoo" in card
