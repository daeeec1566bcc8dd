"""Push, proven end to end: ``ganzoo push`` through the real ``huggingface_hub`` client into a
Hub-compatible write server on loopback (``tests/hub_write_server.py``: real git repositories,
Git LFS pointers and objects), a real ``olah`` server serving the same folder, and ``ganzoo pull``
through the real client in a fresh ``HF_HOME``.

Nothing is replayed: the client creates the repo (and branch), asks the pre-upload endpoint,
uploads the weights and samples grid through the Git LFS batch API (basic transfer, verify), and
commits with the NDJSON commit API; olah then serves what git holds. Self-hosted servers take no
Xet uploads: the command-line pushes set ``HF_HUB_DISABLE_XET=1`` as the README says, and the
in-process ones show that ``ganzoo push`` disables Xet by itself for endpoints other than
huggingface.co. olah in offline mode serves every mirrored repo without asking for a token, so
privacy is checked on the write server only.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import tiny_gan
from hub_write_server import HubWriteServer, lfs_pointer, parse_pointer
from olah_server import FileServer, OlahServer, free_port

import ganzoo
from ganzoo import hub, publish
from ganzoo.cli import main
from ganzoo.errors import DownloadError

ORG = "roundtrip"
TOKEN = "hf_roundtrip_test_token"
FIXTURE_PKL = "stylegan2-ada/tiny32/tiny32-snapshot.pkl"
WEIGHTS = ("config.json", "generator.safetensors", "discriminator.safetensors")
ZOO_ENTRY = "tiny-zoo"
ZOO_REPO = f"{ORG}/tiny-zoo"
ZOO_FEATURES = "pixels@8"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git(repo: Path, *args: str) -> str:
    run = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _registry_toml(files_url: str, fixture: Path) -> str:
    return f"""
