#!/usr/bin/env python
"""Maintainers' script: publish the registry's checkpoints to their Hugging Face Hub repos.

For each registry entry (or those named with ``--only``):

1. download the upstream artifact (resumable; size and sha256 checked where recorded),
2. convert it safely into a ganzoo checkpoint directory (no code from the file runs),
3. check the converted generator: a samples grid, and parity with the original file read by
   ganzoo's foreign-format reader (same seeds must give the same images),
4. with ``--features EXTRACTOR[,...]``: features of ``--num-gen N`` seeded samples
   (``features/EXTRACTOR.safetensors``, what ``ganzoo rank`` reads instead of sampling), and with
   ``--real-data NAME=DIR`` features of the entry's source dataset
   (``features/EXTRACTOR-real.safetensors``, what ``ganzoo rank --regime real`` reads),
5. render the model card from ``cards/model_card.md``,
6. push the directory to the entry's Hub repo in one commit, then the features in a second one;
   or, with ``--mirror DIR``, write it as a git repository of a self-hosted Hub mirror
   (``DIR/models/ORG/NAME``, olah's layout; the features again as a second commit).

``--dry-run`` does everything but the download and the push: it converts ``--fixture FILE`` in
place of each download and writes the result under ``--out`` (and ``--mirror``, when given). CI
runs it on a fixture. Entries whose artifact needs a manual download are skipped unless
``--fixture`` (dry run) or ``--local-file NAME=PATH`` gives the file. ``--random-weights``
(random-weight extractors, recorded in every feature file so that ``rank`` never mixes them with
pretrained ones) is for tests, and only with ``--dry-run`` or ``--mirror``.

Usage::

    python scripts/publish_zoo.py --dry-run --fixture ../shared/fixtures/stylegan2-ada/tiny32/tiny32-snapshot.pkl \
        --only cifar10-stylegan2-32 --out /tmp/zoo
    HF_TOKEN=... python scripts/publish_zoo.py --only afhqcat-stylegan2-512 --out /data/zoo \
        --features inception-fid --num-gen 1000 --real-data afhqcat-stylegan2-512=/data/afhq/train/cat
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

FEATURES_COMMIT = "ganzoo: sample and source-dataset features for ganzoo rank"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="no download, no push: convert --fixture instead")
    parser.add_argument("--fixture", type=Path, help="a foreign checkpoint standing in for every download (dry run)")
    parser.add_argument("--only", action="append", default=[], help="registry name or alias (repeatable)")
    parser.add_argument("--local-file", action="append", default=[], metavar="NAME=PATH",
                        help="an already downloaded artifact for NAME (e.g. a manual download)")
    parser.add_argument("--out", type=Path, help="where converted checkpoints go (default: a temporary folder)")
    parser.add_argument("--private", action="store_true", help="create the Hub repos private")
    parser.add_argument("--seeds", type=int, default=8, help="images in the parity check and samples grid")
    parser.add_argument("--features", default="", metavar="EXTRACTOR[,...]",
                        help="also publish features of samples for ganzoo rank (e.g. inception-fid)")
    parser.add_argument("--num-gen", type=int, default=None, metavar="N",
                        help="samples behind --features (default: ganzoo rank's default N, so default rankings use them)")
    parser.add_argument("--real-data", action="append", default=[], metavar="NAME=DIR",
                        help="the entry's source dataset (folder or zip): publish its --features for rank --regime real")
    parser.add_argument("--random-weights", action="store_true",
                        help="random-weight extractors (tests only; with --dry-run or --mirror, recorded in the files)")
    parser.add_argument("--mirror", type=Path, metavar="DIR",
                        help="write each entry as a git repo of a self-hosted Hub mirror (DIR/models/ORG/NAME) instead of pushing")
    args = parser.parse_args(argv)
    if args.dry_run and args.fixture is None:
        parser.error("--dry-run needs --fixture FILE (a foreign checkpoint standing in for the downloads)")
    args.features = [name.strip() for name in args.features.split(",") if name.strip()]
    if (args.num_gen is not None or args.real_data or args.random_weights) and not args.features:
        parser.error("--num-gen, --real-data and --random-weights go with --features EXTRACTOR[,...]")
    if args.random_weights and not (args.dry_run or args.mirror):
        parser.error("--random-weights is for tests: use it with --dry-run or --mirror, never for a push to the Hub")
    if args.num_gen is not None and args.num_gen < 1:
        parser.error("--num-gen must be at least 1")
    return args


def write_features(checkpoint: Path, extractors: Sequence[str], num_gen: int, real_data: Path | None,
                   allow_random_weights: bool) -> list[str]:  # fmt: skip
    """Writes ``features/`` into a checkpoint directory: sample features for each extractor and,
    with ``real_data``, source-dataset features; returns the written names inside the directory."""
    from ganzoo.ranking import real_features_name, sample_features_name, write_real_features, write_sample_features

    resolution = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))["generator"]["img_resolution"]
    written = []
    for extractor in extractors:
        name = sample_features_name(extractor)
        write_sample_features(checkpoint, checkpoint / name, extractor, num_gen=num_gen, progress=False,
                              allow_random_weights=allow_random_weights)  # fmt: skip
        written.append(name)
        if real_data is not None:
            name = real_features_name(extractor)
            write_real_features(real_data, checkpoint / name, extractor, resolution=resolution, progress=False,
                                allow_random_weights=allow_random_weights)  # fmt: skip
            written.append(name)
    return written


def push_features(checkpoint: Path, names: list[str], repo_id: str, revision: str | None) -> str:
    """Uploads the feature files to the entry's Hub repo in one commit; returns the commit URL.

    ``ganzoo.push`` uploads exactly the checkpoint (config.json, weights, card, samples grid);
    features are an addition for ``rank``, so they follow as a commit of their own.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    from ganzoo.errors import DownloadError
    from ganzoo.hub import hub_endpoint, lfs_uploads_for

    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint, library_name="ganzoo")
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(checkpoint / name)) for name in names]
    try:
        with lfs_uploads_for(endpoint):  # a self-hosted Hub takes Git LFS uploads, not Xet
            info = api.create_commit(repo_id, operations, commit_message=FEATURES_COMMIT, revision=revision, repo_type="model")
    except Exception as exc:  # noqa: BLE001 - any Hub failure: one line, the checkpoint itself is already pushed
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise DownloadError(f"features to {repo_id}: {lines[0] if lines else type(exc).__name__}") from None
    return info.commit_url


