"""Every kind of image the loader meets: odd modes are converted, broken files give a reason."""

import io

import numpy as np
import pytest
from PIL import Image

from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ImageLoadError


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


@pytest.mark.parametrize(
    "mode, fmt",
    [("L", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("LA", "PNG"), ("1", "PNG")],
)
def test_odd_modes_become_rgb_uint8(tmp_path, mode, fmt):
    img = Image.new(mode, (12, 9))
    path = _save(img, tmp_path / f"x.{fmt.lower()}", format=fmt)
    arr = load_rgb(path)
    assert arr.shape == (9, 12, 3) and arr.dtype == np.uint8


def test_16_bit_is_scaled_not_clipped(tmp_path):
    arr16 = np.full((4, 4), 65535, dtype=np.uint16)
    path = _save(Image.fromarray(arr16), tmp_path / "w.png")
    assert load_rgb(path).min() == 255


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    path = _save(img, tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_rgb(path).shape == (20, 10, 3)


def test_transparent_pixels_are_composited_on_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_rgb(_save(img, tmp_path / "t.png")).min() == 255


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty_file"),
        (lambda p: p.write_bytes(b"this is a text file, not a picture"), "not_an_image"),
        (lambda p: p.write_bytes(_jpeg_bytes()[:300]), "truncated"),
        (lambda p: p.write_bytes(_jpeg_bytes()[:20] + b"\x00" * 200), "not_an_image"),  # header, then nothing
        (lambda p: p.write_bytes(_png_with_zeroed_pixel_data()), "corrupt"),  # a PNG whose compressed pixels break
    ],
)
def test_broken_files_raise_with_reason(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImageLoadError) as err:
        load_rgb(path)
    assert err.value.reason == reason
    assert str(path) in str(err.value)


def _png_with_zeroed_pixel_data() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(buf, "PNG")
    png = buf.getvalue()
    start = png.find(b"IDAT") + 4
    return png[:start] + b"\x00" * 20 + png[start + 20 :]


def test_missing_and_too_large(tmp_path):
    with pytest.raises(ImageLoadError, match="missing"):
        load_rgb(tmp_path / "ghost.jpg")
    path = _save(Image.new("RGB", (100, 100)), tmp_path / "big.png")
    with pytest.raises(ImageLoadError) as err:
        load_rgb(path, max_pixels=5000)
    assert err.value.reason == "too_many_pixels"


def test_an_image_pillow_refuses_as_a_bomb_is_refused_with_our_limit(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (100, 100)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses at open above twice this
    with pytest.raises(ImageLoadError) as err:
        load_rgb(path, max_pixels=5000)
    assert err.value.reason == "too_many_pixels" and "limit of 5000 pixels" in str(err.value)


def test_source_file_is_not_modified(tmp_path):
    path = _save(Image.new("CMYK", (8, 8)), tmp_path / "c.jpg")
    before = path.read_bytes()
    load_rgb(path)
    assert path.read_bytes() == before


def test_skip_report_appends_rows(tmp_path):
    report = SkipReport(tmp_path / "skipped.csv")
    report.add(ImageLoadError("a.jpg", "corrupt", "x"))
    SkipReport(tmp_path / "skipped.csv").add(ImageLoadError("b.jpg", "empty_file"))
    rows = SkipReport.read(tmp_path / "skipped.csv")
    assert [(r["path"], r["reason"]) for r in rows] == [("a.jpg", "corrupt"), ("b.jpg", "empty_file")]


def test_a_skip_report_cut_mid_row_by_a_kill_keeps_every_complete_row(tmp_path):
    """A run killed while writing skipped.csv leaves half a row: the next run's rows start a line of their own, and
    reading gives every complete row, the cut one left out."""
    path = tmp_path / "skipped.csv"
    SkipReport(path).add(ImageLoadError("a.jpg", "corrupt", "x"))
    path.write_bytes(path.read_bytes() + b"b.jpg,trunc")  # the kill
    SkipReport(path).add(ImageLoadError("c.jpg", "empty_file"))
    assert [r["path"] for r in SkipReport.read(path)] == ["a.jpg", "c.jpg"]


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()
