"""The JSON-lines files of the data dir: rotated, and never a crash when the disk refuses."""

import json
from pathlib import Path

from genba._jsonl import JsonLines


def test_rotation_keeps_one_older_file_and_the_newest_records(tmp_path: Path) -> None:
    f = JsonLines(tmp_path / "x.jsonl", max_bytes=1000)
    for i in range(200):
        assert f.append({"n": i})
    newest = [json.loads(line)["n"] for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    older = (tmp_path / "x.jsonl.1").read_text().splitlines()
    assert newest[-1] == 199
    assert json.loads(older[-1])["n"] == newest[0] - 1  # nothing lost at the seam
    assert f.rotations > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl", "x.jsonl.1"]


def test_a_vanished_folder_is_counted_not_raised_nor_made_again(tmp_path: Path) -> None:
    f = JsonLines(tmp_path / "gone" / "x.jsonl", max_bytes=1000)
    assert f.append({"n": 1}) is False
    assert f.append({"n": 2}) is False
    assert f.write_errors == 2
    assert not (tmp_path / "gone").exists()
    (tmp_path / "gone").mkdir()  # back: written again
    assert f.append({"n": 3}) is True
    assert (tmp_path / "gone" / "x.jsonl").read_text() == '{"n": 3}\n'
