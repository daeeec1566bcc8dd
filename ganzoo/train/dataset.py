"""Training images: a folder of images (or tensors) in memory, and a reproducible sampler.

Few-shot and limited-data transfer targets (tens to tens of thousands of images) fit in memory
as uint8, which keeps sampling exact and cheap. ``ganzoo.data`` is the general dataset reader;
this module holds what training needs on top of it: the in-memory batch, x-flip mirroring,
the content hash recorded in the lineage, and a sampler whose order is a pure function of
``(seed, image counter)`` so a resumed run draws exactly the batches the uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganzoo.data import ImageDataset, MixedImagesWarning
from ganzoo.errors import DatasetError
from ganzoo.streams import ProceduralImages  # also imported from here (ganzoo.train.loop)

SYNTH_PREFIX = "synth:"


@dataclass
class TrainingImages:
    """Images ``[N, C, R, R]`` uint8 (in memory) with where they came from.

    Attributes:
        images: the images, uint8, NCHW.
        path: the folder (or a description of in-memory data).
        sha256: content hash of the source images (file names and bytes, or tensor bytes).
        mirror: whether x-flipped copies are added (index ``i >= N`` is image ``i - N`` flipped).
        labels: ``[N, c_dim]`` float labels, or None.
        resampled: whether any image was center-cropped or resized to the model resolution.
        notes: one line for each way the source set is mixed (sizes; grayscale and colour).
        preparation: what reading did besides, for the record: ``resampled_from`` (changed
            image sizes ``"WxH"`` -> count) and ``resize_filter``; ``converted`` (images whose
            kind changed: ``{"grayscale": N}`` or ``{"colour": N}``).
    """

    images: torch.Tensor
    path: str
    sha256: str
    mirror: bool = False
    labels: torch.Tensor | None = None
    resampled: bool = False
    notes: list[str] = field(default_factory=list)
    preparation: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0] * (2 if self.mirror else 1)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def get(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (uint8) and labels at dataset ``indices`` (mirrored indices flip)."""
        n = self.images.shape[0]
        base = indices % n
        imgs = self.images.index_select(0, base)
        flip = indices >= n
        if bool(flip.any()):
            imgs = torch.where(flip.reshape(-1, 1, 1, 1), imgs.flip(3), imgs)
        labels = self.labels.index_select(0, base) if self.labels is not None else None
        return imgs, labels

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def labels_at(self, indices: torch.Tensor) -> torch.Tensor | None:
        """Labels of dataset ``indices`` without reading the images."""
        if self.labels is None:
            return None
        return self.labels.index_select(0, indices % self.images.shape[0])

    def draw(self, seed: int, start: int, count: int) -> torch.Tensor:
        """Dataset indices of draws ``start .. start+count-1`` (see :func:`sample_indices`)."""
        return sample_indices(len(self), seed, start, count)

    def describe(self) -> dict:
        """The lineage record of the data."""
        return {"path": self.path, "sha256": self.sha256, "num_images": int(self.images.shape[0]),
                "mirror": self.mirror, "resolution": self.resolution, "resampled": self.resampled,
                **self.preparation}  # fmt: skip


def load_training_images(
    data: "str | os.PathLike | torch.Tensor | np.ndarray | TrainingImages | ProceduralImages",
    resolution: int,
    channels: int,
    resample: bool = False,
    mirror: bool = False,
    c_dim: int = 0,
    strict: bool = False,
) -> "TrainingImages | ProceduralImages":
    """Reads training images at the model's resolution.

    Args:
        data: a folder or zip of images (read by :class:`ganzoo.data.ImageDataset`), uint8
            images ``[N, C, H, W]`` (tensor or array) already in memory, or ``synth:KIND``
            (synthetic images made on the fly, :func:`ganzoo.synth.training_stream`); a
            :class:`TrainingImages` or :class:`ProceduralImages` passes through (size checked).
        resolution: the model resolution the images must have.
        channels: the model's image channels (1 = grayscale, 3 = RGB).
        resample: resize (center crop to square, then Lanczos) images of another size instead
            of refusing them. Every image's header is checked, not the first image's: without
            ``resample`` one image of another size (or not square) refuses the set, with the
            count of each size. Mixed sizes, or grayscale among colour images (converted to
            ``channels``), warn (:class:`~ganzoo.data.MixedImagesWarning`, one line each) and are
            recorded: :meth:`TrainingImages.describe` says whether and from which sizes images
            were resampled and how many were converted.
        mirror: add x-flipped copies.
        c_dim: the model's number of classes; labels are read from a StyleGAN2-ADA
            ``dataset.json`` (class indices) when it is > 0.
        strict: unreadable files are an error naming them all (``--strict``), not skipped
            with one warning that names them (:meth:`ganzoo.data.ImageDataset.report_unreadable`:
            the rule of every command that reads a dataset).

    Raises:
        DatasetError: no images, unreadable files with ``strict``, or a size that differs from
            ``resolution`` without ``resample``.
    """
    if isinstance(data, (TrainingImages, ProceduralImages)):
        if data.resolution != resolution or data.channels != channels:
            raise DatasetError(f"{data.path}: images are {data.channels}x{data.resolution}x{data.resolution}, the model needs {channels}x{resolution}x{resolution}")
        return data
    if isinstance(data, (str, os.PathLike)) and os.fspath(data).startswith(SYNTH_PREFIX):
        from ganzoo.synth import training_stream  # synthetic pretraining data, made on the fly

        return training_stream(os.fspath(data), resolution, channels)
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return _in_memory_images(data, resolution, channels, resample, mirror)
    return _folder_images(Path(data), resolution, channels, resample, mirror, c_dim, strict)


