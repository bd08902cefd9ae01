"""Downloading a data file into the cache: atomically, verified, within a total deadline.

A download is written to a temporary file in the cache (``.<name>.<pid>.<random>.d2lkit-part``),
verified, and only then renamed to its final name; it must finish within
``$D2LKIT_DOWNLOAD_TIMEOUT`` seconds in total, however slowly the server sends. Temporary files
left by a process that was killed are removed by the next download into the same cache.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from d2lkit import checks, env
from d2lkit.data.files import (
    CACHE_ENV,
    TIMEOUT_ENV,
    DataError,
    DataFile,
    _BadFile,
    _content,
    _not_found_message,
    _ways,
    cache_dir,
)

READ_TIMEOUT = 30.0
"""Seconds a download may wait for the server's next bytes (never more than the time left)."""

PROGRESS_MIN_BYTES = 1 << 20
"""Downloads at least this large show a progress line where a person watches."""

_CHUNK = 1 << 16
_PART_SUFFIX = ".d2lkit-part"
_PART_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}" + re.escape(_PART_SUFFIX) + "$")
_LEGACY_PART_NAME = re.compile(r"^tmp[a-z0-9_]{8}$")  # NamedTemporaryFile, before d2lkit 0.2
_STALE_AFTER = 24 * 3600.0


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
