"""Data sets (airfoil self-noise, Fashion-MNIST) and an in-memory minibatch iterator.

Every file is looked up, in this order, in

1. the directory named by ``$D2LKIT_DATA_MIRROR`` (a local mirror, e.g. for offline CI);
2. the system directories a package manager fills (Debian's ``dataset-fashion-mnist``);
3. the user cache, ``$D2LKIT_CACHE`` or ``~/.cache/d2lkit``;
4. its official URL, downloaded into the cache.

Whatever the source, the file's checksum is verified, on the content it is read as (decompressed
for a ``.gz``), before it is used. A bad copy in a directory the user owns (mirror, system) is
reported with a :class:`DataWarning` and left alone, and the next source is used; a bad copy in
the cache, which d2lkit owns, is removed and downloaded again, once, with a warning saying so. A
download is written to a temporary file in the cache (``.<name>.<pid>.<random>.d2lkit-part``),
verified, and only then renamed to its final name; it must finish within
``$D2LKIT_DOWNLOAD_TIMEOUT`` seconds in total. Temporary files left by a process that was killed
are removed by the next download into the same cache.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import io
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from d2lkit import checks, env

MIRROR_ENV = env.DATA_MIRROR
CACHE_ENV = env.CACHE
TIMEOUT_ENV = env.DOWNLOAD_TIMEOUT

READ_TIMEOUT = 30.0
"""Seconds a download may wait for the server's next bytes (never more than the time left)."""

PROGRESS_MIN_BYTES = 1 << 20
"""Downloads at least this large show a progress line where a person watches."""

_CHUNK = 1 << 16
_PART_SUFFIX = ".d2lkit-part"
_PART_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}" + re.escape(_PART_SUFFIX) + "$")
_LEGACY_PART_NAME = re.compile(r"^tmp[a-z0-9_]{8}$")  # NamedTemporaryFile, before d2lkit 0.2
_STALE_AFTER = 24 * 3600.0


class DataError(RuntimeError):
    """A data file cannot be found, downloaded or trusted."""


class DataWarning(UserWarning):
    """A data file was skipped or replaced: a bad copy in the mirror, the system or the cache."""


@dataclass(frozen=True)
class DataFile:
    """A remote file, its checksum and where a package manager may have installed it.

    For a ``.gz`` file the checksum is that of the *decompressed* content, so that re-compressed
    copies (Debian re-compresses Fashion-MNIST) verify too.
    """

    name: str
    url: str
    algorithm: str
    digest: str
    system_dirs: tuple[Path, ...] = field(default=())


AIRFOIL = DataFile(
    "airfoil_self_noise.dat",
    "http://d2l-data.s3-accelerate.amazonaws.com/airfoil_self_noise.dat",
    "sha1",
    "76e5be1548fd8222e5074cf0faae75edff8cf93f",
)

