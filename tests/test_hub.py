"""Tests for pull, push, mirrors and the upstream fallback (ganzoo.hub).

What runs against real servers: pull uses the real ``huggingface_hub`` client against a real
``olah`` Hub mirror (PyPI) started on a free loopback port in offline mode, its ``mirrors-path``
filled by ``ganzoo mirror``; upstream downloads go to a real HTTP server on loopback serving the
StyleGAN2-ADA fixture pickle. Push (the real Hub is unreachable from here) goes through the real
client to the Hub-compatible write server on loopback (``tests/hub_write_server.py``), which
stores real git repositories with Git LFS objects; the tests read back what git holds. The whole
round trip, push -> write server -> olah -> ``ganzoo pull``, is in ``tests/test_push_roundtrip.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import ganzoo
import ganzoo.registry
from ganzoo import hub, publish
from ganzoo.analysis import filter_report
from ganzoo.checkpoint import GAN
from ganzoo.cli import main
from ganzoo.errors import ChecksumMismatchError, DownloadError, UnknownModelError
from ganzoo.architectures.stylegan2.adafm import AdaFMGenerator
from ganzoo.architectures.stylegan2.networks import Generator
from helpers import tiny_gan
from hub_write_server import HubWriteServer
from olah_server import FileServer, OlahServer, free_port

ORG = "testorg"
FIXTURE_PKL = "stylegan2-ada/tiny32/tiny32-snapshot.pkl"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _registry_toml(olah_repo: str, upstream_url: str, upstream: Path) -> str:
    common = """
architecture = "stylegan2"
license = "cc-by-4.0"
c_dim = 0
includes = ["G_ema", "D"]
dataset = { name = "test data" }
paper = { title = "A test", authors = "ganzoo", year = 2024, url = "https://example.org/paper" }
"""
    return f"""
[[models]]
name = "tiny-hub"
aliases = ["tinyhub"]
title = "tiny GAN on the mirror"
resolution = 16
hub = {{ repo = "{olah_repo}", revision = "main" }}
{common}

[[models]]
name = "tiny-upstream"
title = "tiny32 fixture, only upstream"
resolution = 32
hub = {{ repo = "{ORG}/not-on-the-mirror", revision = "main" }}
{common}
[[models.artifacts]]
url = "{upstream_url}/tiny32-snapshot.pkl"
format = "stylegan2-ada-pkl"
filename = "tiny32-snapshot.pkl"
size = {upstream.stat().st_size}
sha256 = "{_sha256(upstream)}"

[[models]]
name = "tiny-manual"
title = "tiny32 fixture behind a share link"
resolution = 32
hub = {{ repo = "{ORG}/not-on-the-mirror-either", revision = "main" }}
{common}
[[models.artifacts]]
url = "https://drive.google.com/file/d/0/view"
format = "stylegan2-ada-pkl"
filename = "tiny32.pkl"
manual_download = true
instructions = "download it by hand, then: ganzoo convert FILE --as tiny-manual"
"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory, shared_fixtures):
    """One olah mirror (holding a tiny checkpoint written by `ganzoo mirror`) and one file server."""
    root = tmp_path_factory.mktemp("hub")
    checkpoint = root / "tiny-ckpt"
    tiny_gan(seed=3).save(checkpoint)
    olah = OlahServer(root / "olah")
    written = hub.mirror([str(checkpoint)], olah.mirrors, org=ORG)
    olah.start()
    upstream = shared_fixtures / FIXTURE_PKL
    files = FileServer({"tiny32-snapshot.pkl": upstream.read_bytes()}).start()
    registry_dir = root / "registry"
    registry_dir.mkdir()
    (registry_dir / "test-entries.toml").write_text(_registry_toml(f"{ORG}/tiny-ckpt", files.url, upstream))
    try:
        yield {"olah": olah, "files": files, "checkpoint": checkpoint, "repo": f"{ORG}/tiny-ckpt",
               "mirror_repo": written[0], "registry": registry_dir, "upstream": upstream}  # fmt: skip
    finally:
        olah.stop()
        files.stop()


@pytest.fixture
def env(servers, tmp_path, monkeypatch):
    """A fresh HF cache and ganzoo cache per test, the client pointed at the olah mirror."""
    for name in list(os.environ):
        if name.startswith("HF_") or name in ("GANZOO_CACHE", "GANZOO_REGISTRY_PATH"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", servers["olah"].url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "ganzoo"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("GANZOO_REGISTRY_PATH", str(servers["registry"]))
    return servers


def _same_bytes(a: Path, b: Path) -> bool:
    return Path(a).read_bytes() == Path(b).read_bytes()


# ------------------------------------------------------------------------------------------------
# Mirror layout


def test_mirror_writes_a_git_repo_in_the_olah_layout(servers):
    repo = servers["mirror_repo"]
    assert repo == servers["olah"].mirrors / "models" / ORG / "tiny-ckpt"
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=repo, capture_output=True, text=True, check=True)
    assert log.stdout.strip() == f"ganzoo mirror of {ORG}/tiny-ckpt"
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    assert sorted(tracked) == ["README.md", "config.json", "discriminator.safetensors", "generator.safetensors"]
    for name in ("config.json", "generator.safetensors", "discriminator.safetensors"):
        assert _same_bytes(repo / name, servers["checkpoint"] / name)


# ------------------------------------------------------------------------------------------------
# Pull from the real olah server with the real huggingface_hub client


