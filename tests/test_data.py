"""Datasets: folders and zips of images streamed as uint8 batches at one resolution."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganzoo.data import ImageDataset, UnreadableImagesWarning, require_count
from ganzoo.errors import DatasetError


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)  # mode from the array: L, RGB or RGBA
    return path


def _rgb(color, size=(20, 20)):
    return np.full((size[1], size[0], 3), color, dtype=np.uint8)


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "data"
    _save(root / "b.png", _rgb(10))
    _save(root / "a.JPG", _rgb(200), quality=100)
    _save(root / "sub" / "c.webp", _rgb(100), lossless=True)
    _save(root / "sub" / "deeper" / "d.bmp", _rgb(50))
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_is_read_recursively_in_a_deterministic_order(folder):
    data = ImageDataset(folder, resolution=8)
    assert data.names == ["a.JPG", "b.png", "sub/c.webp", "sub/deeper/d.bmp"]
    assert len(data) == 4
    images = data.read_all()
    assert images.shape == (4, 8, 8, 3) and images.dtype == np.uint8
    assert [int(round(float(img.mean()))) for img in images] == [200, 10, 100, 50]


def test_batches_stream_in_order(folder):
    batches = list(ImageDataset(folder, resolution=8).iter_batches(batch_size=3))
    assert [len(b) for b in batches] == [3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), ImageDataset(folder, resolution=8).read_all(batch_size=1))


def test_center_crop_and_resize_filters(tmp_path):
    image = np.zeros((20, 40, 3), dtype=np.uint8)  # wide: left and right quarters are cropped away
    image[:, :10] = 255
    image[:, 30:] = 255
    image[:, 10:30, 1] = 128
    _save(tmp_path / "d" / "wide.png", image)
    crop = ImageDataset(tmp_path / "d").read_all()
    assert crop.shape == (1, 20, 20, 3)  # no resolution given: the crop size of the first image
    assert (crop[..., 0] == 0).all() and (crop[..., 1] == 128).all()

    pattern = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    _save(tmp_path / "p" / "x.png", pattern)
    lanczos = ImageDataset(tmp_path / "p", resolution=16).read_all()
    box = ImageDataset(tmp_path / "p", resolution=16, resize_filter="box").read_all()
    expected_box = pattern.reshape(16, 2, 16, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(box[0].astype(np.float64) - expected_box).max() <= 1.0  # box = 2x2 averages
    assert not np.array_equal(lanczos, box)
    with pytest.raises(DatasetError, match="unknown resize filter 'nearest'"):
        ImageDataset(tmp_path / "p", resize_filter="nearest")


def test_modes_are_converted_to_the_channels_asked_for(tmp_path):
    root = tmp_path / "modes"
    _save(root / "1-gray.png", np.full((8, 8), 77, np.uint8))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    _save(root / "2-rgba.png", rgba)
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.info["transparency"] = 0
    palette.save(root / "3-palette.png")
    Image.fromarray(np.full((8, 8), 65535 // 2, np.uint16)).save(root / "4-sixteen.png")

    rgb = ImageDataset(root).read_all()
    assert rgb.shape == (4, 8, 8, 3)
    assert (rgb[0] == 77).all()  # grayscale repeated to RGB
    assert (rgb[1] == [200, 0, 0]).all()  # alpha dropped, colour kept
    assert (rgb[2] == [0, 255, 0]).all()  # palette resolved
    assert abs(int(rgb[3, 0, 0, 0]) - 128) <= 1  # 16-bit scaled to 8 bits, not clipped

    gray = ImageDataset(root, channels=1).read_all()
    assert gray.shape == (4, 8, 8, 1) and (gray[0] == 77).all()
    assert ImageDataset(root, channels=4).read_all().shape == (4, 8, 8, 4)
    with pytest.raises(DatasetError, match="channels must be 1, 3 or 4"):
        ImageDataset(root, channels=2)


def test_stylegan2_ada_zip_with_labels(tmp_path, folder):
    path = tmp_path / "dataset.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, color in enumerate((30, 60, 90)):
            buffer = tmp_path / f"img{i}.png"
            _save(buffer, _rgb(color, (12, 12)))
            archive.write(buffer, f"00000/img{i:08d}.png")
        archive.writestr("dataset.json", json.dumps({"labels": [[f"00000/img{i:08d}.png", i % 2] for i in range(3)]}))
    data = ImageDataset(path, resolution=12)
    assert data.names == [f"00000/img{i:08d}.png" for i in range(3)]
    assert [data.label(n) for n in data.names] == [0, 1, 0]
    assert [int(img.mean()) for img in data.read_all()] == [30, 60, 90]
    assert ImageDataset(folder).labels is None


def test_unreadable_files_are_skipped_with_one_warning_or_refused_when_strict(tmp_path, folder):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    full = (tmp_path / "full.jpg")
    _save(full, np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), quality=90)
    (folder / "truncated.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    data = ImageDataset(folder, resolution=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = data.read_all(batch_size=2)
    ours = [w for w in caught if issubclass(w.category, UnreadableImagesWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert "skipped 2 unreadable file(s)" in message and "broken.png" in message and "truncated.jpg" in message
    assert images.shape[0] == 4
    with pytest.raises(DatasetError, match=r"2 unreadable file\(s\): broken.png \(.*\), truncated.jpg \(.*\) \(without --strict"):
        ImageDataset(folder, resolution=8, strict=True).read_all()  # the whole set read: every bad file named


def test_empty_missing_and_unreadable_sets_are_one_line_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DatasetError, match=r"empty: 0 images"):
        ImageDataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="nowhere: no such folder or zip"):
        ImageDataset(tmp_path / "nowhere")
    (tmp_path / "file.tar").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a folder or a zip"):
        ImageDataset(tmp_path / "file.tar")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableImagesWarning)
        with pytest.raises(DatasetError, match=r"bad: 0 readable images out of 1 files"):
            ImageDataset(tmp_path / "bad", resolution=8).read_all()
    with pytest.raises(DatasetError, match=r"mydata: 3 images, precision/recall with k=3 needs at least 4"):
        require_count("mydata", 3, 4, "precision/recall with k=3")


def test_content_hash_follows_names_and_bytes_not_location(tmp_path, folder):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert ImageDataset(copy).content_hash() == ImageDataset(folder).content_hash()
    _save(copy / "b.png", _rgb(11))
    assert ImageDataset(copy).content_hash() != ImageDataset(folder).content_hash()
    (copy / "b.png").rename(copy / "e.png")
    assert ImageDataset(copy).content_hash() != ImageDataset(folder).content_hash()
    assert ImageDataset(folder, max_images=2).names == ["a.JPG", "b.png"]


# ------------------------------------------------------------------------------------------------
# The set as a whole: sizes and channels come from every image's header, not the first image


def _mixed_folder(root):
    """``0-gray.png`` (grayscale 16x16) sorts first; then three RGB 24x24 and one RGB 32x24."""
    _save(root / "0-gray.png", np.full((16, 16), 90, np.uint8))
    for i in range(3):
        _save(root / f"{i + 1}.png", _rgb(40 * (i + 1), (24, 24)))
    _save(root / "9-wide.png", _rgb(200, (32, 24)))
    return root


def test_sizes_and_channels_are_decided_from_all_images(tmp_path):
    data = ImageDataset(_mixed_folder(tmp_path / "mydata"))
    summary = data.summary()
    assert summary.sizes == {(16, 16): 1, (24, 24): 3, (32, 24): 1}
    assert (summary.grayscale, summary.colour, summary.unreadable) == (1, 4, 0)
    assert data.resolution == 24  # the most common center-crop side, not the first image's 16
    notes = data.notes()
    assert len(notes) == 2 and all("\n" not in n for n in notes)
    assert notes[0].startswith(f"{tmp_path / 'mydata'}: mixed image sizes: 3 of 24x24, 1 of 16x16, 1 of 32x24; ")
    assert "2 center-cropped and resized to 24x24 (lanczos)" in notes[0]
    assert notes[1] == (f"{tmp_path / 'mydata'}: mixed channels: 1 grayscale and 4 colour images; "
                        "the grayscale one is repeated to RGB")  # fmt: skip
    assert data.preparation() == {"resampled": True, "resampled_from": {"16x16": 1, "32x24": 1},
                                  "resize_filter": "lanczos", "converted": {"grayscale": 1}}  # fmt: skip
    images = data.read_all()
    assert images.shape == (5, 24, 24, 3) and (images[0] == 90).all()

    gray = ImageDataset(tmp_path / "mydata", resolution=16, channels=1)
    assert gray.notes()[1].endswith("the 4 colour ones are converted to grayscale")
    assert "4 center-cropped and resized to 16x16" in gray.notes()[0]
    assert gray.preparation()["converted"] == {"colour": 4}

    same = tmp_path / "same"
    for i in range(3):
        _save(same / f"{i}.png", _rgb(10 * i, (24, 24)))
    assert ImageDataset(same).notes() == []
    assert ImageDataset(same).preparation() == {"resampled": False}
    assert ImageDataset(same, resolution=12).preparation() == {"resampled": True, "resampled_from": {"24x24": 3},
                                                                "resize_filter": "lanczos"}  # fmt: skip


def test_the_scan_reads_headers_only_in_folders_and_zips_and_follows_exif(tmp_path, monkeypatch):
    from PIL import ImageFile

    root = _mixed_folder(tmp_path / "mixed")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: stored 40x20, shown 20x40
    Image.fromarray(_rgb(7, (40, 20))).save(root / "8-rotated.jpg", exif=exif)
    (root / "broken.png").write_bytes(b"garbage")
    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(root.iterdir()):
            archive.write(file, f"images/{file.name}")

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the scan decoded pixels")

    expected = {(16, 16): 1, (24, 24): 3, (32, 24): 1, (20, 40): 1}
    with monkeypatch.context() as patched:
        patched.setattr(ImageFile.ImageFile, "load", no_decoding)
        for source in (root, path):
            summary = ImageDataset(source).summary()
            assert summary.sizes == expected and summary.unreadable == 1
            assert (summary.grayscale, summary.colour) == (1, 5)
    assert ImageDataset(path).resolution == 24
