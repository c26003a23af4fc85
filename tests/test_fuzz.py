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
