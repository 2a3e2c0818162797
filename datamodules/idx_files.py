"""Read and write IDX files, the on-disk format of MNIST, Fashion-MNIST and KMNIST, gzipped or not.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one big-endian int32 per
dimension, then the values in C order. torchvision's reader opens only uncompressed files and fails on a short
one with a bare reshape error; this one reads the ``.gz`` files as they are published (and as Debian's
``dataset-fashion-mnist`` installs them) and says which file is short, and by how much.

Example:
    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path).tolist()
    [3, 1, 4]
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

# type code -> dtype (big-endian for the multi-byte ones)
TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4")}
TYPES |= {0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IDXFileError(ValueError):
    """An IDX file that is not one, or is shorter or longer than its header says."""


def read_idx(path: str | Path) -> np.ndarray:
    """The array an IDX file (``.gz`` or plain) holds, in native byte order."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise IDXFileError(f"{path}: not a readable gzip file ({error})") from None
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in TYPES:
        raise IDXFileError(f"{path}: not an IDX file (its first bytes are {raw[:4].hex() or 'missing'})")
    dtype, ndim = TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFileError(f"{path}: truncated inside its header ({len(raw)} of {header} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        kind = "truncated" if found < expected else "longer than its header says"
        raise IDXFileError(
            f"{path}: {kind}: shape {shape} needs {expected} bytes of data, the file has {found}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    path = Path(path)
    codes = {dtype.newbyteorder("="): code for code, dtype in TYPES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX has no type for {array.dtype}")
    big_endian = array.astype(TYPES[codes[native]])
    data = bytes([0, 0, codes[native], array.ndim])
    data += np.asarray(array.shape, dtype=">i4").tobytes() + big_endian.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
