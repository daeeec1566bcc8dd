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

Unreadable or truncated files are skipped, and listed together in one warning at the end of a
pass; with ``strict=True`` the first one raises :class:`~ganzoo.errors.DatasetError`. An empty
set, or fewer readable images than a consumer needs, raises ``DatasetError`` naming the path and
the count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from ganzoo.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "RESIZE_FILTERS", "ImageDataset", "UnreadableImagesWarning", "require_count"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
RESIZE_FILTERS = ("lanczos", "box", "bicubic", "bilinear")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Files named in one warning before "and N more": a listing must stay readable.
_LISTED_SKIPS = 10


class UnreadableImagesWarning(UserWarning):
    """Some files of a dataset could not be read and were skipped (the message lists them)."""


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
        resolution: output size in pixels (square). None: the center-crop size of the first
            readable image (every later image is resized to it).
        channels: 1 (grayscale), 3 (RGB) or 4 (RGBA).
        resize_filter: ``"lanczos"`` (default), ``"box"``, ``"bicubic"`` or ``"bilinear"``.
        strict: raise on the first unreadable file instead of skipping it with a warning.
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
        """The output resolution (reads the first readable image when it was not given)."""
        if self._resolution is None:
            with self._open_archive() as archive:
                for name in self.names:
                    try:
                        image = self._decode(name, archive)
                    except _Unreadable:
                        continue
                    self._resolution = min(image.size)
                    break
                else:
                    raise DatasetError(f"{self.path}: 0 readable images out of {len(self.names)} files")
        return self._resolution

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
            if self.strict:
                raise DatasetError(f"{self.path}: cannot read {exc}") from None
            self.skipped.append(str(exc))
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
        self.skipped = []
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
        if self.skipped:
            listed = ", ".join(self.skipped[:_LISTED_SKIPS])
            more = f" and {len(self.skipped) - _LISTED_SKIPS} more" if len(self.skipped) > _LISTED_SKIPS else ""
            warnings.warn(UnreadableImagesWarning(
                f"{self.path}: skipped {len(self.skipped)} unreadable file(s): {listed}{more}"), stacklevel=2)  # fmt: skip
        if produced == 0:
            raise DatasetError(f"{self.path}: 0 readable images out of {len(self.names)} files")

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
