"""Download and unpack dataset archives without trusting their member names.

torchvision's ``download_and_extract_archive`` calls ``tarfile.extractall`` with no filter, so a crafted archive
could write outside the dataset folder (``../``, absolute paths, links pointing out). Here tar archives go through
the standard library's ``data`` filter (PEP 706) and zip members are checked before anything is written.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from torchvision.datasets.utils import download_url


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
            for (
                member
            ) in handle.getmembers():  # check everything first: nothing is written from a bad archive
                if member.name.startswith(
                    ("/", "\\")
                ):  # the data filter would strip the slash; refuse instead
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} refused (absolute path)")
                try:
                    tarfile.data_filter(member, str(to_dir))
                except tarfile.FilterError as error:
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} refused ({error})") from None
            handle.extractall(to_dir, filter="data")
    except tarfile.ReadError as error:
        raise UnsafeArchiveError(f"{archive}: not a tar or zip archive ({error})") from None
    return to_dir


def download_and_extract(url: str, folder: str | Path, filename: str, md5: str | None = None) -> Path:
    """Fetch ``url`` into ``folder/filename`` (checked against ``md5``, skipped when already there) and unpack it."""
    download_url(url, str(folder), filename, md5)
    return safe_extract(Path(folder) / filename, folder)