def _in_memory_images(data: torch.Tensor | np.ndarray, resolution: int, channels: int, resample: bool,
                      mirror: bool) -> TrainingImages:  # fmt: skip
    """uint8 images ``[N, C, H, W]`` already in memory, resized only with ``resample``."""
    images = torch.as_tensor(np.asarray(data) if isinstance(data, np.ndarray) else data)
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise DatasetError(f"in-memory data must be uint8 [N, C, H, W], got {images.dtype} {list(images.shape)}")
    images = images.contiguous()
    sha = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    path, resampled = "<in-memory>", False
    if images.shape[-2:] != (resolution, resolution) or images.shape[1] != channels:
        if not resample or images.shape[1] != channels:
            raise DatasetError(
                f"in-memory data is {list(images.shape[1:])}, the model needs [{channels}, {resolution}, {resolution}]"
                + ("" if images.shape[1] != channels else " (pass resolution to resample)")
            )
        images = _resize_tensor(images, resolution)
        resampled = True
    if images.shape[0] == 0:
        raise DatasetError("in-memory data: no images")
    return TrainingImages(images, path, sha, mirror=mirror, resampled=resampled)


def _folder_images(folder: Path, resolution: int, channels: int, resample: bool, mirror: bool,
                   c_dim: int, strict: bool) -> TrainingImages:  # fmt: skip
    """A folder or zip of images read whole, every header checked first (see :func:`load_training_images`)."""
    dataset = ImageDataset(folder, resolution=resolution, channels=channels, strict=strict)
    summary = dataset.summary()  # every image's header: the first image decides nothing alone
    if not resample and set(summary.sizes) - {(resolution, resolution)}:
        if len(summary.sizes) > 1:
            found = f"mixed image sizes: {summary.size_list()}"
        else:
            (width, height), = summary.sizes
            found = f"images are {width}x{height}"
        raise DatasetError(f"{folder}: {found}; the model is {resolution}x{resolution} "
                           f"(pass --resolution {resolution} to center-crop and resample the data)")  # fmt: skip
    notes = dataset.notes()
    for note in notes:
        warnings.warn(MixedImagesWarning(note), stacklevel=3)  # load_training_images' caller
    preparation = dataset.preparation()
    array = dataset.read_all()  # uint8 [N, H, W, C], sorted by name
    images = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    labels = _class_labels(dataset, folder, c_dim) if c_dim > 0 and dataset.labels is not None else None
    # "resampled" records whether any image was cropped or resized (and from which sizes), not
    # whether --resolution was asked for: images already at the resolution pass unchanged.
    return TrainingImages(images, str(folder), dataset.content_hash(), mirror=mirror, labels=labels,
                          resampled=preparation["resampled"], notes=notes,
                          preparation={k: v for k, v in preparation.items() if k != "resampled"})  # fmt: skip


def _class_labels(dataset: ImageDataset, folder: Path, c_dim: int) -> torch.Tensor:
    """One-hot labels ``[N, c_dim]`` from the dataset's ``dataset.json`` class indices."""
    classes = [dataset.label(name) for name in dataset.names if name not in dataset.skipped_names]
    if any(not isinstance(c, int) or not 0 <= c < c_dim for c in classes):
        raise DatasetError(f"{folder}: dataset.json labels must be class indices 0..{c_dim - 1} for every image")
    return torch.nn.functional.one_hot(torch.tensor(classes), c_dim).to(torch.float32)


def _resize_pil(img, resolution: int):
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return img.resize((resolution, resolution), Image.LANCZOS)


def _resize_tensor(images: torch.Tensor, resolution: int) -> torch.Tensor:
    from PIL import Image

    out = []
    for img in images.permute(0, 2, 3, 1).numpy():
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        arr = np.asarray(_resize_pil(pil, resolution), dtype=np.uint8)
        out.append(arr[:, :, None] if arr.ndim == 2 else arr)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def sample_indices(num_items: int, seed: int, start: int, count: int) -> torch.Tensor:
    """Dataset indices for draws ``start .. start+count-1`` of an endless shuffled stream.

    Each epoch is a permutation seeded by ``(seed, epoch)``, so the indices are a pure function
    of the arguments: a resumed run continues the same stream.
    """
    out = []
    pos = start
    end = start + count
    while pos < end:
        epoch, offset = divmod(pos, num_items)
        take = min(end - pos, num_items - offset)
        perm = np.random.RandomState([seed % (2**31), epoch % (2**31), 7]).permutation(num_items)
        out.append(perm[offset : offset + take])
        pos += take
    return torch.from_numpy(np.concatenate(out).astype(np.int64))
