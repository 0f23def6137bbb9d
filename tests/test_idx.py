"""IDX reading/writing and the MNIST/EMNIST folder loaders, on small files written here."""

from __future__ import annotations

import gzip
import struct
import warnings

import numpy as np
import pytest
import torch

from difflens.data import emnist, load_digits, mnist, read_idx, write_idx


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, rng, name, dtype):
    a = (rng.standard_normal((4, 5, 3)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_header_matches_the_published_format(tmp_path):
    labels = np.array([5, 0, 4], dtype=np.uint8)
    raw = write_idx(tmp_path / "l", labels).read_bytes()
    assert raw == bytes([0, 0, 0x08, 1]) + struct.pack(">i", 3) + bytes([5, 0, 4])
    imgs = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    raw = write_idx(tmp_path / "i", imgs).read_bytes()
    assert raw[:16] == bytes([0, 0, 0x0C, 3]) + struct.pack(">iii", 2, 3, 4)
    assert raw[16:20] == struct.pack(">i", 0) and raw[-4:] == struct.pack(">i", 23)
    # gzip is detected from content, whatever the name says
    (tmp_path / "plain_name").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain_name"), imgs)


def test_errors_name_the_file(tmp_path):
    a = np.zeros((3, 4, 4), dtype=np.uint8)
    good = write_idx(tmp_path / "good", a).read_bytes()
    (tmp_path / "trunc").write_bytes(good[:-5])
    with pytest.raises(ValueError, match=r"trunc.*truncated"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "long").write_bytes(good + b"xx")
    with pytest.raises(ValueError, match=r"long.*trailing"):
        read_idx(tmp_path / "long")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(ValueError, match=r"magic.*not an IDX"):
        read_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(good[:2] + b"\x07" + good[3:])
    with pytest.raises(ValueError, match=r"type.*element type"):
        read_idx(tmp_path / "type")
    (tmp_path / "hdr").write_bytes(good[:9])
    with pytest.raises(ValueError, match=r"hdr.*header"):
        read_idx(tmp_path / "hdr")
    (tmp_path / "badgz.gz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match=r"badgz.*gzip"):
        read_idx(tmp_path / "badgz.gz")
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_idx(tmp_path / "nothere")
    with pytest.raises(TypeError, match="dtype"):
        write_idx(tmp_path / "u16", np.zeros(3, dtype=np.uint16))


def _mnist_folder(path, rng, n=6, size=28, gz=True, prefix="train", labels_n=None):
    imgs = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, labels_n or n).astype(np.uint8)
    sfx = ".gz" if gz else ""
    write_idx(path / f"{prefix}-images-idx3-ubyte{sfx}", imgs)
    write_idx(path / f"{prefix}-labels-idx1-ubyte{sfx}", labels)
    return imgs, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loader(tmp_path, rng, gz):
    imgs, labels = _mnist_folder(tmp_path, rng, gz=gz, prefix="t10k")
    x, y = mnist(tmp_path, split="test")
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x[:, 0], torch.from_numpy(imgs).float() / 255)
    torch.testing.assert_close(y, torch.from_numpy(labels).long())
    assert mnist(tmp_path, split="test", limit=2)[0].shape[0] == 2


def test_mnist_torchvision_layout_and_missing_files(tmp_path, rng):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _mnist_folder(raw, rng)
    assert mnist(tmp_path)[0].shape == (6, 1, 28, 28)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        mnist(tmp_path, split="test")
    with pytest.raises(FileNotFoundError, match="folder not found"):
        mnist(tmp_path / "nope")
    with pytest.raises(ValueError, match="split"):
        mnist(tmp_path, split="val")


def test_mismatched_counts_and_bad_shapes(tmp_path, rng):
    _mnist_folder(tmp_path, rng, labels_n=5)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz holds 6 images.*5 labels"):
        mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((6, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train-labels.*\(N,\)"):
        mnist(tmp_path)


def test_other_image_size_is_resized_with_warning(tmp_path, rng):
    _mnist_folder(tmp_path, rng, size=32)
    with pytest.warns(UserWarning, match=r"\(32, 32\), resizing to \(28, 28\)"):
        x, _ = mnist(tmp_path)
    assert x.shape == (6, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1


def test_emnist_is_transposed_to_upright(tmp_path, rng):
    imgs = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    labels = np.array([1, 2, 3, 26], dtype=np.uint8)
    folder = tmp_path / "gzip"
    folder.mkdir()
    write_idx(folder / "emnist-letters-test-images-idx3-ubyte.gz", imgs)
    write_idx(folder / "emnist-letters-test-labels-idx1-ubyte.gz", labels)
    x, y = emnist(tmp_path, "letters", "test")
    torch.testing.assert_close(x[:, 0], torch.from_numpy(imgs).float().transpose(1, 2) / 255)
    torch.testing.assert_close(y, torch.tensor([1, 2, 3, 26]))
    stored, _ = emnist(tmp_path, "letters", "test", transpose=False)
    torch.testing.assert_close(stored[:, 0], torch.from_numpy(imgs).float() / 255)
    with pytest.raises(FileNotFoundError, match="emnist-balanced-train-images-idx3-ubyte"):
        emnist(tmp_path, "balanced", "train")
    with pytest.raises(ValueError, match="subset"):
        emnist(tmp_path, "greek", "train")


def test_load_digits_split():
    xtr, ytr = load_digits(split="train")
    xte, yte = load_digits(split="test")
    xall, yall = load_digits(split="all")
    assert xtr.shape == (1347, 1, 28, 28) and xte.shape == (450, 1, 28, 28)
    assert ytr.dtype == torch.int64 and float(xall.min()) == 0.0 and float(xall.max()) <= 1.0
    # disjoint and complete: every image of "all" is in exactly one split
    key = lambda x: {bytes(r.numpy().tobytes()) for r in x.flatten(1)}
    assert not key(xtr) & key(xte) and len(key(xtr)) == len(xtr)
    assert len(xtr) + len(xte) == len(xall)
    # stratified: each class is 25% test to within rounding; digit box is centred with a 4-pixel border
    for c in range(10):
        n_c = int((yall == c).sum())
        assert int((yte == c).sum()) == round(0.25 * n_c)
    assert float(xall[:, :, :4].abs().max()) == 0.0 and float(xall[:, :, -4:].abs().max()) == 0.0
    # deterministic, and another seed gives another split
    torch.testing.assert_close(load_digits(split="test")[1], yte)
    assert not torch.equal(load_digits(split="test", seed=1)[0], xte)
    assert load_digits(size=8, split="all")[0].shape == (1797, 1, 8, 8)
    with pytest.raises(ValueError, match="split"):
        load_digits(split="validation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_digits(size=16, split="test")


@pytest.mark.parametrize("limit,err,msg", [(-1, ValueError, "got -1"), (0, ValueError, "got 0"),
                                           (2.5, TypeError, "float 2.5"), (True, TypeError, "bool True"),
                                           ("3", TypeError, "str '3'")])
def test_bad_limit_is_named(tmp_path, rng, limit, err, msg):
    _mnist_folder(tmp_path, rng)
    folder = tmp_path / "gzip"
    folder.mkdir()
    write_idx(folder / "emnist-digits-train-images-idx3-ubyte.gz", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    write_idx(folder / "emnist-digits-train-labels-idx1-ubyte.gz", np.arange(3, dtype=np.uint8))
    for load in (lambda: mnist(tmp_path, limit=limit), lambda: emnist(tmp_path, "digits", limit=limit)):
        with pytest.raises(err, match=r"limit must be None or an int >= 1.*" + msg):
            load()
    assert mnist(tmp_path, limit=np.int64(4))[0].shape[0] == 4  # NumPy integers are fine
    assert mnist(tmp_path, limit=100)[0].shape[0] == 6  # more than there are: all of them
