#!/usr/bin/env python
"""Maintainers' script: publish the registry's checkpoints to their Hugging Face Hub repos.

For each registry entry (or those named with ``--only``):

1. download the upstream artifact (resumable; size and sha256 checked where recorded),
2. convert it safely into a ganzoo checkpoint directory (no code from the file runs),
3. check the converted generator: a samples grid, and parity with the original file read by
   ganzoo's foreign-format reader (same seeds must give the same images),
4. render the model card from ``cards/model_card.md``,
5. push the directory to the entry's Hub repo in one commit.

``--dry-run`` does everything but the download and the push: it converts ``--fixture FILE`` in
place of each download and writes the result under ``--out``. CI runs it on a fixture. Entries
whose artifact needs a manual download are skipped unless ``--fixture`` (dry run) or
``--local-file NAME=PATH`` gives the file.

Usage::

    python scripts/publish_zoo.py --dry-run --fixture ../shared/fixtures/stylegan2-ada/tiny32/tiny32-snapshot.pkl \
        --only cifar10-stylegan2-32 --out /tmp/zoo
    HF_TOKEN=... python scripts/publish_zoo.py --only afhqcat-stylegan2-512 --out /data/zoo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


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
    args = parser.parse_args(argv)
    if args.dry_run and args.fixture is None:
        parser.error("--dry-run needs --fixture FILE (a foreign checkpoint standing in for the downloads)")
    return args


def publish_entry(entry, source_file: Path | None, out_dir: Path, dry_run: bool, private: bool, seeds: int) -> dict:
    """Runs the five steps for one entry; returns a JSON-able report."""
    import numpy as np

    from ganzoo import hub
    from ganzoo.checkpoint import GAN
    from ganzoo.convert import foreign_to_gan

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
            converted = hub.register_converted(source_file, entry.name)
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
    # Step 4: the card, as the push will render it.
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    card = hub.render_card(config, repo_id=entry.hub.repo, entry=entry, samples_file=hub.SAMPLES_NAME)
    (target / "README.md").write_text(str(card), encoding="utf-8")
    report["checkpoint"] = str(target)
    report["files"] = config["files"]
    # Step 5: push (skipped in a dry run).
    if dry_run:
        report["pushed"] = False
    else:
        report["commit_url"] = hub.push(target, entry.hub.repo, private=private, revision=entry.hub.revision,
                                        commit_message=f"ganzoo: {entry.name} converted from {entry.artifacts[0].url}")  # fmt: skip
        report["pushed"] = True
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from ganzoo.errors import GanzooError
    from ganzoo.registry import get_entry, list_models

    try:
        names = [get_entry(n).name for n in args.only] if args.only else list_models()
        local = {}
        for item in args.local_file:
            name, _, path = item.partition("=")
            local[get_entry(name).name] = Path(path)
        out_dir = args.out or Path(tempfile.mkdtemp(prefix="ganzoo-zoo-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        mode = "dry run (no download, no push)" if args.dry_run else "publishing"
        print(f"{mode}: {len(names)} entries -> {out_dir}")
        reports = []
        for name in names:
            entry = get_entry(name)
            source = args.fixture if args.dry_run else local.get(name)
            report = publish_entry(entry, source, out_dir, args.dry_run, args.private, args.seeds)
            reports.append(report)
            status = report.get("skipped") or ("pushed " + report["commit_url"] if report.get("pushed")
                                               else f"ready, parity exact, {len(report['files'])} files")  # fmt: skip
            print(f"  {name}: {status}")
        (out_dir / "publish-report.json").write_text(json.dumps(reports, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except GanzooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run from anywhere: make the checkout's ganzoo importable when it is not installed.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
