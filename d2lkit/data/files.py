"""A data file: its checksum, how a copy is verified, and what to say when none is good.

The checksum of a ``.gz`` file is that of its *decompressed* content, the content it is read as,
so that re-compressed copies (Debian re-compresses Fashion-MNIST) verify too.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from d2lkit import env

MIRROR_ENV = env.DATA_MIRROR
CACHE_ENV = env.CACHE
TIMEOUT_ENV = env.DOWNLOAD_TIMEOUT


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


def cache_dir() -> Path:
    """Return the download cache, ``$D2LKIT_CACHE`` or ``~/.cache/d2lkit``."""
    return env.cache()



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
