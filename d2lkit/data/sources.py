"""Where a data file is looked for: the mirror, the system directories, the cache, the web.

A bad copy in a directory the user owns (mirror, system) is reported with a ``DataWarning`` and
left alone, and the next source is used; a bad copy in the cache, which d2lkit owns, is removed and
downloaded again, once, with a warning saying so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from d2lkit import env
from d2lkit.data.downloads import _download
from d2lkit.data.files import MIRROR_ENV, DataFile, DataWarning, _BadFile, _content, _fix, cache_dir


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
