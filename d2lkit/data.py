"""Data sets (airfoil self-noise, Fashion-MNIST) and an in-memory minibatch iterator.

Every file is looked up, in this order, in

1. the directory named by ``$D2LKIT_DATA_MIRROR`` (a local mirror, e.g. for offline CI);
2. the system directories a package manager fills (Debian's ``dataset-fashion-mnist``);
3. the user cache, ``$D2LKIT_CACHE`` or ``~/.cache/d2lkit``;
4. its official URL, downloaded into the cache.

Whatever the source, the file's checksum is verified before it is used.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

MIRROR_ENV = "D2LKIT_DATA_MIRROR"
CACHE_ENV = "D2LKIT_CACHE"


class DataError(RuntimeError):
    """A data file cannot be found, downloaded or trusted."""


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
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "d2lkit")


def read_bytes(path: Path) -> bytes:
    """Return the content of ``path``, decompressed if its name ends in ``.gz``."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def checksum(path: Path, algorithm: str) -> str:
    """Return the hex digest of ``path``'s (decompressed) content."""
    return hashlib.new(algorithm, read_bytes(path)).hexdigest()


def verify(path: Path, file: DataFile) -> Path:
    """Return ``path`` if its checksum is ``file``'s, else raise ``DataError`` saying how to fix."""
    actual = checksum(path, file.algorithm)
    if actual != file.digest:
        raise DataError(
            f"Checksum mismatch for {path}: expected {file.algorithm} {file.digest}, "
            f"got {actual}. The file is corrupted or is not the published one. Delete it and "
            f"run again to download it afresh from {file.url}, or replace it with a good copy."
        )
    return path


def candidates(file: DataFile) -> list[Path]:
    """Return the local paths where ``file`` is looked for, in order."""
    dirs: list[Path] = []
    if os.environ.get(MIRROR_ENV):
        dirs.append(Path(os.environ[MIRROR_ENV]))
    dirs.extend(file.system_dirs)
    dirs.append(cache_dir())
    return [d / file.name for d in dirs]


def download(file: DataFile, timeout: float = 30.0) -> Path:
    """Download ``file`` into the cache, verify it and return its path."""
    target = cache_dir() / file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(file.url, timeout=timeout) as response:
                shutil.copyfileobj(response, tmp)
        except (urllib.error.URLError, OSError) as err:
            tmp.close()
            os.unlink(tmp.name)
            raise DataError(_not_found_message(file, err)) from err
    try:
        verify(Path(tmp.name), file)
    except DataError:
        os.unlink(tmp.name)
        raise
    os.replace(tmp.name, target)
    return target


def fetch(file: DataFile) -> Path:
    """Return a verified local path of ``file``: mirror, system copy, cache, else download."""
    for path in candidates(file):
        if path.is_file():
            return verify(path, file)
    return download(file)


def _not_found_message(file: DataFile, err: Exception) -> str:
    ways = [
        f"set {MIRROR_ENV} to a directory that holds {file.name}",
        f"put {file.name} into the cache directory {cache_dir()} (or set {CACHE_ENV})",
        f"connect to the internet so that {file.url} can be downloaded ({err})",
    ]
    if file.system_dirs:
        ways.insert(1, "install the Debian package: apt-get install -y dataset-fashion-mnist "
                       f"(it provides {file.system_dirs[0]}/{file.name})")
    listed = "\n".join(f"  - {w}" for w in ways)
    return f"{file.name} was not found locally and could not be downloaded. Either\n{listed}"


def airfoil(n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the first ``n`` airfoil examples: features ``[n, 5]`` and target ``[n]``.

    Every column is standardized with the mean and (population) standard deviation of all 1503
    rows, as the book this follows does, before the first ``n`` rows are taken.
    """
    if not 0 < n <= 1503:
        raise ValueError(f"Invalid number of airfoil examples: {n} (1 to 1503)")
    data = np.genfromtxt(fetch(AIRFOIL), dtype=np.float32, delimiter="\t")
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
    images = parse_idx(read_bytes(fetch(FASHION_MNIST[f"{split}-images"])))
    labels = parse_idx(read_bytes(fetch(FASHION_MNIST[f"{split}-labels"])))
    return images, labels


def fashion_mnist(
    train: bool = True, n: int | None = None, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return Fashion-MNIST images ``[N, 1, 28, 28]`` (float32 in [0, 1]) and labels ``[N]``.

    ``n`` keeps the first ``n`` examples (a fixed, class-balanced-enough subset for quick runs).
    """
    images, labels = _fashion_mnist_arrays("train" if train else "test")
    if n is not None:
        if not 0 < n <= len(labels):
            raise ValueError(f"Invalid number of examples: {n} (1 to {len(labels)})")
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
        if batch_size < 1:
            raise ValueError(f"Invalid batch size: {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

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
