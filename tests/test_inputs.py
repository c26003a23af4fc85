"""What `predict` is given -> the media files it reads (faceattr/inference/inputs.py)."""

from faceattr.inference.inputs import collect_images


def test_a_txt_list_skips_blank_and_comment_lines(tmp_path):
    listing = tmp_path / "photos.txt"
    listing.write_text("# the door camera, Monday\n\na.jpg\n  # b.jpg left out\n c.jpg \n")
    assert collect_images([listing]) == ["a.jpg", "c.jpg"]


def test_a_txt_list_written_by_a_windows_tool_is_read_in_its_encoding(tmp_path):
    names = ["Müller.jpg", "José.jpg", "Zoë.jpg"]
    (tmp_path / "cp1252.txt").write_bytes("\r\n".join(names).encode("cp1252"))
    (tmp_path / "utf16.txt").write_text("\n".join(names), encoding="utf-16")
    assert collect_images([tmp_path / "cp1252.txt"]) == names
    assert collect_images([tmp_path / "utf16.txt"]) == names


def test_folders_are_searched_recursively_and_other_files_reported(tmp_path):
    (tmp_path / "day1").mkdir()
    for name in ("day1/b.jpg", "a.png", "notes.md", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    ignored: list[str] = []
    assert collect_images([tmp_path], ignored=ignored) == [str(tmp_path / "a.png"), str(tmp_path / "day1" / "b.jpg")]
    assert ignored == [str(tmp_path / "notes.md")]
