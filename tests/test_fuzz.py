"""Property-based fuzzing of the readers: random bytes and random tables only ever raise our own clear errors."""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from faceattr.data.images import decode_rgb
from faceattr.data.manifest import read_manifest
from faceattr.errors import FaceAttrError, ImageLoadError, ManifestError


def _valid(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 20, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


SEEDS = {fmt: _valid(fmt) for fmt in ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")}


@st.composite
def mutated_images(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: cut if draw(st.booleans()) else len(data)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048), mutated_images()))
def test_image_decoder_only_raises_image_load_errors(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = decode_rgb(data, "fuzz", max_pixels=4_000_000)
        except ImageLoadError as e:
            assert e.reason in ("empty_file", "not_an_image", "corrupt", "truncated", "too_many_pixels")
            return
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3


COLUMNS = ["path", "person_id", "mask", "gender", "age", "age_bin", "label18", "source", "extra"]
CELLS = st.one_of(
    st.none(), st.integers(-5, 40), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.booleans()
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    columns=st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=9, unique=True),
    rows=st.integers(0, 5),
    data=st.data(),
)
def test_manifest_reader_only_raises_manifest_errors(tmp_path, columns, rows, data):
    table = pd.DataFrame({c: [data.draw(CELLS) for _ in range(rows)] for c in columns})
    path = tmp_path / "fuzz.csv"
    table.to_csv(path, index=False)
    try:
        df = read_manifest(path)
    except ManifestError:
        return
    assert len(df) == rows and (df["label18"].between(-1, 17)).all()


@pytest.mark.parametrize("payload", [b"", b"\x00", b"a,b\n1", b"\xff\xfe\x00\x00", b'"unterminated'])
def test_manifest_reader_on_garbage_files(tmp_path, payload):
    path = tmp_path / "m.csv"
    path.write_bytes(payload)
    with pytest.raises(FaceAttrError):
        read_manifest(path)
    parquet = tmp_path / "m.parquet"
    parquet.write_bytes(payload)
    with pytest.raises(ManifestError):
        read_manifest(parquet)


ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp949", "utf-16", "cp1252")


@st.composite
def csv_files(draw):
    """A table of random text cells in a random encoding, or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=1024))
    cells = st.text(max_size=12).map(lambda t: t.replace("\x00", ""))
    header = draw(st.sampled_from(["path,person_id,mask,gender,age", "ImageID,ans", "a;b", ""]))
    rows = draw(st.lists(st.lists(cells, min_size=1, max_size=5), max_size=6))
    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(data=csv_files())
def test_csv_readers_only_raise_our_own_errors(tmp_path, data):
    """The plain-CSV source, the competition's info.csv and the corrections table, on random bytes in random
    encodings: a table, or a FaceAttrError that names the file; never a UnicodeDecodeError traceback."""
    from faceattr.data.sources import read_competition_eval, read_csv_table
    from faceattr.data.text_tables import read_text_table

    (tmp_path / "eval" / "images").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "eval" / "info.csv"
    path.write_bytes(data)
    for call in (lambda: read_text_table(path), lambda: read_csv_table(path), lambda: read_competition_eval(tmp_path)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
        except FaceAttrError as e:
            assert "info.csv" in str(e) or "eval" in str(e)
