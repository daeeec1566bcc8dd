"""``ganzoo push`` and ``ganzoo mirror``: checkpoints out to the Hub or a self-hosted mirror (logic in
:mod:`ganzoo.publish` and :mod:`ganzoo.hub`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganzoo.cli._common import say, wrote


def register(app: typer.Typer) -> None:
    app.command()(push)
    app.command()(mirror)


def push(
    checkpoint_dir: Path = typer.Argument(..., help="ganzoo checkpoint directory."),
    repo_id: str = typer.Argument(..., help="Hub repo id, org/name (created if needed)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created if needed)."),
    no_samples: bool = typer.Option(False, "--no-samples", help="Do not generate the samples grid for the card."),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Commit message."),
) -> None:
    """Upload a checkpoint directory to the Hub in one commit, with a model card and samples grid."""
    from ganzoo.publish import push as push_fn  # verifies and prepares the upload, then ganzoo.hub.push sends it

    url = push_fn(checkpoint_dir, repo_id, private=private, revision=revision, samples=not no_samples,
                  commit_message=message)  # fmt: skip
    say(f"pushed {checkpoint_dir} -> {url}")


def mirror(
    sources: list[str] = typer.Argument(..., help="Registry names, Hub repo ids or checkpoint directories."),
    to: Path = typer.Option(..., "--to", help="Mirror root: repos are written to TO/models/ORG/NAME (olah's mirrors-path)."),
    org: Optional[str] = typer.Option(None, "--org", help="Organisation to file them under (default: the registry's)."),
) -> None:
    """Write checkpoints as git repos for a self-hosted Hub mirror (air-gapped clusters)."""
    from ganzoo.hub.mirroring import mirror as mirror_fn

    for path in mirror_fn(sources, to, org=org):
        wrote(path)  # paths are copied: no line breaks
