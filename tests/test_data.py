"""Tests of d2lkit.data: lookup, verification, downloads from a local HTTP server, the loaders.

No test touches the network: downloads come from a server on 127.0.0.1 that each test starts in a
thread and shuts down. The end-to-end tests serve the real files (the Debian copies of
Fashion-MNIST's test split, re-compressed here; the mirror's airfoil file); the others serve
small synthetic files.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from d2lkit import data

# ----- a local HTTP server -----------------------------------------------------------------------


class Server:
    """Serve ``routes[path]`` on 127.0.0.1: bytes, or a function writing the response itself."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes | Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                elif callable(route):
                    route(self)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def stalling(server: Server, size: int) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    """A route that promises ``size`` bytes, sends the headers and then nothing."""
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        handler.wfile.flush()
        server.stop.wait(30)
    return route


def dripping(server: Server, size: int) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    """A route that sends one byte every 50 ms, never reaching the ``size`` it promised."""
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        while not server.stop.wait(0.05):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
    return route


def closing_early(content: bytes) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    """A route that promises ``content`` and closes the connection after half of it."""
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content[: len(content) // 2])
        handler.close_connection = True
    return route


# ----- files -------------------------------------------------------------------------------------


def _file(tmp_path: Path, content: bytes, name: str = "toy.dat", url: str | None = None,
          ) -> data.DataFile:
    return data.DataFile(name, url or f"http://example.invalid/{name}", "sha256",
                         hashlib.sha256(content).hexdigest(), (tmp_path / "system",))


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _real_content(file: data.DataFile) -> bytes:
    """Return the verified content of a real data file from a local copy, else skip."""
    for path in data.candidates(file):
        if path.is_file():
            return data.read_bytes(data.verify(path, file))
    pytest.skip(f"needs a local copy of {file.name} (see the README's Data section)")


@pytest.fixture(scope="session")
def real_fmnist_test_split() -> dict[str, bytes]:
    """The decompressed content of Fashion-MNIST's test split, from the Debian copies."""
    return {key: _real_content(data.FASHION_MNIST[key]) for key in ("test-images", "test-labels")}


@pytest.fixture(scope="session")
def real_airfoil() -> bytes:
    return _real_content(data.AIRFOIL)


@pytest.fixture
def fresh_fmnist() -> Iterator[None]:
    data.datasets._fashion_mnist_arrays.cache_clear()
    yield
    data.datasets._fashion_mnist_arrays.cache_clear()


# ----- lookup and verification -------------------------------------------------------------------


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
    assert data.load(file) == b"good"


def test_fetch_uses_system_copy(isolated_data):
    file = _file(isolated_data, b"good")
    (isolated_data / "system").mkdir()
    (isolated_data / "system" / "toy.dat").write_bytes(b"good")
    assert data.fetch(file) == isolated_data / "system" / "toy.dat"


def test_gz_checksum_is_of_decompressed_content(isolated_data):
    content = b"idx payload"
    file = _file(isolated_data, content, name="toy.gz")
    (isolated_data / "mirror" / "toy.gz").write_bytes(gzip.compress(content, mtime=0))
    assert data.load(file) == content


def _corruptions(content: bytes, gz: bool) -> dict[str, bytes]:
    """Damaged copies of ``content``: as stored (gzip-compressed when ``gz``)."""
    stored = gzip.compress(content, mtime=0) if gz else content
    flipped = bytearray(stored)
    flipped[len(flipped) // 2] ^= 0xFF
    cases = {
        "flipped byte": bytes(flipped),
        "truncated": stored[: len(stored) // 2],
        "wrong file": gzip.compress(b"another file", mtime=0) if gz else b"another file",
        "error page": b"<html><body>404 Not Found</body></html>",
    }
    if gz:
        cases["bad header"] = b"\x1f\x8c" + stored[2:]
    return cases


CONTENT = bytes(range(256)) * 64
CORRUPTIONS = [(gz, kind) for gz in (False, True) for kind in _corruptions(CONTENT, gz)]
IDS = [f"{'gz' if gz else 'plain'}-{kind}" for gz, kind in CORRUPTIONS]


def _expected_problem(file: data.DataFile, bad: bytes) -> str:
    """What the error must say about ``bad``: its checksum, or that it is not valid gzip."""
    if file.name.endswith(".gz"):
        try:
            content = gzip.decompress(bad)
        except (OSError, EOFError, zlib.error):
            return "not a valid gzip file"
    else:
        content = bad
    return hashlib.sha256(content).hexdigest()


def _bad_mirror_copy(root: Path, gz: bool, kind: str) -> tuple[data.DataFile, bytes, Path]:
    """Put a damaged copy of CONTENT into the mirror; return its DataFile, bytes and path."""
    file = _file(root, CONTENT, name="toy.gz" if gz else "toy.dat")
    bad = _corruptions(CONTENT, gz)[kind]
    path = root / "mirror" / file.name
    path.write_bytes(bad)
    return file, bad, path


@pytest.mark.parametrize(("gz", "kind"), CORRUPTIONS, ids=IDS)
def test_verify_reports_every_corruption(isolated_data, gz, kind):
    file, bad, path = _bad_mirror_copy(isolated_data, gz, kind)
    with pytest.raises(data.DataError) as err:
        data.verify(path, file)
    message = str(err.value)
    assert str(path) in message
    assert _expected_problem(file, bad) in message
    if "valid gzip" not in message:
        assert file.digest in message
    assert "replace it with a good copy" in message


@pytest.mark.parametrize(("gz", "kind"), CORRUPTIONS, ids=IDS)
def test_bad_mirror_copy_is_reported_kept_and_skipped(isolated_data, gz, kind):
    file, bad, mirror = _bad_mirror_copy(isolated_data, gz, kind)
    (isolated_data / "system").mkdir()
    good = isolated_data / "system" / file.name
    good.write_bytes(gzip.compress(CONTENT) if gz else CONTENT)
    with pytest.warns(data.DataWarning) as record:
        assert data.fetch(file) == good
    message = str(record[0].message)
    assert str(mirror) in message and _expected_problem(file, bad) in message
    assert "never changes" in message and "next source" in message
    assert mirror.read_bytes() == bad  # the user's directory is left alone


def test_bad_system_copy_falls_through_to_download(isolated_data, server):
    server.routes["/toy.dat"] = b"good"
    file = _file(isolated_data, b"good", url=server.url("/toy.dat"))
    (isolated_data / "system").mkdir()
    (isolated_data / "system" / "toy.dat").write_bytes(b"bad")
    with pytest.warns(data.DataWarning, match="system directory"):
        assert data.fetch(file) == isolated_data / "cache" / "toy.dat"
    assert (isolated_data / "system" / "toy.dat").read_bytes() == b"bad"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_corrupted_cache_file_heals(isolated_data, server, gz):
    name = "toy.gz" if gz else "toy.dat"
    stored = gzip.compress(CONTENT, mtime=0) if gz else CONTENT
    server.routes[f"/{name}"] = stored
    file = _file(isolated_data, CONTENT, name=name, url=server.url(f"/{name}"))
    cached = isolated_data / "cache" / name
    cached.parent.mkdir()
    cached.write_bytes(stored[:-10])
    with pytest.warns(data.DataWarning, match="removed it and downloads it again") as record:
        assert data.load(file) == CONTENT
    assert str(cached) in str(record[0].message)
    assert cached.read_bytes() == stored and len(server.requests) == 1
    assert data.load(file) == CONTENT and len(server.requests) == 1  # healed: no new request
    assert _leftovers(cached.parent) == [name]


def test_corrupted_cache_file_is_removed_even_if_offline(isolated_data, server):
    file = _file(isolated_data, b"good", url=server.url("/gone.dat"))
    cached = isolated_data / "cache" / "toy.dat"
    cached.parent.mkdir()
    cached.write_bytes(b"bad")
    with pytest.warns(data.DataWarning), pytest.raises(data.DataError) as err:
        data.fetch(file)
    assert not cached.exists()
    assert f"{cached} (d2lkit's cache): the sha256" in str(err.value)


# ----- downloads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_download_verifies_decompressed_content_and_caches(isolated_data, server, gz):
    name = "toy.gz" if gz else "toy.dat"
    server.routes[f"/{name}"] = gzip.compress(CONTENT, mtime=0) if gz else CONTENT
    file = _file(isolated_data, CONTENT, name=name, url=server.url(f"/{name}"))
    path = data.fetch(file)
    assert path == isolated_data / "cache" / name
    assert data.read_bytes(path) == CONTENT
    assert data.fetch(file) == path and server.requests == [f"/{name}"]
    assert _leftovers(path.parent) == [name]


@pytest.mark.parametrize(("gz", "kind"), CORRUPTIONS, ids=IDS)
def test_bad_download_is_a_clear_error_and_nothing_is_kept(isolated_data, server, gz, kind):
    name = "toy.gz" if gz else "toy.dat"
    bad = _corruptions(CONTENT, gz)[kind]
    server.routes[f"/{name}"] = bad
    file = _file(isolated_data, CONTENT, name=name, url=server.url(f"/{name}"))
    with pytest.raises(data.DataError) as err:
        data.fetch(file)
    message = str(err.value)
    assert file.url in message and _expected_problem(file, bad) in message
    assert "Nothing was kept" in message and "provide a good copy" in message
    assert _leftovers(isolated_data / "cache") == []


def test_connection_closed_early_is_an_error_and_nothing_is_kept(isolated_data, server):
    server.routes["/toy.dat"] = closing_early(CONTENT)
    file = _file(isolated_data, CONTENT, url=server.url("/toy.dat"))
    with pytest.raises(data.DataError, match=f"closed after {len(CONTENT) // 2} of"):
        data.fetch(file)
    assert _leftovers(isolated_data / "cache") == []


@pytest.mark.parametrize("behaviour", [stalling, dripping])
def test_slow_server_fails_within_the_deadline(isolated_data, server, monkeypatch, behaviour):
    monkeypatch.setenv("D2LKIT_DOWNLOAD_TIMEOUT", "0.6")
    server.routes["/toy.dat"] = behaviour(server, 10_000)
    file = _file(isolated_data, b"never", url=server.url("/toy.dat"))
    start = time.monotonic()
    with pytest.raises(data.DataError, match=r"did not finish within 0\.6 s") as err:
        data.fetch(file)
    assert time.monotonic() - start < 0.6 + 0.5
    assert "D2LKIT_DOWNLOAD_TIMEOUT" in str(err.value)
    assert _leftovers(isolated_data / "cache") == []


def test_timeout_argument_overrides_the_variable(isolated_data, server, monkeypatch):
    monkeypatch.setenv("D2LKIT_DOWNLOAD_TIMEOUT", "600")
    server.routes["/toy.dat"] = stalling(server, 10)
    file = _file(isolated_data, b"never", url=server.url("/toy.dat"))
    start = time.monotonic()
    with pytest.raises(data.DataError, match=r"within 0\.3 s"):
        data.download(file, timeout=0.3)
    assert time.monotonic() - start < 0.3 + 0.5
    for bad, error in [(0, ValueError), (-1.0, ValueError), (float("inf"), ValueError),
                       ("1", TypeError), (True, TypeError)]:
        with pytest.raises(error, match=r"^Invalid timeout: "):
            data.download(file, timeout=bad)
    with pytest.raises(TypeError, match=r"^Invalid progress: 1 "):
        data.download(file, progress=1)


def test_interrupted_download_leaves_no_temporary_file(isolated_data, server, monkeypatch):
    server.routes["/big.dat"] = bytes(2 << 20)
    file = _file(isolated_data, bytes(2 << 20), name="big.dat", url=server.url("/big.dat"))

    def interrupt(self, received):
        raise KeyboardInterrupt

    monkeypatch.setattr(data.downloads._Progress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        data.download(file, progress=True)
    assert _leftovers(isolated_data / "cache") == []


def test_progress_line_for_large_files(isolated_data, server, capsys):
    big = bytes(3 << 19)  # 1.5 MiB
    server.routes["/big.dat"] = big
    server.routes["/small.dat"] = b"small"
    data.download(_file(isolated_data, big, name="big.dat", url=server.url("/big.dat")),
                  progress=True)
    data.download(_file(isolated_data, b"small", name="small.dat", url=server.url("/small.dat")),
                  progress=True)
    assert capsys.readouterr().err.endswith("\rdownloading big.dat: 1.5 of 1.5 MiB (100%)\n")
    (isolated_data / "cache" / "big.dat").unlink()
    data.fetch(_file(isolated_data, big, name="big.dat", url=server.url("/big.dat")))
    assert capsys.readouterr().err == ""  # not a terminal, not a notebook: no progress line


def test_stale_temporary_files_are_removed_by_the_next_download(isolated_data, server):
    cache = isolated_data / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan = cache / f".toy.dat.{dead}.0123abcd.d2lkit-part"
    live = cache / f".toy.dat.{os.getpid()}.89abcdef.d2lkit-part"
    legacy_old, legacy_new = cache / "tmpab12cd_e", cache / "tmpzz34yy_x"
    for path in (orphan, live, legacy_old, legacy_new):
        path.write_bytes(b"partial")
    day_ago = time.time() - 25 * 3600
    os.utime(legacy_old, (day_ago, day_ago))
    server.routes["/toy.dat"] = b"good"
    data.fetch(_file(isolated_data, b"good", url=server.url("/toy.dat")))
    assert _leftovers(cache) == sorted([live.name, legacy_new.name, "toy.dat"])
    os.utime(live, (day_ago, day_ago))  # a day without change: no process will finish it
    (cache / "toy.dat").unlink()
    data.fetch(_file(isolated_data, b"good", url=server.url("/toy.dat")))
    assert live.name not in _leftovers(cache)


def test_not_found_lists_every_path_searched_and_why(isolated_data, server):
    file = _file(isolated_data, b"x", name="t10k-labels-idx1-ubyte.gz", url=server.url("/x.gz"))
    (isolated_data / "system").mkdir()
    (isolated_data / "system" / file.name).mkdir()  # a directory, not a file
    with pytest.raises(data.DataError) as err:
        data.fetch(file)
    message = str(err.value)
    searched = [
        f"{isolated_data / 'mirror' / file.name} (mirror, $D2LKIT_DATA_MIRROR): no such file",
        f"{isolated_data / 'system' / file.name} (system directory): not a regular file",
        f"{isolated_data / 'cache' / file.name} (d2lkit's cache): no such file",
        f"{file.url} (download): HTTP error 404",
    ]
    positions = [message.index(line) for line in searched]
    assert positions == sorted(positions)
    assert f"put it into the mirror directory {isolated_data / 'mirror'}" in message
    assert f"put it into the cache directory {isolated_data / 'cache'}" in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert _leftovers(isolated_data / "cache") == []


def test_not_found_without_mirror_says_so(isolated_data, monkeypatch):
    monkeypatch.delenv("D2LKIT_DATA_MIRROR")
    file = _file(isolated_data, b"x", url="http://127.0.0.1:9/x")  # the discard port: refused
    with pytest.raises(data.DataError) as err:
        data.fetch(file)
    message = str(err.value)
    assert "$D2LKIT_DATA_MIRROR: not set" in message
    assert "set D2LKIT_DATA_MIRROR to a directory that holds toy.dat" in message
    assert "http://127.0.0.1:9/x (download): cannot connect" in message


# ----- end to end: the real data sets, served locally --------------------------------------------


def test_fashion_mnist_downloads_verifies_caches_and_parses(
    isolated_data, server, monkeypatch, fresh_fmnist, real_fmnist_test_split
):
    served = {}
    for key, content in real_fmnist_test_split.items():
        file = data.FASHION_MNIST[key]
        served[f"/{file.name}"] = gzip.compress(content, compresslevel=1, mtime=0)
        monkeypatch.setitem(data.FASHION_MNIST, key, dataclasses.replace(
            file, url=server.url(f"/{file.name}"), system_dirs=(isolated_data / "none",)))
    server.routes.update(served)
    X, y = data.fashion_mnist(train=False)
    assert sorted(server.requests) == sorted(served)
    assert _leftovers(isolated_data / "cache") == sorted(name[1:] for name in served)
    assert X.shape == (10_000, 1, 28, 28) and torch.bincount(y).tolist() == [1000] * 10
    images = data.parse_idx(real_fmnist_test_split["test-images"])
    assert torch.equal(X, torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1))
    data.datasets._fashion_mnist_arrays.cache_clear()
    X2, y2 = data.fashion_mnist(train=False)
    assert len(server.requests) == 2  # the second call reads the cache
    assert torch.equal(X, X2) and torch.equal(y, y2)


def test_airfoil_downloads_verifies_caches_and_parses(
    isolated_data, server, monkeypatch, real_airfoil
):
    server.routes["/airfoil_self_noise.dat"] = real_airfoil
    monkeypatch.setattr(data.datasets, "AIRFOIL", dataclasses.replace(
        data.AIRFOIL, url=server.url("/airfoil_self_noise.dat")))
    X, y = data.airfoil()
    assert server.requests == ["/airfoil_self_noise.dat"]
    assert _leftovers(isolated_data / "cache") == ["airfoil_self_noise.dat"]
    assert X.shape == (1500, 5) and y.shape == (1500,)
    X2, _ = data.airfoil()
    assert len(server.requests) == 1 and torch.equal(X, X2)


# ----- parsing and the loaders -------------------------------------------------------------------


def test_parse_idx_reads_header_and_payload():
    payload = np.arange(6, dtype=np.uint8)
    raw = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + payload.tobytes()
    np.testing.assert_array_equal(data.parse_idx(raw), payload.reshape(2, 3))
    with pytest.raises(data.DataError):
        data.parse_idx(raw[:-1])
    with pytest.raises(data.DataError):
        data.parse_idx(b"\x00\x00\x0d\x01")


def test_airfoil_is_standardized_like_the_seed(real_airfoil):
    raw = np.genfromtxt(data.fetch(data.AIRFOIL), delimiter="\t")
    assert raw.shape == (1503, 6)
    X, y = data.airfoil()
    assert X.shape == (1500, 5) and y.shape == (1500,)
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)  # the seed works in float32
    np.testing.assert_allclose(X.numpy(), expected[:1500, :5], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y.numpy(), expected[:1500, 5], rtol=1e-4, atol=1e-4)
    for bad, error in [(0, ValueError), (1504, ValueError), (10.0, TypeError), ("5", TypeError)]:
        with pytest.raises(error, match=re.escape(f"Invalid n: {bad!r}")):
            data.airfoil(bad)


def test_fashion_mnist_shapes_and_ranges(real_fmnist_test_split):
    X, y = data.fashion_mnist(train=False)
    assert X.shape == (10_000, 1, 28, 28) and X.dtype == torch.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert y.dtype == torch.int64 and set(y.unique().tolist()) == set(range(10))
    assert torch.bincount(y).tolist() == [1000] * 10
    Xs, ys = data.fashion_mnist(train=False, n=100)
    assert Xs.shape == (100, 1, 28, 28) and ys.shape == (100,)
    with pytest.raises(ValueError, match="Invalid n: 10001"):
        data.fashion_mnist(train=False, n=10_001)
    with pytest.raises(TypeError, match=r"Invalid n: 100\.0"):
        data.fashion_mnist(train=False, n=100.0)


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
    with pytest.raises(ValueError, match="Invalid batch_size: 0"):
        data.MinibatchIter(X, batch_size=0)
    with pytest.raises(TypeError, match=r"Invalid batch_size: 2\.0"):
        data.MinibatchIter(X, batch_size=2.0)