_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FMNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
FASHION_MNIST = {
    "train-images": DataFile(
        "train-images-idx3-ubyte.gz", _FMNIST_URL + "train-images-idx3-ubyte.gz", "sha256",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", _FMNIST_DIRS),
    "train-labels": DataFile(
        "train-labels-idx1-ubyte.gz", _FMNIST_URL + "train-labels-idx1-ubyte.gz", "sha256",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", _FMNIST_DIRS),
    "test-images": DataFile(
        "t10k-images-idx3-ubyte.gz", _FMNIST_URL + "t10k-images-idx3-ubyte.gz", "sha256",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", _FMNIST_DIRS),
    "test-labels": DataFile(
        "t10k-labels-idx1-ubyte.gz", _FMNIST_URL + "t10k-labels-idx1-ubyte.gz", "sha256",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", _FMNIST_DIRS),
}
FASHION_MNIST_LABELS = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)


def cache_dir() -> Path:
    """Return the download cache, ``$D2LKIT_CACHE`` or ``~/.cache/d2lkit``."""
    return env.cache()


# ----- reading and verifying -----------------------------------------------------------------


def _decode(raw: bytes, name: str, path: Path) -> bytes:
    """Return ``raw`` decompressed if ``name`` ends in ``.gz``; a broken gzip is a DataError."""
    if not name.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise _BadFile(path, f"it is not a valid gzip file ({err})") from err


def read_bytes(path: Path) -> bytes:
    """Return the content of ``path``, decompressed if its name ends in ``.gz``."""
    path = Path(path)
    return _decode(path.read_bytes(), path.name, path)


def checksum(path: Path, algorithm: str) -> str:
    """Return the hex digest of ``path``'s (decompressed) content."""
    return hashlib.new(algorithm, read_bytes(path)).hexdigest()


class _BadFile(DataError):
    """A copy of a data file whose content is not the published one."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path} is corrupted or is not the published file: {problem}.")
        self.path, self.problem = path, problem


def _content(path: Path, file: DataFile) -> bytes:
    """Return the verified content ``file`` is read as, from the copy at ``path``."""
    content = _decode(path.read_bytes(), file.name, path)
    actual = hashlib.new(file.algorithm, content).hexdigest()
    if actual != file.digest:
        what = "decompressed content" if file.name.endswith(".gz") else "content"
        raise _BadFile(
            path, f"the {file.algorithm} of its {what} is {actual}, expected {file.digest}"
        )
    return content


def verify(path: Path, file: DataFile) -> Path:
    """Return ``path`` if it holds ``file``'s content, else raise ``DataError`` with the fix."""
    try:
        _content(Path(path), file)
    except _BadFile as err:
        raise DataError(f"{err} {_fix(file)}") from None
    return Path(path)


def _fix(file: DataFile) -> str:
    return (f"To fix it, replace it with a good copy of {file.name}, or delete it so that d2lkit "
            f"looks further (mirror, system directory, cache, then {file.url}).")


# ----- where a file is looked for ------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    path: Path
    kind: str  # "mirror", "system" or "cache"
    label: str


def _sources(file: DataFile) -> list[_Source]:
    mirror = env.data_mirror()
    sources = [_Source(mirror / file.name, "mirror", f"mirror, ${MIRROR_ENV}")] if mirror else []
    sources += [_Source(d / file.name, "system", "system directory") for d in file.system_dirs]
    sources.append(_Source(cache_dir() / file.name, "cache", "d2lkit's cache"))
    return sources


def candidates(file: DataFile) -> list[Path]:
    """Return the local paths where ``file`` is looked for, in order."""
    return [s.path for s in _sources(file)]


def load(file: DataFile) -> bytes:
    """Return the verified content of ``file`` (decompressed for a ``.gz``), found as ``fetch``."""
    return _find(file)[1]


def fetch(file: DataFile) -> Path:
    """Return a verified local path of ``file``: mirror, system copy, cache, else download."""
    return _find(file)[0]


def _find(file: DataFile) -> tuple[Path, bytes]:
    searched: list[tuple[str, str]] = []
    if env.data_mirror() is None:
        searched.append((f"${MIRROR_ENV}", "not set"))
    for source in _sources(file):
        path = source.path
        if not path.exists():
            searched.append((f"{path} ({source.label})", "no such file"))
            continue
        if not path.is_file():
            searched.append((f"{path} ({source.label})", "not a regular file"))
            continue
        try:
            return path, _content(path, file)
        except _BadFile as err:
            searched.append((f"{path} ({source.label})", err.problem))
            if source.kind == "cache":
                path.unlink()
                warnings.warn(
                    f"{err} It was in d2lkit's cache: d2lkit removed it and downloads it again "
                    f"from {file.url}.", DataWarning, stacklevel=3)
            else:
                warnings.warn(
                    f"{err} It is in a directory you own ({source.label}), which d2lkit never "
                    f"changes: it is skipped and the next source is used. {_fix(file)}",
                    DataWarning, stacklevel=3)
    return _download(file, None, None, searched)


# ----- downloading ---------------------------------------------------------------------------


def download(file: DataFile, timeout: float | None = None, progress: bool | None = None) -> Path:
    """Download ``file`` into the cache, verify it and return its path.

    The whole download must finish within ``timeout`` seconds (default
    ``$D2LKIT_DOWNLOAD_TIMEOUT``, else 600). ``progress`` shows a progress line on stderr for
    files of at least 1 MiB; by default only where a person watches (a terminal, or an
    interactive Jupyter front end, never a batch build).
    """
    if timeout is not None:
        timeout = checks.positive("timeout", timeout)
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"Invalid progress: {progress!r} (expected True, False or None)")
    return _download(file, timeout, progress, [])[0]


def _download(
    file: DataFile, timeout: float | None, progress: bool | None, searched: list[tuple[str, str]]
) -> tuple[Path, bytes]:
    deadline = env.download_timeout() if timeout is None else timeout
    cache = cache_dir()
    target = cache / file.name
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"Cannot create the cache directory {cache} ({err}). Set {CACHE_ENV} "
                        "to a directory you can write to.") from err
    _remove_stale_parts(cache)
    part = cache / f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}{_PART_SUFFIX}"
    try:
        try:
            _transfer(file, part, deadline, progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            searched.append((f"{file.url} (download)", _reason(err)))
            raise DataError(_not_found_message(file, searched)) from err
        try:
            content = _content(part, file)
        except _BadFile as err:
            raise DataError(
                f"Downloaded {file.url}, but it is not the published file: {err.problem}. "
                f"Nothing was kept in the cache {cache}. The server may have sent an error page "
                f"or a truncated file: run again later, or provide a good copy of {file.name} "
                f"yourself:\n{_ways(file)}") from None
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target, content


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP error {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect: {err.reason}"
    return str(err)


def _socket_of(response: Any) -> Any:
    """Return the socket under an ``http.client`` response, or None (another kind of response)."""
    return getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)


def _transfer(file: DataFile, part: Path, deadline: float, progress: bool | None) -> None:
    """Copy ``file.url`` into ``part``; raise ``TimeoutError`` once ``deadline`` seconds pass.

    Each wait for the server is bounded by the time left (and by ``READ_TIMEOUT``), so the whole
    download, dripping servers included, ends within the deadline.
    """
    start = time.monotonic()
    late = TimeoutError(f"the download did not finish within {deadline:g} s (set {TIMEOUT_ENV} "
                        "to allow longer)")

    def wait() -> float:
        left = deadline - (time.monotonic() - start)
        if left <= 0:
            raise late
        return min(READ_TIMEOUT, left)

    request = urllib.request.Request(file.url, headers={"User-Agent": "d2lkit"})
    with urllib.request.urlopen(request, timeout=wait()) as response, open(part, "wb") as out:
        size = int(response.headers.get("Content-Length") or 0)
        show = _progress_wanted() if progress is None else progress
        meter = _Progress(file.name, size) if show and size >= PROGRESS_MIN_BYTES else None
        sock = _socket_of(response)
        received = 0
        while True:
            limit = wait()
            if sock is not None:
                sock.settimeout(limit)
            try:
                chunk = response.read1(_CHUNK)
            except TimeoutError:
                if limit < READ_TIMEOUT:
                    raise late from None
                raise TimeoutError(f"the server sent nothing for {READ_TIMEOUT:g} s") from None
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            if meter:
                meter.update(received)
        if meter:
            meter.close(received)
        if size and received != size:
            raise OSError(f"the connection closed after {received} of {size} bytes")


def _progress_wanted() -> bool:
    return env.interactive_kernel() or (sys.stderr is not None and sys.stderr.isatty())


class _Progress:
    """A one-line progress display on stderr, redrawn at most every half second."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size, self.last = name, size, 0.0

    def update(self, received: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            self._draw(received, "\r")

    def close(self, received: int) -> None:
        self._draw(received, "\r")
        sys.stderr.write("\n")
        sys.stderr.flush()

    def _draw(self, received: int, start: str) -> None:
        sys.stderr.write(f"{start}downloading {self.name}: {received / 2**20:.1f} of "
                         f"{self.size / 2**20:.1f} MiB ({100 * received // self.size}%)")
        sys.stderr.flush()


def _remove_stale_parts(cache: Path) -> list[Path]:
    """Remove the temporary files of downloads into ``cache`` that no process will finish.

    A file is stale when the process that wrote it no longer runs (its id is in the name) or it
    has not changed for a day (a process of another machine sharing the cache). Return them.
    """
    removed = []
    now = time.time()
    for path in cache.iterdir():
        ours = _PART_NAME.match(path.name)
        legacy = _LEGACY_PART_NAME.match(path.name)
        if not (ours or legacy):
            continue
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > _STALE_AFTER or (ours and not _running(int(ours.group(1)))) or (
                legacy and age > 3600):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _ways(file: DataFile) -> str:
    mirror = env.data_mirror()
    ways = [
        f"put it into the mirror directory {mirror}" if mirror else
        f"set {MIRROR_ENV} to a directory that holds {file.name}",
        f"put it into the cache directory {cache_dir()} (or set {CACHE_ENV} to another one)",
        f"connect to the internet so that {file.url} can be downloaded, and run again",
    ]
    if file.system_dirs:
        ways.insert(1, "install the Debian package: apt-get install -y dataset-fashion-mnist "
                       f"(it provides {file.system_dirs[0] / file.name})")
    return "\n".join(f"  - {w}" for w in ways)


def _not_found_message(file: DataFile, searched: list[tuple[str, str]]) -> str:
    listed = "\n".join(f"  - {where}: {why}" for where, why in searched)
    return (f"{file.name} was not found and could not be downloaded. Searched, in order:\n"
            f"{listed}\nTo provide it, either\n{_ways(file)}")


def airfoil(n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the first ``n`` airfoil examples: features ``[n, 5]`` and target ``[n]``.

    Every column is standardized with the mean and (population) standard deviation of all 1503
    rows, as the book this follows does, before the first ``n`` rows are taken.
    """
    n = checks.integer("n", n, minimum=1)
    if n > 1503:
        raise ValueError(f"Invalid n: {n!r} (expected 1 <= n <= 1503, the rows of the data set)")
    data = np.genfromtxt(io.BytesIO(load(AIRFOIL)), dtype=np.float32, delimiter="\t")
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    tensor = torch.from_numpy(data[:n])
    return tensor[:, :-1].contiguous(), tensor[:, -1].contiguous()


def airfoil_iter(
    batch_size: int, n: int = 1500, seed: int = 0, device: torch.device | None = None
) -> tuple[MinibatchIter, int]:
    """Return a shuffling minibatch iterator over the airfoil data and the number of features."""
    X, y = airfoil(n)
    device = device or torch.device("cpu")
    return MinibatchIter(X.to(device), y.to(device), batch_size=batch_size, seed=seed), X.shape[1]


def parse_idx(raw: bytes) -> np.ndarray:
    """Return the array stored in an IDX file (the format of MNIST and Fashion-MNIST)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError("Not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"IDX payload has {data.size} bytes, header says shape {shape}")
    return data.reshape(shape)


@functools.lru_cache(maxsize=2)
def _fashion_mnist_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    images = parse_idx(load(FASHION_MNIST[f"{split}-images"]))
    labels = parse_idx(load(FASHION_MNIST[f"{split}-labels"]))
    return images, labels


def fashion_mnist(
    train: bool = True, n: int | None = None, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return Fashion-MNIST images ``[N, 1, 28, 28]`` (float32 in [0, 1]) and labels ``[N]``.

    ``n`` keeps the first ``n`` examples (a fixed, class-balanced-enough subset for quick runs).
    """
    images, labels = _fashion_mnist_arrays("train" if train else "test")
    if n is not None:
        n = checks.integer("n", n, minimum=1)
        if n > len(labels):
            raise ValueError(f"Invalid n: {n!r} (expected 1 <= n <= {len(labels)})")
        images, labels = images[:n], labels[:n]
    X = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    device = device or torch.device("cpu")
    return X.to(device), y.to(device)


class MinibatchIter:
    """Iterate over minibatches of tensors that already sit on their device.

    Each pass (epoch) draws a new permutation from a generator seeded once with ``seed`` and
    gathers each minibatch with one indexing operation per tensor: no per-item Python work, no
    worker processes, no host-to-device copies, and nothing gathered for batches never reached.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not tensors:
            raise ValueError("MinibatchIter needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"Tensors differ in length: {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.batch_size = checks.integer("batch_size", batch_size, minimum=1)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(checks.integer("seed", seed))

    @property
    def num_examples(self) -> int:
        """Return the number of examples in one pass."""
        return len(self.tensors[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_examples // self.batch_size
        return -(-self.num_examples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = None
        if self.shuffle:
            order = torch.randperm(self.num_examples, generator=self.generator)
            order = order.to(self.tensors[0].device)
        for i in range(len(self)):
            start = i * self.batch_size
            if order is None:
                yield tuple(t[start: start + self.batch_size] for t in self.tensors)
            else:
                idx = order[start: start + self.batch_size]
                yield tuple(t[idx] for t in self.tensors)
