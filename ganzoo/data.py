"""Image datasets: folders and zips of images -> uint8 ``[N, H, W, C]`` batches at one resolution.

A dataset is one of

* a folder, read recursively (``.png``, ``.jpg``/``.jpeg``, ``.webp``, ``.bmp``, any case);
* a ``.zip`` of such images, in any folder layout;
* a StyleGAN2-ADA dataset (zip or folder) with ``dataset.json``, whose ``labels`` become
  :attr:`ImageDataset.labels`.

Images are read in a deterministic order (relative paths sorted as POSIX strings), oriented by
their EXIF tag, converted to the channel count asked for (grayscale ``L``, ``RGB`` or ``RGBA``;
palette and 16-bit images are converted first), center-cropped to a square and resized with PIL's
Lanczos filter (``resize_filter="box"``, ``"bicubic"`` or ``"bilinear"`` on request; no resize
when the crop already has the resolution). They are streamed in batches: the whole set is never
in memory.

The set is judged as a whole, never by its first image: :meth:`ImageDataset.summary` reads every
file's header only (size, EXIF orientation, mode; no pixels, in folders and zips alike) and counts
the sizes and the grayscale and colour images. Without a resolution the set is read at its most
common center-crop side (the larger on a tie). :meth:`ImageDataset.notes` says in one line each
what a mixed set holds and what is done about it (``mydata: mixed image sizes: 90 of 64x64, 10 of
128x96; 10 center-cropped and resized to 64x64 (lanczos)``), and :meth:`ImageDataset.preparation`
records it for run and metric records.

Unreadable or truncated files follow one rule wherever a dataset is read (training, ``rank``,
``metrics``): a pass reads the whole set, then names them together, the count and the first ten
with the reason for each: in one warning when they are skipped, in one error
(:class:`~ganzoo.errors.DatasetError`) with ``strict=True`` (``--strict``). An empty set, or
fewer readable images than a consumer needs, raises ``DatasetError`` naming the path and the
count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ganzoo.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "RESIZE_FILTERS", "ImageDataset", "ImageSummary", "MixedImagesWarning",
           "UnreadableImagesWarning", "require_count"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
RESIZE_FILTERS = ("lanczos", "box", "bicubic", "bilinear")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Files named in one warning before "and N more": a listing must stay readable.
_LISTED_SKIPS = 10
# Image sizes listed in one line before "and N more sizes": the same.
_LISTED_SIZES = 4
# PIL modes read as grayscale; every other mode (RGB, RGBA, palette, CMYK, ...) counts as colour.
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class UnreadableImagesWarning(UserWarning):
    """Some files of a dataset could not be read and were skipped (the message lists them)."""


class MixedImagesWarning(UserWarning):
    """A dataset mixes image sizes or grayscale and colour images (the message counts them and
    says what is done about it)."""


@dataclass(frozen=True)
class ImageSummary:
    """What a dataset's image headers say, counted over every file (:meth:`ImageDataset.summary`).

    Attributes:
        sizes: ``(width, height)`` as shown (after the EXIF orientation) -> number of images.
        grayscale: images stored in a grayscale mode (``L``, ``LA``, ``1``, 16-bit, float).
        colour: images in any other mode (``RGB``, ``RGBA``, palette, ``CMYK``, ...).
        unreadable: files whose header could not be read (the reading pass reports them).
    """

    sizes: dict[tuple[int, int], int]
    grayscale: int
    colour: int
    unreadable: int

    @property
    def readable(self) -> int:
        return self.grayscale + self.colour

    def size_list(self) -> str:
        """``"90 of 64x64, 10 of 128x96"``: most common first, the first few, then how many more."""
        ordered = sorted(self.sizes.items(), key=lambda item: (-item[1], item[0]))
        text = ", ".join(f"{count} of {w}x{h}" for (w, h), count in ordered[:_LISTED_SIZES])
        rest = ordered[_LISTED_SIZES:]
        if rest:
            text += f" and {sum(count for _, count in rest)} in {len(rest)} other sizes"
        return text


def require_count(path: str | os.PathLike, count: int, needed: int, why: str) -> None:
    """Raises :class:`DatasetError` when a dataset has fewer than ``needed`` images.

    Args:
        path: the dataset, named in the message.
        count: how many images it has.
        needed: how many the consumer needs.
        why: what needs them, e.g. ``"precision/recall with k=3"``.
    """
    if count < needed:
        noun = "image" if count == 1 else "images"
        raise DatasetError(f"{path}: {count} {noun}, {why} needs at least {needed}")


def _pil_filter(name: str):
    from PIL import Image

    return {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX,
            "bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}[name]  # fmt: skip


class ImageDataset:
    """A folder or zip of images, read as uint8 ``[N, H, W, C]`` batches at one square resolution.

    Args:
        path: a folder (read recursively) or a ``.zip``; either may hold a StyleGAN2-ADA
            ``dataset.json`` with labels.
        resolution: output size in pixels (square). None: the most common center-crop side
            over all images' headers, the larger on a tie (every other image is resized to it).
        channels: 1 (grayscale), 3 (RGB) or 4 (RGBA).
        resize_filter: ``"lanczos"`` (default), ``"box"``, ``"bicubic"`` or ``"bilinear"``.
        strict: unreadable files are an error (naming them all, after the pass) instead of
            being skipped with a warning.
        max_images: use only the first this many files (in the deterministic order).

    Raises:
        DatasetError: the path does not exist, is not a folder or zip, or holds no image.

    Example:
        >>> data = ImageDataset("./cats", resolution=256)
        >>> for batch in data.iter_batches(64):   # uint8 [<=64, 256, 256, 3]
        ...     ...
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int | None = None,
        channels: int = 3,
        resize_filter: str = "lanczos",
        strict: bool = False,
        max_images: int | None = None,
    ):
        self.path = Path(path)
        if channels not in _MODES:
            raise DatasetError(f"{self.path}: channels must be 1, 3 or 4, not {channels}")
        if resize_filter not in RESIZE_FILTERS:
            raise DatasetError(f"{self.path}: unknown resize filter {resize_filter!r}; use one of {', '.join(RESIZE_FILTERS)}")
        if resolution is not None and resolution < 1:
            raise DatasetError(f"{self.path}: resolution must be >= 1, not {resolution}")
        if max_images is not None and max_images < 1:
            raise DatasetError(f"{self.path}: max_images must be >= 1, not {max_images}")
        self.channels = channels
        self.resize_filter = resize_filter
        self.strict = strict
        self._resolution = resolution
        self.skipped: list[str] = []  # files skipped by the last pass, with the reason
        self.skipped_names: set[str] = set()  # the same files' names
        self._summary: ImageSummary | None = None
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such folder or zip")
        if self.path.is_dir():
            self._zip_path = None
            names = sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())  # fmt: skip
        elif zipfile.is_zipfile(self.path):
            self._zip_path = self.path
            with zipfile.ZipFile(self.path) as archive:
                names = sorted(info.filename for info in archive.infolist()
                               if not info.is_dir() and Path(info.filename).suffix.lower() in IMAGE_SUFFIXES)  # fmt: skip
        else:
            raise DatasetError(f"{self.path}: not a folder or a zip of images")
        if not names:
            raise DatasetError(f"{self.path}: 0 images (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.names: list[str] = names[:max_images] if max_images else names
        self.labels: dict[str, object] | None = self._read_labels()

    # --------------------------------------------------------------------------------------------
    # Listing

    def __len__(self) -> int:
        """Number of image files (readable or not: unreadable ones are found while reading)."""
        return len(self.names)

    def __repr__(self) -> str:
        return f"ImageDataset({str(self.path)!r}, {len(self)} files, resolution={self._resolution}, channels={self.channels})"

    def _read_bytes(self, name: str, archive: zipfile.ZipFile | None) -> bytes:
        if archive is not None:
            return archive.read(name)
        return (self.path / name).read_bytes()

    def _read_labels(self) -> dict[str, object] | None:
        try:
            if self._zip_path is not None:
                with zipfile.ZipFile(self._zip_path) as archive:
                    if "dataset.json" not in archive.namelist():
                        return None
                    raw = archive.read("dataset.json")
            else:
                if not (self.path / "dataset.json").is_file():
                    return None
                raw = (self.path / "dataset.json").read_bytes()
            data = json.loads(raw)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{self.path}: unreadable dataset.json ({exc})") from None
        labels = data.get("labels") if isinstance(data, dict) else None
        if labels is None:
            return None
        if not isinstance(labels, list) or not all(isinstance(x, list) and len(x) == 2 for x in labels):
            raise DatasetError(f"{self.path}: dataset.json 'labels' must be a list of [file name, label] pairs")
        return {str(name).replace("\\", "/"): label for name, label in labels}

    def label(self, name: str) -> object | None:
        """The ``dataset.json`` label of an image (by its relative name), or None."""
        return None if self.labels is None else self.labels.get(name)

    # --------------------------------------------------------------------------------------------
    # Settings and identity

    @property
    def resolution(self) -> int:
        """The output resolution. When it was not given: the most common center-crop side (the
        shorter side) over every image's header, the larger on a tie (see :meth:`summary`)."""
        if self._resolution is None:
            sides: dict[int, int] = {}
            for (width, height), count in self.summary().sizes.items():
                sides[min(width, height)] = sides.get(min(width, height), 0) + count
            if not sides:
                raise DatasetError(f"{self.path}: 0 readable images out of {len(self.names)} files")
            self._resolution = max(sides, key=lambda side: (sides[side], side))
        return self._resolution

    def summary(self) -> ImageSummary:
        """Sizes and grayscale/colour counts of every image, from the headers only (no pixels are
        decoded; zips are read member by member). Computed once per dataset object."""
        if self._summary is None:
            sizes: dict[tuple[int, int], int] = {}
            counts = {True: 0, False: 0, None: 0}  # grayscale, colour, unreadable
            workers = max(1, min(4, os.cpu_count() or 1))  # headers: file-system latency, not CPU
            with self._open_archive() as archive, ThreadPoolExecutor(max_workers=workers) as pool:
                for header in pool.map(lambda name: self._header(name, archive), self.names):
                    if header is None:
                        counts[None] += 1
                        continue
                    size, gray = header
                    sizes[size] = sizes.get(size, 0) + 1
                    counts[gray] += 1
            self._summary = ImageSummary(sizes, counts[True], counts[False], counts[None])
        return self._summary

    def _header(self, name: str, archive: zipfile.ZipFile | None) -> tuple[tuple[int, int], bool] | None:
        """``((width, height) as shown, grayscale)`` from one file's header, or None if unreadable."""
        from PIL import Image

        try:
            f = archive.open(name) if archive is not None else open(self.path / name, "rb")
            with f, Image.open(f) as image:
                width, height = image.size
                # The generic getexif: PNG's own decodes the whole image when the eXIf chunk is late.
                if Image.Image.getexif(image).get(0x0112, 1) in (5, 6, 7, 8):  # transposed orientations
                    width, height = height, width
                return (width, height), image.mode in _GRAY_MODES
        except Exception:  # noqa: BLE001 - unreadable files are reported (or refused) by the reading pass
            return None

    def notes(self) -> list[str]:
        """One line for each way the set is mixed (sizes; grayscale and colour), with the counts
        and what reading does about it; empty for a uniform set."""
        summary, notes = self.summary(), []
        if len(summary.sizes) > 1:
            side = self.resolution
            changed = {size: n for size, n in summary.sizes.items() if size != (side, side)}
            cropped = any(w != h for w, h in changed)
            resized = any(min(w, h) != side for w, h in changed)
            done = " and ".join(word for word, flag in (("center-cropped", cropped), ("resized", resized)) if flag)
            notes.append(f"{self.path}: mixed image sizes: {summary.size_list()}; {sum(changed.values())} {done} "
                         f"to {side}x{side}" + (f" ({self.resize_filter})" if resized else ""))  # fmt: skip
        if summary.grayscale and summary.colour:
            if self.channels == 1:
                count, kind, done = summary.colour, "colour", "converted to grayscale"
            else:
                count, kind, done = summary.grayscale, "grayscale", f"repeated to {_MODES[self.channels]}"
            which = f"the {kind} one is" if count == 1 else f"the {count} {kind} ones are"
            notes.append(f"{self.path}: mixed channels: {summary.grayscale} grayscale and {summary.colour} colour "
                         f"images; {which} {done}")  # fmt: skip
        return notes

    def preparation(self) -> dict:
        """What reading does to the images, for records (``run.json``, metric results).

        ``resampled``: whether any image is center-cropped or resized; when it is,
        ``resampled_from`` (each changed image size ``"WxH"`` -> count) and ``resize_filter``.
        ``converted`` when images change kind: ``{"grayscale": N}`` (repeated to RGB/RGBA) or
        ``{"colour": N}`` (converted to grayscale).
        """
        summary, side = self.summary(), self.resolution
        changed = {f"{w}x{h}": n for (w, h), n in sorted(summary.sizes.items()) if (w, h) != (side, side)}
        record: dict = {"resampled": bool(changed)}
        if changed:
            record.update(resampled_from=changed, resize_filter=self.resize_filter)
        kind, count = ("colour", summary.colour) if self.channels == 1 else ("grayscale", summary.grayscale)
        if count:
            record["converted"] = {kind: count}
        return record

    def settings(self) -> dict:
        """How images are turned into arrays: part of every cache key built on this dataset."""
        return {"resolution": self.resolution, "channels": self.channels, "resize_filter": self.resize_filter,
                "crop": "center-square", "exif_transpose": True, "files": len(self.names)}  # fmt: skip

    def content_hash(self) -> str:
        """sha256 over the image files' relative names and bytes (a zip: its whole file).

        Two datasets with the same images under the same names hash the same wherever they
        live; any changed, added or removed image changes the hash.
        """
        digest = hashlib.sha256()
        if self._zip_path is not None:
            digest.update(b"zip\0")
            digest.update("\n".join(self.names).encode())
            with open(self._zip_path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest()
        digest.update(b"folder\0")
        for name in self.names:
            file_digest = hashlib.sha256()
            with open(self.path / name, "rb") as f:
                while chunk := f.read(1 << 20):
                    file_digest.update(chunk)
            digest.update(name.encode() + b"\0" + file_digest.digest())
        return digest.hexdigest()

    # --------------------------------------------------------------------------------------------
    # Reading

    def _open_archive(self):
        import contextlib

        if self._zip_path is None:
            return contextlib.nullcontext(None)
        try:
            return zipfile.ZipFile(self._zip_path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{self.path}: unreadable zip ({exc})") from None

    def _decode(self, name: str, archive: zipfile.ZipFile | None):
        """Opens one image fully decoded, oriented, in the mode asked for (PIL image)."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            data = self._read_bytes(name, archive)
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()  # truncated or corrupt files fail here, not later
                image = ImageOps.exif_transpose(opened)
                return _convert_mode(image, self.channels)
        except UnidentifiedImageError:
            raise _Unreadable(f"{name} (not a recognised image)") from None
        except (OSError, ValueError, SyntaxError, zipfile.BadZipFile, Image.DecompressionBombError) as exc:
            raise _Unreadable(f"{name} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None

    def _load(self, name: str, archive: zipfile.ZipFile | None) -> np.ndarray | None:
        try:
            image = self._decode(name, archive)
        except _Unreadable as exc:
            self._unreadable[name] = str(exc)  # named with the others at the end of the pass
            return None
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        if (width, height) != (side, side):
            image = image.crop((left, top, left + side, top + side))
        resolution = self.resolution
        if side != resolution:
            image = image.resize((resolution, resolution), resample=_pil_filter(self.resize_filter))
        array = np.asarray(image, dtype=np.uint8)
        return array[:, :, None] if array.ndim == 2 else array

    def iter_batches(self, batch_size: int = 64, workers: int | None = None) -> Iterator[np.ndarray]:
        """Yields uint8 ``[B, H, W, C]`` batches in the dataset's order, unreadable files skipped.

        Args:
            batch_size: images per batch (the last batch may be smaller).
            workers: decoding threads (PIL releases the GIL while decoding); default: up to 4,
                at most the CPU count.

        Raises:
            DatasetError: ``strict`` and a file is unreadable, or no file is readable.
        """
        if batch_size < 1:
            raise DatasetError(f"{self.path}: batch_size must be >= 1, not {batch_size}")
        self._unreadable: dict[str, str] = {}  # filled by the decoding threads in any order
        _ = self.resolution  # resolved once here, not concurrently by the decoding threads
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        produced = 0
        with self._open_archive() as archive, ThreadPoolExecutor(max_workers=workers) as pool:
            # One ZipFile is shared by the threads: its reads are serialised by an internal lock.
            for start in range(0, len(self.names), batch_size):
                chunk = self.names[start : start + batch_size]
                arrays = [a for a in pool.map(lambda n: self._load(n, archive), chunk) if a is not None]
                if arrays:
                    produced += len(arrays)
                    yield np.stack(arrays)
        self.skipped_names = set(self._unreadable)
        self.skipped = [self._unreadable[name] for name in self.names if name in self._unreadable]  # the set's order
        self.report_unreadable(self.skipped, stacklevel=3)
        if produced == 0:
            raise DatasetError(f"{self.path}: 0 readable images out of {len(self.names)} files")

    def report_unreadable(self, skipped: list[str], stacklevel: int = 2) -> None:
        """The one rule for the unreadable files a pass found (``"name (reason)"`` each, in the
        dataset's order): nothing when there are none; else one line naming the count and the
        first ten, an error with ``strict``, a warning otherwise.

        Raises:
            DatasetError: ``strict`` and a file was unreadable.
        """
        if not skipped:
            return
        listed = ", ".join(skipped[:_LISTED_SKIPS])
        more = f" and {len(skipped) - _LISTED_SKIPS} more" if len(skipped) > _LISTED_SKIPS else ""
        if self.strict:
            raise DatasetError(f"{self.path}: {len(skipped)} unreadable file(s): {listed}{more} "
                               "(without --strict they are skipped with a warning)")  # fmt: skip
        warnings.warn(UnreadableImagesWarning(f"{self.path}: skipped {len(skipped)} unreadable file(s): {listed}{more}"),
                      stacklevel=stacklevel + 1)  # fmt: skip

    def read_all(self, batch_size: int = 64) -> np.ndarray:
        """Every image at once as uint8 ``[N, H, W, C]`` (small sets and tests only)."""
        return np.concatenate(list(self.iter_batches(batch_size)))


class _Unreadable(Exception):
    """One file could not be decoded (message: its name and the reason)."""


def _convert_mode(image, channels: int):
    """Converts any PIL mode to ``L``, ``RGB`` or ``RGBA``."""
    from PIL import Image

    target = _MODES[channels]
    if image.mode == target:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float grayscale: scale to 8 bits rather than clip at 255.
        array = np.asarray(image).astype(np.float64)
        scale = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(np.round(array / scale * 255.0), 0, 255).astype(np.uint8), "L")
        return image if target == "L" else image.convert(target)
    if image.mode == "P":
        # Palette transparency must go through RGBA (PIL warns and drops it otherwise).
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA") and target == "RGB":
        image = image.convert("RGBA")
    return image.convert(target)
