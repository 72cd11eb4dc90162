"""Creating and renaming a batch's files, as staging and publishing do (issuer/files.py)."""

from __future__ import annotations

import os
import stat

import pytest

from issuer.files import rename_files, write_files


@pytest.fixture
def folders(tmp_path):
    staging, out = tmp_path / "staging", tmp_path / "out"
    staging.mkdir()
    out.mkdir()
    descriptors = [os.open(f, os.O_RDONLY | os.O_DIRECTORY) for f in (staging, out)]
    yield staging, out, *descriptors
    for descriptor in descriptors:
        os.close(descriptor)


def test_files_are_written_with_their_mode_then_moved(folders):
    staging, out, staging_fd, out_fd = folders
    names = ["110108000000000001.json", "名称 é.json", "b.png"]
    contents = [b'{"a":1}\n', "证照".encode() * 5000, b""]
    (staging / names[0]).write_bytes(b"left by a killed run, longer than the new content")
    write_files(staging_fd, names, contents, 0o600)
    assert [(staging / n).read_bytes() for n in names] == contents  # rewritten, not appended
    assert stat.S_IMODE((staging / names[1]).stat().st_mode) == 0o600
    rename_files(staging_fd, out_fd, names)
    assert sorted(os.listdir(staging)) == []
    assert [(out / n).read_bytes() for n in names] == contents


def test_the_file_that_fails_is_named_and_the_ones_before_it_are_done(folders):
    staging, out, staging_fd, out_fd = folders
    with pytest.raises(FileNotFoundError) as raised:
        write_files(staging_fd, ["a.json", "no-such-folder/b.json"], [b"a", b"b"], 0o600)
    assert raised.value.filename == "no-such-folder/b.json"
    assert (staging / "a.json").read_bytes() == b"a"
    with pytest.raises(FileNotFoundError) as raised:
        rename_files(staging_fd, out_fd, ["a.json", "missing.json"])
    assert raised.value.filename == "missing.json"
    assert (out / "a.json").exists()


def test_bad_arguments_are_refused_before_any_file_is_touched(folders):
    staging, _, staging_fd, _ = folders
    with pytest.raises(ValueError, match="NUL"):
        write_files(staging_fd, ["a.json", "b\0.json"], [b"a", b"b"], 0o600)
    with pytest.raises(ValueError, match="one content per file name"):
        write_files(staging_fd, ["a.json"], [], 0o600)
    assert os.listdir(staging) == []
