"""Files are written atomically: a failed write leaves the old file whole and no temporary file behind;
a new file gets the usual permissions, a replaced one keeps its own."""
import os
import stat

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint.files import atomic_open, atomic_write


def _listing(directory):
    return sorted(os.listdir(directory))


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_open(target) as stream:
            stream.write(b"half of the new")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old contents"
    assert _listing(tmp_path) == ["model.bin"]          # the temporary file is gone


def test_modes_of_new_and_replaced_files(tmp_path):
    new = tmp_path / "new.txt"
    atomic_write(new, "text é")
    assert new.read_text(encoding="utf-8") == "text é"
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o644
    old = tmp_path / "old.bin"
    old.write_bytes(b"x")
    os.chmod(old, 0o600)
    atomic_write(old, b"y")
    assert old.read_bytes() == b"y" and stat.S_IMODE(os.stat(old).st_mode) == 0o600
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(old, "a"):
            pass


def test_savers_keep_the_old_file_when_they_fail(tmp_path, monkeypatch):
    """save_network and export_onnx write through atomic_open: a failure while writing (here the
    serializer raising half-way) leaves the previous file whole."""
    net = fp.examples.digits_cnn()
    path = tmp_path / "net.npz"
    fp.save_network(net, path)
    before = path.read_bytes()

    def failing_savez(stream, **arrays):
        stream.write(b"PK partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez_compressed", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        fp.save_network(net, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and _listing(tmp_path) == ["net.npz"]

    onnx_path = tmp_path / "net.onnx"
    fp.export_onnx(net, onnx_path)
    before = onnx_path.read_bytes()
    import fixedpoint.files as files
    real_open = files.atomic_open

    class Failing:
        def __init__(self, path, mode="wb"):
            self.inner = real_open(path, mode)

        def __enter__(self):
            stream = self.inner.__enter__()
            stream.write(b"\x08partial")
            raise OSError("disk full")

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)
    monkeypatch.setattr(files, "atomic_open", Failing)
    with pytest.raises(OSError, match="disk full"):
        fp.export_onnx(net, onnx_path)
    monkeypatch.undo()
    assert onnx_path.read_bytes() == before and _listing(tmp_path) == ["net.npz", "net.onnx"]
