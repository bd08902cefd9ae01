import gzip
import hashlib
import io
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from d2lkit import data


def _file(tmp_path: Path, content: bytes, name: str = "toy.dat") -> data.DataFile:
    return data.DataFile(name, f"http://example.invalid/{name}", "sha256",
                         hashlib.sha256(content).hexdigest(), (tmp_path / "system",))


def test_lookup_order_is_mirror_system_cache(isolated_data):
    file = _file(isolated_data, b"x")
    assert data.candidates(file) == [
        isolated_data / "mirror" / "toy.dat",
        isolated_data / "system" / "toy.dat",
        isolated_data / "cache" / "toy.dat",
    ]


def test_fetch_prefers_mirror_and_verifies(isolated_data):
    file = _file(isolated_data, b"good")
    (isolated_data / "mirror" / "toy.dat").write_bytes(b"good")
    assert data.fetch(file) == isolated_data / "mirror" / "toy.dat"


def test_fetch_uses_system_copy(isolated_data):
    file = _file(isolated_data, b"good")
    (isolated_data / "system").mkdir()
    (isolated_data / "system" / "toy.dat").write_bytes(b"good")
    assert data.fetch(file) == isolated_data / "system" / "toy.dat"


def test_corrupted_file_names_file_and_sums(isolated_data):
    file = _file(isolated_data, b"good")
    bad = isolated_data / "mirror" / "toy.dat"
    bad.write_bytes(b"bad")
    with pytest.raises(data.DataError) as err:
        data.fetch(file)
    message = str(err.value)
    assert str(bad) in message
    assert file.digest in message
    assert hashlib.sha256(b"bad").hexdigest() in message
    assert "Delete it" in message


def test_gz_checksum_is_of_decompressed_content(isolated_data):
    content = b"idx payload"
    file = _file(isolated_data, content, name="toy.gz")
    (isolated_data / "mirror" / "toy.gz").write_bytes(gzip.compress(content, mtime=0))
    assert data.read_bytes(data.fetch(file)) == content


def test_download_into_cache(isolated_data, monkeypatch):
    file = _file(isolated_data, b"remote")
    monkeypatch.setattr(data.urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(b"remote"))
    path = data.fetch(file)
    assert path == isolated_data / "cache" / "toy.dat"
    assert path.read_bytes() == b"remote"


def test_corrupted_download_is_not_cached(isolated_data, monkeypatch):
    file = _file(isolated_data, b"remote")
    monkeypatch.setattr(data.urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(b"tampered"))
    with pytest.raises(data.DataError, match="Checksum mismatch"):
        data.fetch(file)
    assert list((isolated_data / "cache").iterdir()) == []


def test_offline_and_missing_lists_every_way(isolated_data, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(data.DataError) as err:
        data.fetch(data.FASHION_MNIST["test-labels"].__class__(
            "t10k-labels-idx1-ubyte.gz", "http://example.invalid/x", "sha256", "0" * 64,
            (isolated_data / "nowhere",)))
    message = str(err.value)
    assert "D2LKIT_DATA_MIRROR" in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert str(isolated_data / "cache") in message
    assert "http://example.invalid/x" in message


def test_parse_idx_reads_header_and_payload():
    payload = np.arange(6, dtype=np.uint8)
    raw = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + payload.tobytes()
    np.testing.assert_array_equal(data.parse_idx(raw), payload.reshape(2, 3))
    with pytest.raises(data.DataError):
        data.parse_idx(raw[:-1])
    with pytest.raises(data.DataError):
        data.parse_idx(b"\x00\x00\x0d\x01")


def test_airfoil_is_standardized_like_the_seed():
    raw = np.genfromtxt(data.fetch(data.AIRFOIL), delimiter="\t")
    assert raw.shape == (1503, 6)
    X, y = data.airfoil()
    assert X.shape == (1500, 5) and y.shape == (1500,)
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)  # the seed works in float32
    np.testing.assert_allclose(X.numpy(), expected[:1500, :5], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y.numpy(), expected[:1500, 5], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        data.airfoil(0)


def test_fashion_mnist_shapes_and_ranges():
    X, y = data.fashion_mnist(train=False)
    assert X.shape == (10_000, 1, 28, 28) and X.dtype == torch.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert y.dtype == torch.int64 and set(y.unique().tolist()) == set(range(10))
    assert torch.bincount(y).tolist() == [1000] * 10
    Xs, ys = data.fashion_mnist(train=True, n=100)
    assert Xs.shape == (100, 1, 28, 28) and ys.shape == (100,)
    with pytest.raises(ValueError):
        data.fashion_mnist(train=False, n=10_001)


def test_minibatch_iter_covers_every_example_once_per_epoch():
    X = torch.arange(23.0)
    it = data.MinibatchIter(X, X * 2, batch_size=5, seed=1)
    assert len(it) == 5
    epochs = []
    for _ in range(3):
        batches = list(it)
        assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
        seen = torch.cat([b[0] for b in batches])
        assert sorted(seen.tolist()) == X.tolist()
        assert torch.equal(torch.cat([b[1] for b in batches]), seen * 2)
        epochs.append(seen)
    assert not torch.equal(epochs[0], epochs[1])


def test_minibatch_iter_is_reproducible_and_options():
    X = torch.arange(10.0)
    a = [b[0] for _ in range(2) for b in data.MinibatchIter(X, batch_size=3, seed=7)]
    b = [b[0] for _ in range(2) for b in data.MinibatchIter(X, batch_size=3, seed=7)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert len(data.MinibatchIter(X, batch_size=3, drop_last=True)) == 3
    ordered = list(data.MinibatchIter(X, batch_size=4, shuffle=False))
    assert torch.equal(ordered[0][0], X[:4])
    with pytest.raises(ValueError):
        data.MinibatchIter(X, X[:5], batch_size=2)
    with pytest.raises(ValueError):
        data.MinibatchIter(X, batch_size=0)