[[models]]
name = "{ZOO_ENTRY}"
title = "tiny32 fixture, published by scripts/publish_zoo.py"
resolution = 32
architecture = "stylegan2"
license = "cc-by-4.0"
c_dim = 0
includes = ["G_ema", "D"]
dataset = {{ name = "test data" }}
paper = {{ title = "A test", authors = "ganzoo", year = 2024, url = "https://example.org/paper" }}
hub = {{ repo = "{ZOO_REPO}", revision = "main" }}
[[models.artifacts]]
url = "{files_url}/tiny32-snapshot.pkl"
format = "stylegan2-ada-pkl"
filename = "tiny32-snapshot.pkl"
size = {fixture.stat().st_size}
sha256 = "{_sha256(fixture.read_bytes())}"
"""


@pytest.fixture(scope="module")
def hubs(tmp_path_factory, shared_fixtures):
    """The write server and olah on one folder (olah's mirrors-path), an upstream file server
    for the publishing script, and a registry with one entry to publish."""
    root = tmp_path_factory.mktemp("push-roundtrip")
    olah = OlahServer(root / "olah")
    writer = HubWriteServer(olah.mirrors, tokens=[TOKEN]).start()
    fixture = shared_fixtures / FIXTURE_PKL
    files = FileServer({"tiny32-snapshot.pkl": fixture.read_bytes()}).start()
    registry = root / "registry"
    registry.mkdir()
    (registry / "zoo.toml").write_text(_registry_toml(files.url, fixture))
    try:
        olah.start()
        yield {"writer": writer, "olah": olah, "files": files, "registry": registry, "root": root}
    finally:
        olah.stop()
        writer.stop()
        files.stop()


@pytest.fixture
def env(hubs, tmp_path, monkeypatch):
    """A clean Hub environment pointed at the write server, with a token and fresh caches."""
    for name in list(os.environ):
        if name.startswith("HF_") or name in ("GANZOO_CACHE", "GANZOO_REGISTRY_PATH"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hubs["writer"].url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "ganzoo"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # (huggingface_hub reads that switch at import: turn its bars off in this process too.)
    monkeypatch.setitem(importlib.import_module("huggingface_hub.utils.tqdm").progress_bar_states, "_global", False)
    return hubs


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HF_")}


def _python_block(markdown: str) -> str:
    """The first ```python block of a Markdown text."""
    start = markdown.index("```python\n") + len("```python\n")
    return markdown[start:markdown.index("```", start)]


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """``ganzoo ARGS`` in a fresh process (huggingface_hub reads its switches at import)."""
    process_env = _clean_env()
    process_env.update(env)
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], env=process_env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def _pull_env(hubs, home: Path, **more: str) -> dict[str, str]:
    return {"HF_ENDPOINT": hubs["olah"].url, "HF_HOME": str(home), "GANZOO_CACHE": str(home / "ganzoo"),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", **more}  # fmt: skip


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ------------------------------------------------------------------------------------------------
# The round trip through two real processes


def test_push_then_pull_through_olah_gives_identical_bytes(hubs, tmp_path):
    checkpoint = tiny_gan(seed=11).save(tmp_path / "my-gan")
    writer = hubs["writer"]
    push = _cli(["push", str(checkpoint), f"{ORG}/my-gan"], HF_ENDPOINT=writer.url, HF_TOKEN=TOKEN,
                HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "pusher"), HF_HUB_DISABLE_PROGRESS_BARS="1")  # fmt: skip
    assert push.returncode == 0, push.stderr
    repo = writer.repo_path(f"{ORG}/my-gan")
    head = _git(repo, "rev-parse", "main").strip()
    assert _one_line(push.stdout) == f"pushed {checkpoint} -> {writer.url}/{ORG}/my-gan/commit/{head}"

    # What git holds: one commit on top of the repo's initial one, weights and grid as LFS pointers.
    assert _git(repo, "log", "--format=%s", "main").splitlines() == ["Upload ganzoo checkpoint my-gan", "initial commit"]
    tracked = sorted(_git(repo, "ls-tree", "-r", "--name-only", "main").split())
    assert tracked == [".gitattributes", "README.md", "config.json", "discriminator.safetensors",
                       "generator.safetensors", "samples.png"]  # fmt: skip
    for name in ("generator.safetensors", "discriminator.safetensors", "samples.png"):
        pointer = subprocess.run(["git", "cat-file", "blob", f"main:{name}"], cwd=repo, capture_output=True, check=True).stdout
        oid, size = parse_pointer(pointer)
        stored = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
        assert stored.stat().st_size == size and _sha256(stored.read_bytes()) == oid
        if name != "samples.png":
            assert oid == _sha256((checkpoint / name).read_bytes())
    assert _git(repo, "cat-file", "blob", "main:config.json").encode() == (checkpoint / "config.json").read_bytes()
    fsck = subprocess.run(["git", "fsck", "--strict", "--full"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and "error" not in fsck.stderr.lower(), fsck.stderr
    assert _git(repo, "status", "--porcelain") == ""  # work tree and index follow main

    # Pull through olah, in a fresh process and a fresh HF_HOME.
    home = tmp_path / "puller"
    report_file = tmp_path / "pull.json"
    pull = _cli(["pull", f"{ORG}/my-gan", "--json", str(report_file)], **_pull_env(hubs, home))
    assert pull.returncode == 0, pull.stderr
    report = json.loads(report_file.read_text())
    pulled = Path(report["path"])
    assert report["origin"] == "hub" and pulled.name == head and str(pulled).startswith(str(home))
    for name in WEIGHTS:
        data = (pulled / name).read_bytes()
        assert data == (checkpoint / name).read_bytes()
        assert _sha256(data) == _sha256((checkpoint / name).read_bytes())
    assert (pulled / "README.md").read_bytes() == writer.committed_files(f"{ORG}/my-gan")["README.md"]

    # The card and the samples grid, as the Hub API (olah) shows them to anyone.
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi(endpoint=hubs["olah"].url, token=False).model_info(f"{ORG}/my-gan", revision="main")
    assert info.sha == head and "samples.png" in [s.rfilename for s in info.siblings]
    assert info.card_data.library_name == "ganzoo" and info.card_data.license == "cc-by-4.0"
    grid = hf_hub_download(f"{ORG}/my-gan", "samples.png", endpoint=hubs["olah"].url, cache_dir=str(home / "hub"))
    assert Path(grid).read_bytes() == writer.committed_files(f"{ORG}/my-gan")["samples.png"]
    assert Path(grid).read_bytes().startswith(b"\x89PNG") and "![Uncurated samples" in (pulled / "README.md").read_text()

    # The card's "how to load" snippet runs as written, in a fresh process and HF_HOME.
    snippet = _python_block((pulled / "README.md").read_text())
    assert f'ganzoo.load("{ORG}/my-gan")' in snippet
    check = "\nassert images.shape == (16, 16, 16, 3) and images.dtype.name == 'uint8' and D is not None\nprint('ok')"
    run = subprocess.run([sys.executable, "-c", snippet + check], env={**_clean_env(), **_pull_env(hubs, tmp_path / "reader")},
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr


def test_a_second_push_of_the_same_directory_commits_nothing_and_says_so(env, tmp_path, capsys):
    checkpoint = tiny_gan(seed=12).save(tmp_path / "twice")
    assert main(["push", str(checkpoint), f"{ORG}/twice"]) == 0
    first = capsys.readouterr()
    repo = env["writer"].repo_path(f"{ORG}/twice")
    head = _git(repo, "rev-parse", "main").strip()
    assert main(["push", str(checkpoint), f"{ORG}/twice"]) == 0
    second = capsys.readouterr()
    assert _git(repo, "rev-parse", "main").strip() == head  # no new commit
    assert _one_line(second.err) == f"note: {ORG}/twice@main already holds exactly these files; nothing was committed"
    assert second.out == first.out  # the same commit URL
    uploads = [p for m, p in env["writer"].requests if m == "PUT" and p.startswith(f"/{ORG}/twice.git/")]
    assert len(uploads) == 3  # weights and grid were uploaded once, by the first push only


def test_push_to_a_branch_creates_it_and_pulls_by_revision(env, tmp_path, capsys, monkeypatch):
    from huggingface_hub import ModelCard

    gan = tiny_gan(seed=13)
    gan.config["lineage"] = [{"registry": "afhqcat-stylegan2-512", "recipe": "freezed"}]
    gan.config["metrics"] = {"fid": 12.5}
    checkpoint = gan.save(tmp_path / "finetuned")
    assert main(["push", str(checkpoint), f"{ORG}/finetuned", "--revision", "v1", "--no-samples"]) == 0
    repo = env["writer"].repo_path(f"{ORG}/finetuned")
    assert _git(repo, "log", "--format=%s", "main").splitlines() == ["initial commit"]  # main untouched
    assert ("POST", f"/api/models/{ORG}/finetuned/branch/v1") in env["writer"].requests
    files = env["writer"].committed_files(f"{ORG}/finetuned", "v1")
    assert "samples.png" not in files and all(files[n] == (checkpoint / n).read_bytes() for n in WEIGHTS)
    card = ModelCard(files["README.md"].decode())
    assert card.data.base_model == "ganzoo/afhqcat-stylegan2-512"
    assert card.data.eval_results[0].metric_type == "fid" and card.data.eval_results[0].metric_value == 12.5
    capsys.readouterr()
    monkeypatch.setenv("HF_ENDPOINT", env["olah"].url)
    pulled = hub.pull_checkpoint(f"{ORG}/finetuned", revision="v1")
    assert pulled.path.name == _git(repo, "rev-parse", "v1").strip()
    assert all((pulled.path / n).read_bytes() == (checkpoint / n).read_bytes() for n in WEIGHTS)


def test_a_private_push_needs_a_token_to_be_seen(env, tmp_path, capsys, monkeypatch):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    checkpoint = tiny_gan(seed=14).save(tmp_path / "secret")
    assert main(["push", str(checkpoint), f"{ORG}/secret", "--private", "--no-samples"]) == 0
    capsys.readouterr()
    writer = env["writer"]
    assert HfApi(endpoint=writer.url, token=TOKEN).model_info(f"{ORG}/secret").private is True
    with pytest.raises(RepositoryNotFoundError) as info:
        HfApi(endpoint=writer.url, token=False).model_info(f"{ORG}/secret")
    assert info.value.response.status_code == 401
    # Writing needs a (valid) token: one line, exit 1.
    monkeypatch.delenv("HF_TOKEN")
    assert main(["push", str(checkpoint), f"{ORG}/secret", "--no-samples"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: push to {ORG}/secret on {writer.url}: HTTP 401") and "token" in line
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token")
    assert main(["push", str(checkpoint), f"{ORG}/secret", "--no-samples"]) == 1
    assert "Invalid credentials" in _one_line(capsys.readouterr().err)


def test_push_without_network_is_one_line_and_exit_1_in_a_real_process(tmp_path):
    checkpoint = tiny_gan(seed=15).save(tmp_path / "offline")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    run = _cli(["push", str(checkpoint), f"{ORG}/offline", "--no-samples"], HF_ENDPOINT=url, HF_TOKEN=TOKEN,
               HF_HOME=str(tmp_path / "hf"))  # fmt: skip
    assert run.returncode == 1 and run.stdout == ""
    line = _one_line(run.stderr)
    assert line.startswith(f"error: push to {ORG}/offline: {url} unreachable") and "Traceback" not in run.stderr


# ------------------------------------------------------------------------------------------------
# The maintainers' publishing script, for real (no --dry-run), against the write server


def test_publish_zoo_publishes_an_entry_with_its_features(env, tmp_path, monkeypatch):
    from huggingface_hub import hf_hub_download

    script = Path(__file__).resolve().parents[1] / "scripts" / "publish_zoo.py"
    out = tmp_path / "zoo"
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    # No HF_HUB_DISABLE_XET: both commits (ganzoo.push, then the features) turn Xet off themselves.
    process_env.update(HF_ENDPOINT=env["writer"].url, HF_TOKEN=TOKEN,
                       HF_HOME=str(tmp_path / "publisher"), HF_HUB_DISABLE_PROGRESS_BARS="1",
                       GANZOO_REGISTRY_PATH=str(env["registry"]), GANZOO_CACHE=str(tmp_path / "publisher-cache"))  # fmt: skip
    run = subprocess.run([sys.executable, str(script), "--only", ZOO_ENTRY, "--out", str(out), "--seeds", "4",
                          "--features", ZOO_FEATURES, "--num-gen", "8"],
                         env=process_env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "publishing: 1 entries" in run.stdout and f"{ZOO_ENTRY}: pushed {env['writer'].url}/{ZOO_REPO}/commit/" in run.stdout
    assert [path for path, _range in env["files"].requests if path == "/tiny32-snapshot.pkl"]  # downloaded from upstream
    report = json.loads((out / "publish-report.json").read_text())[0]
    assert report["pushed"] is True and report["parity_max_abs_diff"] == 0
    features = f"features/{ZOO_FEATURES}.safetensors"
    assert report["features"] == [features]

    repo = env["writer"].repo_path(ZOO_REPO)
    log = _git(repo, "log", "--format=%s", "main").splitlines()
    assert log[0].startswith("ganzoo: sample and source-dataset features") and log[1].startswith(f"ganzoo: {ZOO_ENTRY} converted from")
    assert len(log) == 3  # initial, checkpoint, features
    assert _git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "main").split() == [features]
    fsck = subprocess.run(["git", "fsck", "--strict", "--full"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr

    # Read back through olah: the checkpoint pulls verified, the features file is byte-identical.
    monkeypatch.setenv("HF_ENDPOINT", env["olah"].url)
    monkeypatch.setenv("GANZOO_REGISTRY_PATH", str(env["registry"]))
    pulled = hub.pull_checkpoint(ZOO_ENTRY)
    assert pulled.origin == "hub" and pulled.repo_id == ZOO_REPO
    for name in WEIGHTS:
        assert (pulled.path / name).read_bytes() == (out / ZOO_ENTRY / name).read_bytes()
    got = hf_hub_download(ZOO_REPO, features, endpoint=env["olah"].url, cache_dir=str(tmp_path / "hf" / "hub"))
    assert Path(got).read_bytes() == (out / ZOO_ENTRY / features).read_bytes()
    assert ganzoo.load(ZOO_ENTRY).G_ema.img_resolution == 32


# ------------------------------------------------------------------------------------------------
# The write server's answers to what the client sends (errors included)


@pytest.fixture
def api(env, monkeypatch):
    from huggingface_hub import HfApi
    from huggingface_hub import constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    return HfApi(endpoint=env["writer"].url, token=TOKEN)


def test_existing_repo_and_branch_are_409(api):
    from huggingface_hub.errors import HfHubHTTPError

    api.create_repo(f"{ORG}/conflicts")
    with pytest.raises(HfHubHTTPError) as info:
        api.create_repo(f"{ORG}/conflicts")
    assert info.value.response.status_code == 409
    assert api.create_repo(f"{ORG}/conflicts", exist_ok=True).endswith(f"/{ORG}/conflicts")
    api.create_branch(f"{ORG}/conflicts", branch="dev")
    with pytest.raises(HfHubHTTPError) as info:
        api.create_branch(f"{ORG}/conflicts", branch="dev")
    assert info.value.response.status_code == 409
    api.create_branch(f"{ORG}/conflicts", branch="dev", exist_ok=True)
    assert sorted(b.name for b in api.list_repo_refs(f"{ORG}/conflicts").branches) == ["dev", "main"]


def test_a_commit_on_a_moved_parent_is_412_and_changes_nothing(api):
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = f"{ORG}/race"
    api.create_repo(repo_id)
    start = api.model_info(repo_id).sha
    first = api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"first")], commit_message="first", parent_commit=start)
    with pytest.raises(HfHubHTTPError) as info:
        api.create_commit(repo_id, [CommitOperationAdd("b.txt", b"second")], commit_message="second", parent_commit=start)
    assert info.value.response.status_code == 412
    assert api.model_info(repo_id).sha == first.oid


def test_unknown_repo_revision_and_missing_file_are_404(api):
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import (
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{ORG}/nothing-here")
    api.create_repo(f"{ORG}/lookups")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(f"{ORG}/lookups", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.create_commit(f"{ORG}/lookups", [CommitOperationAdd("a.txt", b"a")], commit_message="m", revision="nope")
    with pytest.raises(RemoteEntryNotFoundError):
        api.create_commit(f"{ORG}/lookups", [CommitOperationDelete("missing.txt")], commit_message="m")


def test_lfs_objects_are_checked_before_they_are_stored_or_committed(api, env):
    repo_id = f"{ORG}/lfs-checks"
    api.create_repo(repo_id)
    writer = env["writer"]
    data = b"\0weights" * 100
    oid = _sha256(data)
    request = urllib.request.Request(f"{writer.url}/{repo_id}.git/info/lfs/objects/batch", method="POST",
                                     data=json.dumps({"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
                                                      "objects": [{"oid": oid, "size": len(data)}]}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/vnd.git-lfs+json"})  # fmt: skip
    with urllib.request.urlopen(request) as response:
        (obj,) = json.loads(response.read())["objects"]
    href = obj["actions"]["upload"]["href"]

    def put(url: str, body: bytes) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, method="PUT")) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert put(href, data[:-1] + b"x") == 400  # content differs from the oid
    assert put(href.replace("signature=", "signature=0"), data) == 403  # the URL's signature is checked
    assert not (writer.repo_path(repo_id) / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
    commit = "\n".join(json.dumps(line) for line in [
        {"key": "header", "value": {"summary": "refers to an object never uploaded"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(data)}},
    ]).encode()  # fmt: skip
    request = urllib.request.Request(f"{writer.url}/api/models/{repo_id}/commit/main", data=commit, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 422
    assert put(href, data) == 200
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["commitOid"] == api.model_info(repo_id).sha
    assert writer.committed_files(repo_id)["w.bin"] == data
    pointer = subprocess.run(["git", "cat-file", "blob", "main:w.bin"], cwd=writer.repo_path(repo_id), capture_output=True).stdout
    assert pointer == lfs_pointer(oid, len(data))


def test_xet_uploads_are_refused_and_ganzoo_push_does_not_send_them(env, tmp_path, monkeypatch, capsys):
    """With Xet on (hf_xet installed, HF_HUB_DISABLE_XET unset) the client asks for a Xet write
    token, which a self-hosted server cannot give; ganzoo push turns Xet off for such endpoints."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.utils._runtime import is_xet_available

    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", False)
    if not is_xet_available():
        pytest.skip("hf_xet is not installed: the client uploads through Git LFS anyway")
    api = HfApi(endpoint=env["writer"].url, token=TOKEN)
    api.create_repo(f"{ORG}/xet")
    with pytest.raises(Exception, match="501|Xet"):
        api.create_commit(f"{ORG}/xet", [CommitOperationAdd("w.safetensors", b"\0" * 64)], commit_message="m")
    assert ("GET", f"/api/models/{ORG}/xet/xet-write-token/main") in env["writer"].requests
    checkpoint = tiny_gan(seed=16).save(tmp_path / "xet")
    assert main(["push", str(checkpoint), f"{ORG}/xet", "--no-samples"]) == 0
    assert hf_constants.HF_HUB_DISABLE_XET is False  # restored after the push
    assert env["writer"].committed_files(f"{ORG}/xet")["generator.safetensors"] == (checkpoint / "generator.safetensors").read_bytes()
    assert hub.takes_xet_uploads("https://huggingface.co") and not hub.takes_xet_uploads(env["writer"].url)


def test_an_invalid_card_is_refused_before_any_upload(env, tmp_path, monkeypatch):
    checkpoint = tiny_gan(seed=17).save(tmp_path / "card")
    upload = publish.prepare_upload(checkpoint, samples=False)
    monkeypatch.setattr(hub.pushing, "render_card", lambda *args, **kwargs: "---\nlicense: [unclosed\n---\ntext\n")
    before = len(env["writer"].requests)
    with pytest.raises(DownloadError, match="Invalid metadata in README.md.*HTTP 400"):
        hub.push(upload, f"{ORG}/card")
    assert ("POST", "/api/validate-yaml") in env["writer"].requests[before:]
    assert not [p for m, p in env["writer"].requests[before:] if m == "PUT" or "/commit/" in p or "/preupload/" in p]


# ------------------------------------------------------------------------------------------------
# What Hub users expect: card metadata, huggingface_hub's method names, timm's hf-hub: prefix


def test_card_metadata_is_what_the_hub_uses():
    from huggingface_hub import ModelCard

    gan = tiny_gan(seed=18)
    gan.config["lineage"] = [{"registry": "afhqcat-stylegan2-512", "recipe": "freezed"}]
    gan.config["training"] = {"recipe": "freezed"}
    gan.config["metrics"] = {"fid": 12.5, "kid": 0.0123, "recall": 0.41}
    card = ModelCard(str(hub.render_card(gan.config, repo_id="me/cats")))
    data = card.data
    assert data.library_name == "ganzoo" and data.pipeline_tag == "unconditional-image-generation"
    assert {"gan", "stylegan2", "freezed", "unconditional-image-generation"} <= set(data.tags)
    assert data.datasets == ["afhq-cat"] and data.base_model == "ganzoo/afhqcat-stylegan2-512"
    assert {(r.metric_type, r.metric_value) for r in data.eval_results} == {("fid", 12.5), ("kid", 0.0123), ("recall", 0.41)}
    assert data.license == "cc-by-4.0"
    assert 'ganzoo.load("me/cats")' in card.text and 'ganzoo.GAN.from_pretrained("me/cats")' in card.text

    conditional = tiny_gan(c_dim=3, seed=19)
    conditional.config["license"] = "Nvidia Source Code License-NC"
    data = ModelCard(str(hub.render_card(conditional.config, repo_id="me/classes"))).data
    assert data.pipeline_tag == "unconditional-image-generation" and "class-conditional" in data.tags
    assert "unconditional-image-generation" not in data.tags and not data.eval_results
    assert data.license == "other" and data.license_name == "nvidia-source-code-license-nc"


def test_card_snippet_of_a_conditional_model_runs_as_written(tmp_path):
    checkpoint = tiny_gan(c_dim=3, seed=20).save(tmp_path / "classes")
    config = json.loads((checkpoint / "config.json").read_text())
    card = str(hub.render_card(config, name=str(checkpoint)))
    snippet = _python_block(card)
    assert f'ganzoo.load("{checkpoint}")' in snippet and 'class_idx="class0"' in snippet
    namespace: dict = {}
    exec(compile(snippet, "card", "exec"), namespace)  # the card's own snippet, as a reader runs it
    assert namespace["images"].shape == (16, 16, 16, 3)


def test_from_pretrained_push_to_hub_and_hf_hub_prefix_are_load_and_push(env, monkeypatch, tmp_path):
    import numpy as np

    from ganzoo.checkpoint import GAN
    from ganzoo.errors import GanzooError, UnknownModelError

    first, second = tiny_gan(seed=21), tiny_gan(seed=22)
    url = first.push_to_hub(f"{ORG}/mixin", samples=False)
    assert url.startswith(f"{env['writer'].url}/{ORG}/mixin/commit/")
    second.push_to_hub(f"{ORG}/mixin", revision="v2", commit_message="second network")
    repo = env["writer"].repo_path(f"{ORG}/mixin")
    assert _git(repo, "log", "--format=%s", "-1", "v2").strip() == "second network"
    assert "samples.png" in env["writer"].committed_files(f"{ORG}/mixin", "v2")

    monkeypatch.setenv("HF_ENDPOINT", env["olah"].url)
    seeds = [0, 1, 2]
    for loaded, expected in [
        (GAN.from_pretrained(f"{ORG}/mixin"), first),
        (ganzoo.load(f"hf-hub:{ORG}/mixin"), first),
        (GAN.from_pretrained(f"{ORG}/mixin", revision="v2"), second),
        (ganzoo.load(f"hf-hub:{ORG}/mixin@v2"), second),
        (ganzoo.GAN.from_pretrained(f"hf-hub:{ORG}/mixin", revision="v2"), second),
    ]:
        assert np.array_equal(loaded.sample(seeds=seeds), expected.sample(seeds=seeds))
    with pytest.raises(UnknownModelError, match="hf-hub: takes a Hub repo id"):
        ganzoo.load("hf-hub:cat")
    with pytest.raises(GanzooError, match="give one"):
        ganzoo.load(f"hf-hub:{ORG}/mixin@v2", revision="main")
    local = first.save(tmp_path / "local")
    with pytest.raises(GanzooError, match="no revision"):
        GAN.from_pretrained(local, revision="v2")
    with pytest.raises(GanzooError, match="org/name"):
        first.push_to_hub("not-a-repo-id")
