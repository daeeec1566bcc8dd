"""``ganzoo rank --report rank.html``: one self-contained page, escaped, readable in a browser.

Candidates are tiny GANs saved as checkpoint directories (one conditional, one whose directory
name holds ``<script>``); features come from the offline ``pixels`` extractor, so nothing is
downloaded. The page must parse, list the candidates in the table's order with the
recommendation, load nothing from the network, embed real PNGs, and render to a non-blank
screenshot in headless Chromium (under CI=true a missing browser fails the test; elsewhere it skips).
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from helpers import in_ci, tiny_gan
from PIL import Image

from ganzoo.cli import main
from ganzoo.errors import OutputError
from ganzoo.ranking import rank, write_report

NUM_GEN = 16
EXTRACTOR = "pixels@8"
EVIL = "<script>alert(1)<b>x"  # a directory name: '/' cannot be in one, the rest can

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks, shared cores


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    source = tiny_gan(c_dim=2, seed=0)
    source.save(root / "cond")
    tiny_gan(seed=1).save(root / EVIL)
    tiny_gan(seed=2).save(root / "plain")
    target = root / "target"
    target.mkdir()
    for cls in (0, 1):
        seeds = range(5000 + 100 * cls, 5000 + 100 * cls + 12)
        for seed, image in zip(seeds, source.sample(seeds=seeds, class_idx=cls)):
            Image.fromarray(image).save(target / f"c{cls}_{seed}.png")
    return root


class _Page(HTMLParser):
    """Collects the tags' attributes, the candidate sections in order and the text."""

    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, dict]] = []
        self.sections: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attrs.append((tag, attrs))
        if tag == "section" and "candidate" in (attrs.get("class") or ""):
            self.sections.append(attrs["data-name"])

    def handle_data(self, data):
        self.text.append(data)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _rank(zoo, **kwargs):
    candidates = [str(zoo / name) for name in ("plain", EVIL, "cond")]
    return rank(zoo / "target", candidates=candidates, num_gen=NUM_GEN, feature_extractor=EXTRACTOR, progress=False,
                **kwargs)  # fmt: skip


def test_report_is_self_contained_ordered_escaped_and_embeds_pngs(zoo, tmp_path):
    out = tmp_path / "rank.html"
    result = _rank(zoo, report_out=out)
    page = _parse(out)
    raw = out.read_text(encoding="utf-8")

    # Every candidate, in the table's order; the recommendation and the recipe hint.
    assert page.sections == [c.name for c in result.candidates] and len(page.sections) == 3
    text = "".join(page.text)
    # Pixel features cannot judge content: the page names the first candidate as the least far,
    # with low confidence, and says why.
    assert result.recommended and result.confidence == "low"
    assert f"Least far from the target, with low confidence: {result.recommended}" in text
    assert "pixel features compare colours and layout" in text
    assert result.recipe_hint in text
    assert "pixels@8" in text and "generated samples" in text
    assert "class-conditional (2 classes)" in text and "seeds 0..7" in text
    for row in result.candidates:  # every computed score is on the page
        assert f"{row.fid:.2f}" in text and f"{row.recall:.3f}" in text

    # The candidate called <script>...: escaped everywhere, so no script element anywhere.
    assert "script" not in page.tags and "<script>" not in raw
    assert "&lt;script&gt;alert(1)&lt;b&gt;x" in raw
    assert any(name.endswith(EVIL) for name in page.sections)  # the parser reads back the real name

    # Nothing from the network: no http(s) in any src/href, images are data: URIs of real PNGs.
    links = [(tag, key, value) for tag, attrs in page.attrs for key, value in attrs.items() if key in ("src", "href")]
    assert not [link for link in links if "http://" in link[2] or "https://" in link[2]], links
    images = [attrs["src"] for tag, attrs in page.attrs if tag == "img"]
    assert len(images) == 1 + 3  # the target thumbnails and one grid per candidate
    for src in images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format == "PNG" and image.width >= 16 and image.height >= 16
    assert "http://" not in raw and "https://" not in raw


def test_write_report_after_the_fact_and_an_unloadable_candidate(zoo, tmp_path):
    result = _rank(zoo)
    gone = tmp_path / "gone"
    shutil.copytree(zoo / "plain", gone)
    result.candidates[0].name = str(gone)
    shutil.rmtree(gone)  # resolved again from its name, and now missing: shown without samples
    out = write_report(result, tmp_path / "later.htm", num_samples=4)
    page = _parse(out)
    assert page.sections == [c.name for c in result.candidates]
    assert "no samples:" in "".join(page.text)
    assert len([1 for tag, _ in page.attrs if tag == "img"]) == 1 + 2


def test_report_path_is_checked_before_the_work(zoo, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the ranking ran although its report could not be written")

    monkeypatch.setattr("ganzoo.data.ImageDataset.__init__", no_work)
    with pytest.raises(OutputError, match=r"rank\.txt"):
        _rank(zoo, report_out=tmp_path / "rank.txt")
    (tmp_path / "adir.html").mkdir()
    code = main(["rank", "--target", str(zoo / "target"), "--candidates", str(zoo / "plain"),
                 "--feature-extractor", EXTRACTOR, "--report", str(tmp_path / "adir.html")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "adir.html: is a directory" in err and "Traceback" not in err


def test_cli_report(zoo, tmp_path, capsys):
    out = tmp_path / "cli.html"
    code = main(["rank", "--target", str(zoo / "target"), "--candidates", f"{zoo / 'plain'},{zoo / 'cond'}",
                 "--num-gen", str(NUM_GEN), "--feature-extractor", EXTRACTOR, "--report", str(out)])  # fmt: skip
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {out}" in stdout
    assert len(_parse(out).sections) == 2


def _chromium() -> str:
    """The headless browser: Debian's ``chromium`` (``.ci/run`` installs it). Missing, the test
    fails under ``CI=true`` and skips with the install line on a developer's machine."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return name
    message = "Chromium not installed (Debian/Ubuntu: apt-get install chromium)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def test_report_renders_in_headless_chromium(zoo, tmp_path):
    browser = _chromium()
    out = tmp_path / "rank.html"
    _rank(zoo, report_out=out)
    shot = tmp_path / "shot.png"
    command = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
               out.as_uri()]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), run.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50, len(colours)  # text, the orange box, the sample grids
    not_background = np.any(np.abs(pixels.astype(int) - pixels[0, 0].astype(int)) > 24, axis=-1)
    assert not_background.mean() > 0.05, not_background.mean()
    # The embedded images were decoded and drawn: the page's sample grids are colourful, text is not.
    saturation = pixels.max(axis=-1).astype(int) - pixels.min(axis=-1)
    assert (saturation > 60).sum() > 5000


def test_one_table_says_which_sort_metrics_grow_better():
    from ganzoo import rank_report
    from ganzoo.ranking import METRICS

    assert METRICS is rank_report.HIGHER_IS_BETTER and METRICS["recall"] and not METRICS["fid"]
