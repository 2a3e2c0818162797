"""Download and unpack dataset archives without trusting their member names.

torchvision's ``download_and_extract_archive`` calls ``tarfile.extractall`` with no filter, so a crafted archive
could write outside the dataset folder (``../``, absolute paths, links pointing out). Here tar archives go through
the standard library's ``data`` filter (PEP 706) and zip members are checked before anything is written.
Downloads resume: bytes go to ``<file>.part``, an interrupted transfer continues from where it stopped (HTTP
``Range``), and the file only takes its real name once its checksum matches.
"""

from __future__ import annotations

import hashlib
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm  # not rich: importing rich.console early slows later Lightning runs under pytest 6x

CHUNK = 1 << 20


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder, or is a device, link or other special file."""


def safe_extract(archive: str | Path, to_dir: str | Path) -> Path:
    """Unpack a ``.tar[.gz|.bz2|.xz]`` or ``.zip`` into ``to_dir``; refuse the whole archive if one member is unsafe."""
    archive, to_dir = Path(archive), Path(to_dir)
    to_dir.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            root = to_dir.resolve()
            for name in handle.namelist():
                target = (to_dir / name).resolve()
                if name.startswith(("/", "\\")) or not target.is_relative_to(root):
                    raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {to_dir}")
            handle.extractall(to_dir)
        return to_dir
    try:
        with tarfile.open(archive) as handle:
            # check everything first: nothing is written from a bad archive
            for member in handle.getmembers():
                # the data filter would strip the slash; refuse instead
                if member.name.startswith(("/", "\\")):
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} refused (absolute path)")
                try:
                    tarfile.data_filter(member, str(to_dir))
                except tarfile.FilterError as error:
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} refused ({error})") from None
            handle.extractall(to_dir, filter="data")
    except tarfile.ReadError as error:
        raise UnsafeArchiveError(f"{archive}: not a tar or zip archive ({error})") from None
    return to_dir


class ChecksumError(ValueError):
    """A downloaded file's checksum differs from the published one."""


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (archives are gigabytes)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_resumable(
    url: str, path: str | Path, sha256: str | None = None, md5: str | None = None, timeout: float = 60.0
) -> Path:
    """Download ``url`` to ``path`` with a progress bar, resuming a previous partial download.

    An existing ``path`` whose checksum matches is kept (nothing is fetched). Partial bytes live in
    ``<path>.part``; when the server honours ``Range`` the transfer continues after them, otherwise it starts
    over. A finished file whose checksum differs is removed and :class:`ChecksumError` raised.
    """
    path = Path(path)
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5) if md5 else (None, None)
    if path.is_file() and (expected is None or file_digest(path, algorithm) == expected):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        _fetch(request, part, have, timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not have:  # 416: the part file already holds every byte
            raise
    if expected is not None:
        actual = file_digest(part, algorithm)
        if actual != expected:
            part.unlink()
            raise ChecksumError(
                f"{url}: {algorithm} {actual} differs from the published {expected}; removed it"
            )
    part.replace(path)
    return path


def _fetch(request: urllib.request.Request, part: Path, have: int, timeout: float) -> None:
    """Append the response to ``part`` when the server resumed at ``have`` (206), else rewrite it."""
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = have > 0 and response.status == 206
        have = have if resumed else 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        progress = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name[: -len(".part")])
        with open(part, "ab" if resumed else "wb") as handle, progress:
            for block in iter(lambda: response.read(CHUNK), b""):
                handle.write(block)
                progress.update(len(block))


def download_and_extract(
    url: str, folder: str | Path, filename: str, md5: str | None = None, sha256: str | None = None
) -> Path:
    """Fetch ``url`` into ``folder/filename`` (resumable, checked, kept when already complete) and unpack it."""
    archive = download_resumable(url, Path(folder) / filename, sha256=sha256, md5=md5)
    return safe_extract(archive, folder)