def test_pull_by_repo_id_gives_identical_verified_files(env, tmp_path):
    result = hub.pull_checkpoint(env["repo"])
    assert result.origin == "hub" and result.repaired == ()
    assert str(result.path).startswith(str(tmp_path / "hf" / "hub" / f"models--{ORG}--tiny-ckpt" / "snapshots"))
    for name in ("config.json", "generator.safetensors", "discriminator.safetensors", "README.md"):
        assert _same_bytes(result.path / name, env["mirror_repo"] / name)
    gan = ganzoo.load(env["repo"])
    reference = GAN.load(env["checkpoint"])
    assert torch.equal(torch.from_numpy(gan.sample(seeds=[0, 1])), torch.from_numpy(reference.sample(seeds=[0, 1])))
    assert gan.D is not None


def test_second_pull_is_served_offline_from_the_cache(env, monkeypatch):
    first = hub.pull(env["repo"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert hub.pull(env["repo"]) == first
    assert ganzoo.load("tiny-hub").G_ema.img_resolution == 16  # registry name, offline


def test_offline_pull_through_the_cli_in_a_fresh_process(env, monkeypatch, tmp_path):
    hub.pull(env["repo"])
    process_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    run = subprocess.run([sys.executable, "-m", "ganzoo", "pull", "tinyhub", "--json", "-"], env=process_env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["origin"] == "hub" and report["registry"] == "tiny-hub"
    assert (Path(report["path"]) / "generator.safetensors").is_file()


def test_corrupted_cached_file_is_detected_and_repaired(env):
    path = hub.pull(env["repo"])
    blob = (path / "generator.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    result = hub.pull_checkpoint(env["repo"])
    assert result.repaired == ("generator.safetensors",)
    assert _same_bytes(result.path / "generator.safetensors", env["checkpoint"] / "generator.safetensors")


def test_corruption_found_offline_removes_the_file_and_an_online_pull_repairs_it(env, monkeypatch, capsys):
    path = hub.pull(env["repo"])
    (path / "discriminator.safetensors").resolve().write_bytes(b"garbage")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["pull", env["repo"]]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "discriminator.safetensors" in err and "removed" in err
    assert not (path / "discriminator.safetensors").exists()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert main(["pull", env["repo"]]) == 0
    assert _same_bytes(path / "discriminator.safetensors", env["checkpoint"] / "discriminator.safetensors")


def test_generator_only_pull_fetches_and_loads_only_the_generator(env):
    path = hub.pull(env["repo"], generator_only=True)
    assert (path / "generator.safetensors").is_file()
    assert not (path / "discriminator.safetensors").exists()
    gan = GAN.load(path, verify=False, missing_ok=True)  # as ganzoo.load loads a pull
    assert gan.D is None and gan.G_ema.img_resolution == 16


def test_unknown_repo_is_one_clear_error(env, capsys):
    with pytest.raises(UnknownModelError, match="no such model repository"):
        hub.pull(f"{ORG}/does-not-exist")
    assert main(["pull", f"{ORG}/does-not-exist"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and f"{ORG}/does-not-exist" in err


def test_unknown_name_lists_close_matches(env):
    with pytest.raises(UnknownModelError, match="did you mean.*tiny-hub"):
        ganzoo.load("tiny-hubb")


def test_unreachable_endpoint_names_the_url_and_the_offline_switch(env, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    with pytest.raises(DownloadError, match="unreachable") as info:
        hub.pull(f"{ORG}/tiny-ckpt")
    assert url in str(info.value) and "HF_HUB_OFFLINE=1" in str(info.value)


# ------------------------------------------------------------------------------------------------
# Upstream fallback (real HTTP server on loopback serving the fixture pickle)


def test_missing_hub_repo_falls_back_to_upstream_download_and_safe_conversion(env):
    result = hub.pull_checkpoint("tiny-upstream")
    assert result.origin == "upstream"
    config = json.loads((result.path / "config.json").read_text())
    assert config["source"]["registry"] == "tiny-upstream"
    assert config["source"]["sha256"] == _sha256(env["upstream"])
    assert config["source"]["url"].endswith("/tiny32-snapshot.pkl")
    gan = ganzoo.load("tiny-upstream")
    reference = ganzoo.load(env["upstream"])  # the same pickle, converted in memory
    assert torch.equal(torch.from_numpy(gan.sample(seeds=[5])), torch.from_numpy(reference.sample(seeds=[5])))
    # Cached now: the next pull neither contacts the Hub nor downloads again.
    requests_before = len(env["files"].requests)
    assert hub.pull_checkpoint("tiny-upstream").origin == "cache"
    assert len(env["files"].requests) == requests_before


def test_download_resumes_from_a_partial_file(env, tmp_path):
    data = env["upstream"].read_bytes()
    dest = tmp_path / "dl" / "tiny32-snapshot.pkl"
    dest.parent.mkdir()
    (dest.parent / "tiny32-snapshot.pkl.part").write_bytes(data[: len(data) // 3])
    hub.download_url(f"{env['files'].url}/tiny32-snapshot.pkl", dest, size=len(data), sha256=_sha256(env["upstream"]),
                     progress=False)  # fmt: skip
    assert dest.read_bytes() == data
    assert env["files"].requests[-1][1] == f"bytes={len(data) // 3}-"


def test_download_with_wrong_sha256_leaves_nothing_behind(env, tmp_path):
    dest = tmp_path / "dl" / "x.pkl"
    with pytest.raises(ChecksumMismatchError, match="removed"):
        hub.download_url(f"{env['files'].url}/tiny32-snapshot.pkl", dest, sha256="0" * 64, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_download_http_error_and_unreachable_host(env, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        hub.download_url(f"{env['files'].url}/missing.pkl", tmp_path / "m.pkl", progress=False)
    with pytest.raises(DownloadError, match="unreachable"):
        hub.download_url(f"http://127.0.0.1:{free_port()}/x.pkl", tmp_path / "u.pkl", progress=False)


def test_manual_download_entry_says_how_and_convert_as_registers_the_file(env, capsys):
    with pytest.raises(DownloadError, match="manual download.*ganzoo convert FILE --as tiny-manual"):
        hub.pull("tiny-manual")
    assert main(["convert", str(env["upstream"]), "--as", "tiny-manual"]) == 0
    gan = ganzoo.load("tiny-manual")
    assert gan.G_ema.img_resolution == 32 and gan.config["source"]["registry"] == "tiny-manual"
    card = (hub.converted_dir("tiny-manual") / "README.md").read_text()
    assert "library_name: ganzoo" in card


def test_convert_as_refuses_a_network_of_the_wrong_resolution(env, tmp_path):
    other = tmp_path / "other.pkl"
    other.write_bytes(env["upstream"].read_bytes())
    with pytest.raises(ganzoo.ConversionError, match="32x32.*tiny-hub is 16x16"):
        hub.register_converted(other, "tiny-hub")


def test_dropbox_share_links_ask_for_the_file():
    url = "https://www.dropbox.com/s/7gll7weysn1ull7/imagenet-256-state.pt?dl=0"
    assert hub.direct_download_url(url) == "https://www.dropbox.com/s/7gll7weysn1ull7/imagenet-256-state.pt?dl=1"
    other = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/afhqcat.pkl"
    assert hub.direct_download_url(other) == other


# ------------------------------------------------------------------------------------------------
# Upstream fallback for a state-dict release (the imagenet-stylegan2-* route): a `.pt` file written
# like Grigoryev et al.'s `imagenet-*-state.pt`, i.e. torch.save of a dict of real
# `nn.Module.state_dict()` objects (OrderedDicts carrying `_metadata`), served over HTTP.

# Layouts of the release file: the networks it holds, by top-level key.
STATE_DICT_LAYOUTS = {"g-d": ("G", "D"), "g-gema-d": ("G", "G_ema", "D")}
# torch.save's two serializations: the zip container (default since torch 1.6) and the legacy stream.
STATE_DICT_SERIALIZATIONS = {"zip": True, "legacy": False}


def _release_networks(seed: int) -> dict[str, torch.nn.Module]:
    """Tiny 16x16 G, G_ema and D built with the settings StyleGAN2-ADA's train.py uses for every
    paper config (num_fp16_res=4, conv_clamp=256, mbstd group 4), i.e. those the state-dict reader
    must default because tensors do not record them; G_ema is G with its weights moved a bit (as
    an EMA would), so the two generators are told apart by their images."""
    from ganzoo.architectures.stylegan2.networks import Discriminator

    release = dict(channel_base=256, channel_max=16, num_fp16_res=4, conv_clamp=256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(8, 0, 8, 16, 3, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=release)
        D = Discriminator(0, 16, 3, epilogue_kwargs=dict(mbstd_group_size=4), **release)
        G_ema = Generator(**G.init_kwargs)
        with torch.no_grad():
            for p in list(G.parameters()) + list(D.parameters()):
                p.add_(torch.randn_like(p) * 0.1)
            G.mapping.w_avg.normal_()
            G_ema.load_state_dict(G.state_dict())
            for p in G_ema.parameters():
                p.add_(torch.randn_like(p) * 0.05)
            G_ema.mapping.w_avg.add_(torch.randn_like(G_ema.mapping.w_avg) * 0.05)
    return {"G": G.eval(), "G_ema": G_ema.eval(), "D": D.eval()}


def _state_dict_registry_toml(files_url: str, releases: dict[str, dict]) -> str:
    """One registry file shaped like registry/gan-transfer.toml (license 'other'/'unstated', family
    paper and dataset, format 'state-dict-pt', no constructor kwargs, a Dropbox-style '?dl=0' URL).
    The G+D entries leave size and sha256 out, as the imagenet-stylegan2-* entries do; the
    G+G_ema+D entries declare them, as an entry with measured checksums would."""
    text = """
[family]
architecture = "stylegan2"
license = "other"
license_name = "unstated"
license_url = "https://example.org/release"
tags = ["stylegan2-ada", "state-dict-test"]
includes = ["G_ema", "D"]
c_dim = 0

[family.paper]
title = "A state-dict release"
authors = "ganzoo"
year = 2024
url = "https://example.org/paper"

[family.dataset]
name = "test data"
"""
    for name, release in releases.items():
        text += f"""
[[models]]
name = "{name}"
title = "tiny state-dict release ({release['layout']}, {release['serialization']})"
resolution = 16
hub = {{ repo = "{ORG}/{name}-not-on-the-mirror", revision = "main" }}
includes = {json.dumps(["G_ema", "G", "D"] if "G_ema" in release["keys"] else ["G_ema", "D"])}
[[models.artifacts]]
url = "{files_url}/{release['filename']}?dl=0"
format = "state-dict-pt"
filename = "{release['filename']}"
"""
        if "G_ema" in release["keys"]:
            text += f"size = {len(release['data'])}\nsha256 = \"{hashlib.sha256(release['data']).hexdigest()}\"\n"
    return text


@pytest.fixture(scope="module")
def state_dict_releases(tmp_path_factory):
    """The four release files (2 layouts x 2 serializations), served by a loopback FileServer and
    declared in a registry folder of their own; entry name -> what was saved."""
    root = tmp_path_factory.mktemp("state-dict-release")
    networks = _release_networks(seed=21)
    releases = {}
    for layout, keys in STATE_DICT_LAYOUTS.items():
        for serialization, zipped in STATE_DICT_SERIALIZATIONS.items():
            name = f"statedict-{layout}-{serialization}"
            payload = {key: networks[key].state_dict() for key in keys}  # the real OrderedDicts
            assert all(hasattr(sd, "_metadata") for sd in payload.values())
            path = root / f"{name}-state.pt"
            torch.save(payload, path, _use_new_zipfile_serialization=zipped)
            releases[name] = {"layout": layout, "serialization": serialization, "keys": keys,
                              "filename": path.name, "data": path.read_bytes(), "saved": payload}  # fmt: skip
    files = FileServer({r["filename"]: r["data"] for r in releases.values()}).start()
    registry_dir = root / "registry"
    registry_dir.mkdir()
    (registry_dir / "state-dict-release.toml").write_text(_state_dict_registry_toml(files.url, releases))
    try:
        yield {"releases": releases, "networks": networks, "files": files, "registry": registry_dir}
    finally:
        files.stop()


@pytest.fixture
def sd_env(env, state_dict_releases, monkeypatch):
    """``env`` plus the state-dict release entries on GANZOO_REGISTRY_PATH."""
    monkeypatch.setenv("GANZOO_REGISTRY_PATH", os.pathsep.join([str(env["registry"]), str(state_dict_releases["registry"])]))
    return {**env, **state_dict_releases}


def _assert_same_tensors(net: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    state = net.state_dict()
    assert list(state) == list(saved)
    for key, tensor in saved.items():
        assert state[key].dtype == tensor.dtype and torch.equal(state[key], tensor), key


def _assert_kwargs_within(given: dict, converted: dict) -> None:
    """Every constructor kwarg the original network was built with is in the converted config."""
    for key, value in given.items():
        if isinstance(value, dict):
            _assert_kwargs_within(value, converted[key])
        else:
            assert converted[key] == value, (key, converted[key], value)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("serialization", list(STATE_DICT_SERIALIZATIONS))
@pytest.mark.parametrize("layout", list(STATE_DICT_LAYOUTS))
def test_state_dict_release_falls_back_to_upstream_and_converts_exactly(sd_env, layout, serialization):
    name = f"statedict-{layout}-{serialization}"
    release, networks = sd_env["releases"][name], sd_env["networks"]
    has_ema = "G_ema" in release["keys"]
    result = hub.pull_checkpoint(name)
    assert result.origin == "upstream" and result.path == hub.converted_dir(name)
    assert sd_env["files"].requests[-1][0] == f"/{release['filename']}?dl=0"

    config = json.loads((result.path / "config.json").read_text())
    source = config["source"]
    assert source["format"] == "state-dict-pt" and source["registry"] == name
    assert source["sha256"] == hashlib.sha256(release["data"]).hexdigest()
    assert source["size"] == len(release["data"]) and source["file"] == release["filename"]
    assert source["url"].endswith(f"/{release['filename']}?dl=0")
    assert config["license"] == "unstated"
    no_ema_note = "no EMA generator in the file; its only generator G is used as G_ema"
    assert (no_ema_note in source["notes"]) is not has_ema
    assert sorted(config["files"]) == sorted(["generator.safetensors", "discriminator.safetensors"]
                                             + (["generator_raw.safetensors"] if has_ema else []))  # fmt: skip

    gan = ganzoo.load(name)
    saved = release["saved"]
    ema_key = "G_ema" if has_ema else "G"  # without G_ema in the file, its G is the one to sample from
    _assert_same_tensors(gan.G_ema, saved[ema_key])
    _assert_same_tensors(gan.D, saved["D"])
    if has_ema:
        _assert_same_tensors(gan.G, saved["G"])
    else:
        assert gan.G is None  # the file's only generator went to the G_ema slot
    _assert_kwargs_within(networks[ema_key].init_kwargs, config["generator"])
    _assert_kwargs_within(networks["D"].init_kwargs, config["discriminator"])

    reference = GAN(networks[ema_key], networks["G"] if has_ema else None, networks["D"],
                    config={"source": {"made_by": "tests"}})  # fmt: skip
    images = gan.sample(seeds=[0, 1])
    assert images.dtype == np.uint8 and images.shape == (2, 16, 16, 3)
    assert not np.array_equal(images[0], images[1])
    assert np.array_equal(images, reference.sample(seeds=[0, 1]))
    if has_ema:  # the raw generator came through as itself, not as a copy of G_ema
        raw = GAN(gan.G).sample(seeds=[0, 1])
        assert np.array_equal(raw, GAN(networks["G"]).sample(seeds=[0, 1])) and not np.array_equal(raw, images)
    with torch.no_grad():
        batch = torch.from_numpy(np.concatenate([images, images[::-1]])).permute(0, 3, 1, 2).float() / 127.5 - 1
        assert torch.equal(gan.D(batch, None), networks["D"](batch, None))

    # Cached now: the next pull neither contacts the Hub nor downloads again.
    requests_before = len(sd_env["files"].requests)
    assert hub.pull_checkpoint(name).origin == "cache"
    assert len(sd_env["files"].requests) == requests_before


@pytest.mark.usefixtures("one_thread")
def test_state_dict_release_pulls_through_the_cli(sd_env, capsys):
    name = "statedict-g-d-legacy"  # shaped like imagenet-stylegan2-*: G and D, no size or sha256
    assert main(["pull", name, "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["origin"] == "upstream" and report["registry"] == name
    assert Path(report["path"]) == hub.converted_dir(name)
    gan = ganzoo.load(name)
    _assert_same_tensors(gan.G_ema, sd_env["releases"][name]["saved"]["G"])
    assert main(["pull", name, "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["origin"] == "cache"


# ------------------------------------------------------------------------------------------------
# Push: the real client against the Hub write server on loopback (tests/hub_write_server.py);
# the round trip through olah and ganzoo pull is in tests/test_push_roundtrip.py


@pytest.fixture(scope="module")
def write_server(tmp_path_factory):
    server = HubWriteServer(tmp_path_factory.mktemp("hub-write") / "mirrors", tokens=["hf_write_server_token"]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def write_hub(write_server, monkeypatch):
    """The client pointed at the write server, with a token; yields the server (its
    ``committed_files(repo_id, revision)`` reads what git holds, LFS objects resolved)."""
    for name in list(os.environ):
        if name.startswith("HF_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", write_server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_write_server_token")
    monkeypatch.setitem(importlib.import_module("huggingface_hub.utils.tqdm").progress_bar_states, "_global", False)
    return write_server


def _commits(server: HubWriteServer, repo_id: str, revision: str = "main") -> list[str]:
    log = subprocess.run(["git", "log", "--format=%s", revision], cwd=server.repo_path(repo_id), capture_output=True,
                         text=True, check=True)  # fmt: skip
    return log.stdout.splitlines()


def test_push_creates_the_repo_and_commits_exactly_the_checkpoint_in_one_commit(write_hub, tmp_path):
    from huggingface_hub import ModelCard

    checkpoint = tmp_path / "my-gan"
    tiny_gan(seed=7).save(checkpoint)
    url = ganzoo.push(checkpoint, "me/my-gan")
    head = subprocess.run(["git", "rev-parse", "main"], cwd=write_hub.repo_path("me/my-gan"), capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert url == f"{write_hub.url}/me/my-gan/commit/{head}"
    assert _commits(write_hub, "me/my-gan") == ["Upload ganzoo checkpoint my-gan", "initial commit"]
    assert ("POST", "/api/repos/create") in write_hub.requests
    files = write_hub.committed_files("me/my-gan")
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "discriminator.safetensors",
                             "generator.safetensors", "samples.png"]  # fmt: skip
    for name in ("config.json", "generator.safetensors", "discriminator.safetensors"):
        assert files[name] == (checkpoint / name).read_bytes()
    assert files["samples.png"].startswith(b"\x89PNG")
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "ganzoo" and card.data.license == "cc-by-4.0"
    assert "gan" in card.data.tags and "unconditional-image-generation" in card.data.tags
    assert "![Uncurated samples" in card.text and 'ganzoo.load("me/my-gan")' in card.text
    report = filter_report(tiny_gan(seed=7))
    assert "## Filter diversity" in card.text and "load_state_dict(strict=True)" in card.text
    assert f"| G (G_ema) | {report['G_mean']:.4f} |" in card.text and f"| D | {report['D_mean']:.4f} |" in card.text


def test_push_folds_adafm_into_a_plain_stylegan2_that_loads_back_with_the_same_images(write_hub, tmp_path):
    from huggingface_hub import ModelCard
    from safetensors.torch import load_file

    base = tiny_gan(seed=9)
    G_ema = AdaFMGenerator.from_generator(base.G_ema, [8, 16])
    with torch.no_grad():
        for name, param in G_ema.named_parameters():
            if name.endswith("adafm_gamma"):
                param.uniform_(0.5, 1.5)
            elif name.endswith("adafm_beta"):
                param.normal_(0.0, 0.05)
    config = dict(base.config, architecture="stylegan2-adafm", training={"recipe": "adafm"},
                  lineage=[{"parent": "tiny", "recipe": "adafm"}])  # fmt: skip
    adafm = GAN(G_ema, None, base.D, config=config)
    checkpoint = adafm.save(tmp_path / "adafm")
    on_disk = {p.name: p.read_bytes() for p in checkpoint.iterdir()}
    publish.push(checkpoint, "me/adafm", samples=False)
    assert {p.name: p.read_bytes() for p in checkpoint.iterdir()} == on_disk  # the checkpoint is untouched
    files = write_hub.committed_files("me/adafm")
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    for name, data in files.items():
        (pulled / name).write_bytes(data)
    gan = ganzoo.load(pulled)  # strict, checksums verified against the pushed config.json
    assert gan.config["architecture"] == "stylegan2" and type(gan.G_ema) is Generator
    assert gan.config["training"]["adafm_folded"] is True
    assert gan.config["lineage"][-1]["operation"] == "fold-adafm"
    assert not any("adafm" in name for name in load_file(str(pulled / "generator.safetensors")))
    Generator(**gan.config["generator"]).load_state_dict(load_file(str(pulled / "generator.safetensors")), strict=True)
    ws = adafm.G_ema.mapping(torch.randn(3, 8), None)
    with torch.no_grad():
        expected = adafm.G_ema.synthesis(ws, noise_mode="const")
        assert torch.allclose(gan.G_ema.synthesis(ws, noise_mode="const"), expected, atol=1e-5)
    assert np.abs(gan.sample(seeds=[0, 1]).astype(int) - adafm.sample(seeds=[0, 1]).astype(int)).max() <= 1
    card = ModelCard(files["README.md"].decode())
    assert "stylegan2-adafm" not in card.data.tags and "load_state_dict(strict=True)" in card.text
    assert "`fold-adafm`: AdaFM folded at push" in card.text and "recipe `adafm`" in card.text
    assert f"| G (G_ema) | {filter_report(adafm)['G_mean']:.4f} |" in card.text


def test_card_of_an_unfolded_adafm_checkpoint_does_not_claim_official_loading():
    card = hub.render_card({"architecture": "stylegan2-adafm", "generator": {"img_resolution": 16, "c_dim": 0}})
    assert "load_state_dict(strict=True)" not in card.text and "`ganzoo export` folds them" in card.text
    assert "## Filter diversity" not in card.text


def test_push_to_a_branch_creates_it_and_lineage_becomes_base_model(write_hub, tmp_path):
    from huggingface_hub import ModelCard

    gan = tiny_gan(seed=8)
    gan.config["lineage"] = [{"registry": "afhqcat-stylegan2-512", "recipe": "freezed"}]
    gan.config["metrics"] = {"fid": 12.5}
    checkpoint = gan.save(tmp_path / "finetuned")
    publish.push(checkpoint, "me/finetuned", revision="v1", samples=False)
    assert ("POST", "/api/models/me/finetuned/branch/v1") in write_hub.requests
    assert _commits(write_hub, "me/finetuned", "main") == ["initial commit"]
    files = write_hub.committed_files("me/finetuned", "v1")
    assert "samples.png" not in files
    card = ModelCard(files["README.md"].decode())
    assert card.data.base_model == "ganzoo/afhqcat-stylegan2-512"
    assert card.data.eval_results[0].metric_type == "fid" and card.data.eval_results[0].metric_value == 12.5
    assert "recipe `freezed`" in card.text and "Karras2020ada" in card.text  # ancestor's citation


def test_push_refuses_a_corrupt_checkpoint_before_any_request(write_hub, tmp_path):
    checkpoint = tiny_gan().save(tmp_path / "bad")
    (checkpoint / "generator.safetensors").write_bytes(b"x")
    before = len(write_hub.requests)
    with pytest.raises(ChecksumMismatchError):
        publish.push(checkpoint, "me/bad")
    assert write_hub.requests[before:] == []


def test_hub_push_commits_a_prepared_upload_and_nothing_else(write_hub, tmp_path):
    from huggingface_hub import ModelCard

    checkpoint = tiny_gan(seed=7).save(tmp_path / "ckpt")
    upload = publish.prepare_upload(checkpoint, samples=False)
    upload = hub.Upload({**upload.files, "extra.txt": b"made by the caller"}, upload.config, "ckpt",
                        card={"filter_diversity": {"G": 0.125, "D": None}})  # fmt: skip
    hub.push(upload, "me/prepared", commit_message="prepared")
    assert _commits(write_hub, "me/prepared") == ["prepared", "initial commit"]
    files = write_hub.committed_files("me/prepared")
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "discriminator.safetensors", "extra.txt",
                             "generator.safetensors"]  # fmt: skip
    assert files["extra.txt"] == b"made by the caller"
    card = ModelCard(files["README.md"].decode())
    assert "| G (G_ema) | 0.1250 |" in card.text and "![Uncurated samples" not in card.text


def test_hub_push_takes_an_upload_not_a_directory(write_hub, tmp_path):
    checkpoint = tiny_gan().save(tmp_path / "ckpt")
    before = len(write_hub.requests)
    with pytest.raises(TypeError, match="ganzoo.push"):
        hub.push(checkpoint, "me/dir")
    assert write_hub.requests[before:] == []
    assert ganzoo.push is publish.push


# ------------------------------------------------------------------------------------------------
# Maintainers' publishing script, dry run on a fixture (what CI runs)


def test_publish_zoo_dry_run_on_a_fixture(shared_fixtures, tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "publish_zoo.py"
    run = subprocess.run(
        [sys.executable, str(script), "--dry-run", "--only", "cifar10-stylegan2-32",
         "--fixture", str(shared_fixtures / FIXTURE_PKL), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dry run" in run.stdout and "cifar10-stylegan2-32" in run.stdout
    out = tmp_path / "out" / "cifar10-stylegan2-32"
    assert (out / "config.json").is_file() and (out / "README.md").is_file() and (out / "samples.png").is_file()


def test_mirror_of_a_registry_name_pulls_it_and_writes_the_repo(env, tmp_path, capsys):
    assert main(["mirror", "tinyhub", "--to", str(tmp_path / "m2")]) == 0
    repo = tmp_path / "m2" / "models" / ORG / "tiny-ckpt"
    assert str(repo) in capsys.readouterr().out
    for name in ("config.json", "generator.safetensors", "discriminator.safetensors"):
        assert _same_bytes(repo / name, env["checkpoint"] / name)
    assert (repo / ".git").is_dir()


def test_registry_sha256_that_contradicts_config_json_is_refused(env):
    from ganzoo.registry import HubLocation

    entry = ganzoo.registry.get_entry("tiny-hub")
    wrong = dataclasses.replace(entry, hub=HubLocation(entry.hub.repo, "main", (("generator.safetensors", "0" * 64),)))
    config = json.loads((env["checkpoint"] / "config.json").read_text())
    with pytest.raises(ChecksumMismatchError, match="the registry entry 'tiny-hub' records"):
        hub.expected_digests(config, wrong)


def test_a_repo_that_is_not_a_ganzoo_checkpoint_is_refused(env, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ganzoo.CheckpointError, match="not a ganzoo checkpoint"):
        hub.mirror([str(foreign)], tmp_path / "m3")


def test_hub_and_upstream_both_unreachable_is_one_line_naming_both(env, tmp_path, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    text = (env["registry"] / "test-entries.toml").read_text()
    text = text.replace(env["files"].url, dead).replace('"tiny-', '"dead-').replace('["tinyhub"]', '["deadhub"]')
    (tmp_path / "dead.toml").write_text(text)
    monkeypatch.setenv("GANZOO_REGISTRY_PATH", os.pathsep.join([str(env["registry"]), str(tmp_path / "dead.toml")]))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DownloadError) as info:
        hub.pull("dead-upstream")
    message = str(info.value)
    assert "\n" not in message and "Hub:" in message and "upstream:" in message and dead in message
    assert "HF_HUB_OFFLINE=1" in message


def test_training_state_is_not_pulled_and_not_required(env, tmp_path):
    from safetensors.torch import save_file

    checkpoint = tiny_gan(seed=11).save(tmp_path / "with-state")
    save_file({"step": torch.zeros(1)}, str(checkpoint / "training_state.safetensors"))
    config = json.loads((checkpoint / "config.json").read_text())
    config["files"]["training_state.safetensors"] = {"sha256": _sha256(checkpoint / "training_state.safetensors"),
                                                     "size": (checkpoint / "training_state.safetensors").stat().st_size}
    (checkpoint / "config.json").write_text(json.dumps(config, sort_keys=True, indent=2) + "\n")
    hub.mirror([str(checkpoint)], env["olah"].mirrors, org=ORG)
    path = hub.pull(f"{ORG}/with-state")
    assert not (path / "training_state.safetensors").exists()
    gan = ganzoo.load(f"{ORG}/with-state")
    assert gan.D is not None


def test_mirror_refuses_a_corrupt_checkpoint_and_leaves_it_untouched(tmp_path):
    checkpoint = tiny_gan().save(tmp_path / "ckpt")
    (checkpoint / "discriminator.safetensors").write_bytes(b"changed")
    with pytest.raises(ChecksumMismatchError, match="not mirrored"):
        hub.mirror([str(checkpoint)], tmp_path / "mirror")
    assert (checkpoint / "discriminator.safetensors").read_bytes() == b"changed"
    assert not (tmp_path / "mirror" / "models" / "ganzoo" / "ckpt").exists()


# ------------------------------------------------------------------------------------------------
# An unreachable Hub is learned once per process, then everything runs offline (issue 13, part 2)


class _CountingListener:
    """A loopback TCP listener that counts connection attempts (accepts). ``close`` ends each
    connection at once (the client sees a disconnect); ``blackhole`` holds it and never answers
    (the client times out)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.accepts = 0
        self.held: list[socket.socket] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by stop()
                return
            self.accepts += 1
            if self.mode == "close":
                conn.close()
            else:
                self.held.append(conn)

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


class _NoSleep:
    """Stands in for the ``time`` module inside huggingface_hub's retry loop: a backoff is
    counted as the requests it makes, never waited for (so the test does not depend on timing)."""

    def __getattr__(self, name):
        import time

        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        pass


@pytest.fixture
def hub_requests(monkeypatch):
    """Every request huggingface_hub's shared client sends, as (method, url); no backoff sleeps.
    (Tests look at those to their endpoint: huggingface_hub's telemetry asks its import-time one.)"""
    import huggingface_hub
    from huggingface_hub.utils import _http

    sent: list[tuple[str, str]] = []

    def counting_client():
        client = _http.default_client_factory()
        client.event_hooks["request"].append(lambda request: sent.append((request.method, str(request.url))))
        return client

    huggingface_hub.set_client_factory(counting_client)
    monkeypatch.setattr(_http, "time", _NoSleep())
    try:
        yield sent
    finally:
        huggingface_hub.set_client_factory(_http.default_client_factory)


def _sent_to(endpoint: str, requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(method, url) for method, url in requests if url.startswith(endpoint + "/")]


def _unreachable_endpoint(kind: str, monkeypatch) -> tuple[str, _CountingListener | None]:
    if kind == "refused":
        return f"http://127.0.0.1:{free_port()}", None
    if kind == "unresolvable":
        return "http://ganzoo-hub-test.invalid", None  # .invalid never resolves (RFC 6761)
    listener = _CountingListener("close" if kind == "disconnect" else "blackhole")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")  # how long ganzoo waits for the blackhole
    return listener.url, listener


@pytest.mark.parametrize("kind", ["refused", "unresolvable", "disconnect", "blackhole"])
def test_an_unreachable_endpoint_costs_one_attempt_per_process_and_one_note(env, hub_requests, monkeypatch, capsys, kind):
    from ganzoo.metrics.features import WeightsFile, _timm_weights, fetch_weights
    from ganzoo.ranking import _hub_feature_file

    endpoint, listener = _unreachable_endpoint(kind, monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    try:
        for _ in range(2):
            with pytest.raises(DownloadError, match="unreachable") as info:
                hub.pull(f"{ORG}/tiny-ckpt")
            assert endpoint in str(info.value) and "HF_HUB_OFFLINE=1" in str(info.value)
            assert _hub_feature_file(f"{ORG}/tiny-ckpt", "features/pixels@16.safetensors", "main") is None
            # A feature extractor's weights: the Hub is skipped, the upstream URL (dead too) is tried.
            spec = WeightsFile("weights-test-0123456789.pth", "0123456789" + "0" * 54, f"http://127.0.0.1:{free_port()}/w.pth")
            with pytest.raises(DownloadError, match="unreachable"):
                fetch_weights(spec, progress=False)
            with pytest.raises(DownloadError):
                _timm_weights("resnet18", {"hf_hub_id": "timm/resnet18.a1_in1k"}, progress=False)
        # One attempt: ganzoo's own check; every call after it used the local caches only.
        assert _sent_to(endpoint, hub_requests) == [("HEAD", endpoint + "/")]
        if listener is not None:
            assert listener.accepts == 1
        err = capsys.readouterr().err
        assert err.count(f"note: {endpoint} unreachable") == 1 and err.count("\n") == 1
        assert "HF_HUB_OFFLINE=1" in err
    finally:
        if listener is not None:
            listener.stop()


def test_a_gateway_with_nothing_behind_it_counts_as_unreachable(env, hub_requests, monkeypatch, capsys):
    """A proxy answering 503 for everything: huggingface_hub would retry each request with backoff."""
    import http.server

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    try:
        for _ in range(2):
            with pytest.raises(DownloadError, match=r"unreachable \(HTTP 503\)"):
                hub.pull(f"{ORG}/tiny-ckpt")
    finally:
        server.shutdown()
        server.server_close()
    assert _sent_to(endpoint, hub_requests) == [("HEAD", endpoint + "/")]
    assert capsys.readouterr().err.count("unreachable (HTTP 503)") == 1


def test_a_cli_process_connects_once_to_an_unreachable_endpoint(env, tmp_path):
    """Through the console script, HF_ENDPOINT set before huggingface_hub is imported (its own
    telemetry would ask that endpoint too): one connection for the whole command, one note."""
    from ganzoo.starter import write_domain

    target = write_domain("discs", 20, tmp_path / "target", seed=5)
    listener = _CountingListener("close")
    base = [sys.executable, "-m", "ganzoo"]
    child_env = {**os.environ, "HF_ENDPOINT": listener.url}
    try:
        rank = subprocess.run(base + ["rank", "--target", str(target), "--candidates", f"{ORG}/tiny-ckpt,discs",
                                      "--feature-extractor", "pixels", "--num-gen", "16"],
                              capture_output=True, text=True, env=child_env, timeout=600)  # fmt: skip
        assert listener.accepts == 1
        pull = subprocess.run(base + ["pull", f"{ORG}/tiny-ckpt"], capture_output=True, text=True, env=child_env,
                              timeout=300)  # fmt: skip
        assert listener.accepts == 2  # a new process asks again, once
    finally:
        listener.stop()
    assert rank.returncode == 0 and "Traceback" not in rank.stderr
    assert rank.stderr.count(f"note: {listener.url} unreachable") == 1 and "not scored" in rank.stdout
    assert pull.returncode == 1 and "Traceback" not in pull.stderr
    lines = pull.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"note: {listener.url} unreachable") and lines[1].startswith("error: ")
    assert f"{ORG}/tiny-ckpt" in lines[1]


def test_rank_with_an_unreachable_hub_gives_the_offline_result_after_one_attempt(env, hub_requests, one_thread,
                                                                              monkeypatch, tmp_path, capsys):  # fmt: skip
    from ganzoo.starter import write_domain

    target = write_domain("discs", 20, tmp_path / "target", seed=5)
    args = ["rank", "--target", str(target), "--feature-extractor", "pixels", "--num-gen", "16"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(args + ["--json", str(tmp_path / "offline.json")]) == 0
    assert _sent_to(env["olah"].url, hub_requests) == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    capsys.readouterr()
    assert main(args + ["--json", str(tmp_path / "unreachable.json")]) == 0
    offline = json.loads((tmp_path / "offline.json").read_text())
    unreachable = json.loads((tmp_path / "unreachable.json").read_text())
    # The same candidates (those on this machine), the same values, the same recommendation
    # (the second run reads the sample features the first one cached).
    assert all(c.pop("features_from") == "cache" for c in unreachable["candidates"])
    assert unreachable["candidates"] == [{k: v for k, v in c.items() if k != "features_from"} for c in offline["candidates"]]
    assert unreachable["recommended"] == offline["recommended"]
    assert [n.replace(f"{dead} unreachable", "HF_HUB_OFFLINE=1") for n in unreachable["notes"]] == offline["notes"]
    # A second command in the same process asks nothing more.
    result = ganzoo.rank(target, candidates=["tiny-hub", "discs"], feature_extractor="pixels", num_gen=16, progress=False)
    assert "unreachable" in " ".join(next(c for c in result.candidates if c.name == "tiny-hub").notes)
    assert _sent_to(dead, hub_requests) == [("HEAD", dead + "/")]
    err = capsys.readouterr().err
    assert err.count(f"note: {dead} unreachable") == 1 and "Traceback" not in err


def test_a_missing_repo_on_a_reachable_hub_is_asked_once_without_retries(env, hub_requests, capsys):
    from ganzoo.ranking import _hub_feature_file

    with pytest.raises(DownloadError, match="manual download"):
        hub.pull("tiny-manual")
    with pytest.raises(UnknownModelError, match="no such model repository"):
        hub.pull(f"{ORG}/does-not-exist")
    assert _hub_feature_file(f"{ORG}/does-not-exist", "features/pixels@16.safetensors", "main") is None
    counts = Counter(_sent_to(env["olah"].url, hub_requests))
    assert counts[("HEAD", env["olah"].url + "/")] == 1  # the reachability check, once per process
    assert all(n == 1 for n in counts.values()), counts  # no request was retried
    assert "unreachable" not in capsys.readouterr().err

