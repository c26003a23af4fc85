import pandas as pd
import pytest

from faceattr.data.manifest import derive_labels, read_manifest, write_manifest
from faceattr.errors import ManifestError


def _frame():
    return derive_labels(
        pd.DataFrame(
            {
                "path": ["a.jpg", "b.jpg"],
                "person_id": ["1", "2"],
                "mask": [0, 2],
                "gender": [1, 0],
                "age": [45.0, 59.0],
                "age_bin": [-1, -1],
                "source": ["t", "t"],
            }
        )
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip(tmp_path, suffix):
    df = _frame()
    back = read_manifest(write_manifest(df, tmp_path / f"m{suffix}"))
    assert back[["mask", "gender", "age_bin", "label18"]].values.tolist() == [[0, 1, 1, 4], [2, 0, 1, 13]]


def test_threshold_is_applied_at_read_time(tmp_path):
    path = write_manifest(_frame(), tmp_path / "m.csv")
    assert read_manifest(path, old_threshold=58)["age_bin"].tolist() == [1, 2]


def test_missing_column_and_bad_value_are_named(tmp_path):
    df = _frame()
    df.drop(columns=["gender"]).to_csv(tmp_path / "nogender.csv", index=False)
    with pytest.raises(ManifestError, match=r"nogender.csv: missing column\(s\) gender"):
        read_manifest(tmp_path / "nogender.csv")
    df.loc[1, "mask"] = 7
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ManifestError, match=r"column 'mask' row 1 has value 7"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(ManifestError, match="faceattr prepare"):
        read_manifest(tmp_path / "absent.csv")