def mirror_entry(checkpoint: Path, names: list[str], mirror: Path) -> Path:
    """Writes the checkpoint as a git repo of a self-hosted Hub mirror (``ganzoo mirror``'s layout),
    then commits the feature files on top, as :func:`push_features` does on the Hub."""
    from ganzoo import hub
    from ganzoo.errors import GanzooError

    (repo,) = hub.mirror([str(checkpoint)], mirror)
    if not names:
        return repo
    for name in names:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint / name, repo / name)
    env = {**os.environ, "GIT_AUTHOR_NAME": "ganzoo", "GIT_AUTHOR_EMAIL": "ganzoo@localhost",
           "GIT_COMMITTER_NAME": "ganzoo", "GIT_COMMITTER_EMAIL": "ganzoo@localhost"}  # fmt: skip
    stamp = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible commits, as ganzoo mirror makes them
    if stamp and stamp.isdigit():
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{stamp} +0000"
    for args in (["add", "--", *names], ["commit", "-q", "-m", FEATURES_COMMIT]):
        run = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise GanzooError(f"{repo}: git {args[0]} failed: {(run.stderr.strip() or str(run.returncode)).splitlines()[-1]}")
    return repo


def publish_entry(entry, source_file: Path | None, out_dir: Path, dry_run: bool, private: bool, seeds: int,
                  features: Sequence[str] = (), num_gen: int | None = None, real_data: Path | None = None,
                  allow_random_weights: bool = False, mirror: Path | None = None) -> dict:  # fmt: skip
    """Runs the six steps for one entry; returns a JSON-able report."""
    import numpy as np

    from ganzoo import hub, publish
    from ganzoo.checkpoint import GAN
    from ganzoo.conversion import foreign_to_gan
    from ganzoo.ranking import DEFAULT_NUM_GEN

    report: dict = {"name": entry.name, "repo": entry.hub.repo}
    if source_file is None:
        artifact = entry.downloadable[0] if entry.downloadable else None
        if artifact is None:
            report["skipped"] = "manual download needed: " + (entry.artifacts[0].instructions if entry.artifacts else "no artifact")
            return report
        download_dir = out_dir / "_downloads"
        source_file = hub.download_url(artifact.url, download_dir / artifact.filename, size=artifact.size,
                                       sha256=artifact.sha256)  # fmt: skip
    report["source_file"] = str(source_file)
    report["source_sha256"] = hub.sha256_file(source_file)
    report["source_size"] = source_file.stat().st_size
    # Step 2: convert into the cache layout, then copy the directory to out_dir.
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("GANZOO_CACHE")
        os.environ["GANZOO_CACHE"] = cache
        try:
            converted = hub.register_converted(source_file, entry.name, stand_in=dry_run)
            target = out_dir / entry.name
            gan = GAN.load(converted)
            gan.save(target, overwrite=True)
        finally:
            if previous is None:
                os.environ.pop("GANZOO_CACHE", None)
            else:
                os.environ["GANZOO_CACHE"] = previous
    # Step 3: parity with the original file (read directly by the foreign reader) and a grid.
    class_idx = 0 if gan.G_ema.c_dim else None
    original = foreign_to_gan(source_file)
    ours = GAN.load(target).sample(seeds=range(seeds), class_idx=class_idx)
    theirs = original.sample(seeds=range(seeds), class_idx=class_idx)
    report["parity_max_abs_diff"] = int(np.abs(ours.astype(int) - theirs.astype(int)).max())
    if report["parity_max_abs_diff"] != 0:
        raise SystemExit(f"{entry.name}: converted generator differs from the original (max diff {report['parity_max_abs_diff']})")
    (target / hub.SAMPLES_NAME).write_bytes(hub.samples_png(target, seeds=range(seeds)))
    # Step 4: features for ganzoo rank (they record their extractor, random weights included).
    shutil.rmtree(target / "features", ignore_errors=True)  # nothing stale from an earlier run
    report["features"] = write_features(target, features, num_gen or DEFAULT_NUM_GEN, real_data, allow_random_weights)
    if report["features"]:
        report["features_num_gen"] = num_gen or DEFAULT_NUM_GEN
        report["features_random_weights"] = allow_random_weights
    # Step 5: the card, as the push will render it.
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    card = hub.render_card(config, repo_id=entry.hub.repo, entry=entry, samples_file=hub.SAMPLES_NAME)
    (target / "README.md").write_text(str(card), encoding="utf-8")
    report["checkpoint"] = str(target)
    report["files"] = config["files"]
    # Step 6: push (skipped in a dry run), or write the mirror repo.
    if mirror is not None:
        report["mirror_repo"] = str(mirror_entry(target, report["features"], mirror))
    if dry_run or mirror is not None:
        report["pushed"] = False
    else:
        report["commit_url"] = publish.push(target, entry.hub.repo, private=private, revision=entry.hub.revision,
                                            commit_message=f"ganzoo: {entry.name} converted from {entry.artifacts[0].url}")  # fmt: skip
        if report["features"]:
            report["features_commit_url"] = push_features(target, report["features"], entry.hub.repo, entry.hub.revision)
        report["pushed"] = True
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from ganzoo._io import atomic_write_text
    from ganzoo.errors import GanzooError
    from ganzoo.registry import get_entry, list_models

    try:
        names = [get_entry(n).name for n in args.only] if args.only else list_models()
        local = {}
        for item in args.local_file:
            name, _, path = item.partition("=")
            local[get_entry(name).name] = Path(path)
        real_data = {}
        for item in args.real_data:
            name, _, path = item.partition("=")
            if not path:
                raise GanzooError(f"--real-data {item!r}: give NAME=DIR")
            real_data[get_entry(name).name] = Path(path)
        unused = sorted(set(real_data) - set(names))
        if unused:
            raise GanzooError(f"--real-data for {', '.join(unused)}, which is not published in this run (see --only)")
        out_dir = args.out or Path(tempfile.mkdtemp(prefix="ganzoo-zoo-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        mode = "dry run (no download, no push)" if args.dry_run else "publishing"
        print(f"{mode}: {len(names)} entries -> {out_dir}")
        reports = []
        for name in names:
            entry = get_entry(name)
            source = args.fixture if args.dry_run else local.get(name)
            report = publish_entry(entry, source, out_dir, args.dry_run, args.private, args.seeds, features=args.features,
                                   num_gen=args.num_gen, real_data=real_data.get(name),
                                   allow_random_weights=args.random_weights, mirror=args.mirror)  # fmt: skip
            reports.append(report)
            status = report.get("skipped") or ("pushed " + report["commit_url"] if report.get("pushed")
                                               else f"ready, parity exact, {len(report['files'])} files")  # fmt: skip
            if report.get("features"):
                status += f", features: {', '.join(report['features'])}"
            if report.get("mirror_repo"):
                status += f", mirror repo {report['mirror_repo']}"
            print(f"  {name}: {status}")
        atomic_write_text(out_dir / "publish-report.json", json.dumps(reports, indent=2, sort_keys=True) + "\n")
    except GanzooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run from anywhere: make the checkout's ganzoo importable when it is not installed.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
