"""Writing a synthetic data set to disk: PNGs in a folder or a zip, atomically, with workers.

Workers render and PNG-encode chunks of consecutive images; the parent writes them in index
order. Since image ``i`` depends only on ``(kind, options, seed, i)``, the encoder is deterministic and zip
entries carry a fixed timestamp, the output has the same bytes for any number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import struct
import zipfile
import zlib
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from ganzoo._io import atomic_directory, atomic_path, check_output
from ganzoo.errors import DatasetError, GanzooError
from ganzoo.synth._spec import check_options
from ganzoo.synth._render import check_resolution, render

_CHUNK = 16                      # images per worker task
MAX_IMAGES = 10**8               # 100 million: beyond any pretraining set, a guard against a typo
MAX_WORKERS = 256                # processes; each holds a rendered image at a time (check_resolution)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: same bytes on every run
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Suffixes of files synth does not write: refused, rather than made a folder of that name.
_NOT_WRITTEN = frozenset({".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz2", ".txz", ".gz", ".bz2",
                          ".xz", ".zst", ".7z", ".rar", ".png", ".jpg", ".jpeg", ".npy", ".npz", ".h5", ".hdf5"})  # fmt: skip


def png_bytes(image: np.ndarray) -> bytes:
    """A PNG file of an RGB image ``[H, W, 3]`` uint8: every row "Up"-filtered, zlib level 1.

    Twice as fast as PIL's encoder, whose adaptive filter choice tries five filters on every row,
    for the same size on these images (the Up filter suits their flat shapes and smooth noise).
    """
    height, width, _ = image.shape
    rows = image.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2                                  # filter type "Up": the byte above is subtracted
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"".join([_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 1)), _png_chunk(b"IEND", b"")])  # fmt: skip


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_chunk(kind: str, start: int, stop: int, resolution: int, seed: int,
                 options: dict[str, Any] | None = None) -> list[bytes]:  # fmt: skip
    """PNG bytes of images ``start .. stop-1`` (a worker task; module level, so spawn can pickle it).

    ``options``: :func:`ganzoo.synth.render`'s keyword options (``color``, ``shapes``).
    """
    return [png_bytes(image) for image in render(kind, range(start, stop), resolution, seed, **(options or {}))]


def _chunks(kind: str, n: int, resolution: int, seed: int, options: dict[str, Any], executor: Executor | None,
            in_flight: int) -> Iterator[list[bytes]]:  # fmt: skip
    """Encoded chunks in order; with an executor, at most ``in_flight`` chunks are pending."""
    bounds = [(start, min(start + _CHUNK, n)) for start in range(0, n, _CHUNK)]
    if executor is None:
        for start, stop in bounds:
            yield encode_chunk(kind, start, stop, resolution, seed, options)
        return
    pending: deque[Future] = deque()
    for start, stop in bounds:
        pending.append(executor.submit(encode_chunk, kind, start, stop, resolution, seed, options))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def write(kind: str, n: int, resolution: int, out: str | os.PathLike, seed: int = 0, workers: int = 1,
          progress: bool = True, overwrite: bool = False, *, color: str | None = None,
          shapes: str | Sequence[str] | None = None) -> Path:  # fmt: skip
    """Writes images ``0 .. n-1`` of a synthetic kind as PNGs ``00000000.png, …``.

    Args:
        kind: one of :data:`ganzoo.synth.KINDS`.
        n: number of images.
        resolution: image side in pixels.
        out: a folder, or a file ending in ``.zip`` (flat layout, readable by
            :class:`ganzoo.data.ImageDataset` and StyleGAN2-ADA's ``dataset_tool``/training).
            It appears only when complete; nothing is left behind on error or Ctrl-C.
        seed: the data set's seed.
        workers: processes that render and encode (spawned; 1 = in this process). The bytes
            written do not depend on it. A script calling this with workers > 1 needs the usual
            ``if __name__ == "__main__":`` guard (spawned workers import the script).
        progress: show a rich progress bar with the rate and the time left.
        overwrite: replace an existing ``out`` (only once the new one is complete).
        color: pinknoise, primitives-ps: ``"per-channel"`` (default) or ``"correlated"``.
        shapes: primitives kinds: shape types from :data:`ganzoo.synth.SHAPES` (default the
            paper's four). See :func:`ganzoo.synth.render`.

    Returns:
        ``out`` as a path.

    Raises:
        DatasetError: an unknown kind or option, a bad count, resolution, seed or worker count.
        GanzooError: ``out`` exists (and is not an empty folder) and ``overwrite`` is not set, has
            the suffix of another format (``.tar``, ``.png``, ...), or cannot be written.
    """
    options = check_options(kind, color=color, shapes=shapes)
    check_resolution(resolution, workers)
    if n < 1 or workers < 1 or seed < 0:
        raise DatasetError(f"synth: need n >= 1, workers >= 1 and seed >= 0 (got n={n}, workers={workers}, seed={seed})")
    if n > MAX_IMAGES:
        raise DatasetError(f"synth: --n {n}: at most {MAX_IMAGES:,} images in one data set")
    if workers > MAX_WORKERS:
        raise DatasetError(f"synth: --workers {workers}: at most {MAX_WORKERS} (this machine has {os.cpu_count()} cores)")
    out = Path(out)
    is_zip = out.suffix.lower() == ".zip"
    other = next((s for s in ("".join(out.suffixes[-2:]).lower(), out.suffix.lower()) if s in _NOT_WRITTEN), None)
    if other is not None:
        raise GanzooError(f"{out}: synth writes a folder or a .zip, not a {other} file (use DIR or FILE.zip)")
    # Before the work: a missing or empty folder (non-empty: --overwrite), or a .zip that can be written.
    check_output(out, "file" if is_zip else "dir", suffixes=(".zip",) if is_zip else (), overwrite=overwrite)
    width = max(8, len(str(n - 1)))
    executor = None
    if workers > 1:
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        with _progress_bar(progress) as bar, contextlib.ExitStack() as stack:
            task = bar.add_task(f"{kind} {resolution}px", total=n)
            if is_zip:
                tmp = stack.enter_context(atomic_path(out))
                archive = stack.enter_context(zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED))

                def put(name: str, data: bytes) -> None:
                    archive.writestr(zipfile.ZipInfo(name, _ZIP_DATE), data)
            else:
                tmp = stack.enter_context(atomic_directory(out, overwrite=overwrite))

                def put(name: str, data: bytes) -> None:
                    (tmp / name).write_bytes(data)

            index = 0
            for chunk in _chunks(kind, n, resolution, seed, options, executor, in_flight=2 * workers):
                for data in chunk:
                    put(f"{index:0{width}d}.png", data)
                    index += 1
                bar.advance(task, len(chunk))
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return out


class _ImagesPerSecondColumn(ProgressColumn):
    """Images per second of the task."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.0f} img/s", style="progress.data.speed")


def _progress_bar(enabled: bool) -> Progress:
    """A rich bar on a terminal; elsewhere (logs, ``| tee``) a plain line every 10 % (and 30 s)."""
    from ganzoo import _console

    from ganzoo._progress import progress

    return progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _ImagesPerSecondColumn(),
                    TimeRemainingColumn(), console=_console.stdout, disable=not enabled, unit="images", rate_unit="img/s")  # fmt: skip
