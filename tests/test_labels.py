import numpy as np
import pytest
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.labels import age_to_bin, class_table, decode, encode


def test_encode_decode_round_trip_over_all_18_classes():
    for code in range(18):
        assert encode(*decode(code)) == code
    codes = np.arange(18)
    assert (encode(*decode(codes)) == codes).all()


def test_code_is_mask_times_6_plus_gender_times_3_plus_age():
    assert encode(0, 0, 0) == 0
    assert encode(1, 1, 2) == 6 + 3 + 2
    assert encode(2, 1, 2) == 17
    assert decode(7) == (1, 0, 1)


def test_age_bins_follow_the_configurable_threshold():
    assert [age_to_bin(a) for a in (0, 29, 30, 59, 60, 90)] == [0, 0, 1, 1, 2, 2]
    assert [age_to_bin(a, old_threshold=58) for a in (57, 58, 59)] == [1, 2, 2]
    assert age_to_bin(np.array([20, 40, 70])).tolist() == [0, 1, 2]


def test_out_of_range_labels_are_refused():
    with pytest.raises(ValueError, match="mask"):
        encode(3, 0, 0)
    with pytest.raises(ValueError, match=r"0..17"):
        decode(18)


def test_class_table_names_each_code():
    table = class_table()
    assert len(table) == 18
    assert (table[0].mask, table[0].gender, table[0].age_bin) == ("wear", "male", "<30")
    assert (table[17].mask, table[17].gender, table[17].age_bin) == ("not_wear", "female", ">=60")


def test_labels_command_prints_the_mapping():
    result = CliRunner().invoke(app, ["labels", "--old-threshold", "58"])
    assert result.exit_code == 0
    assert "not_wear" in result.output and ">=58" in result.output
