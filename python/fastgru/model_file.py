"""fastgru's model file: the safetensors format, written and read without dependencies.

Layout (safetensors): an 8-byte little-endian header length N, N bytes of JSON, then the raw
little-endian tensor data. The JSON maps each weight's name (PyTorch's, e.g. ``weight_ih_l0``) to
its dtype, shape and byte range, and ``__metadata__`` holds strings:

- ``format``: ``"fastgru"``; ``format_version``: an integer, :data:`FORMAT_VERSION` when written;
- ``class``: the layer class (``"GRU"``); ``config``: its constructor arguments as JSON;
- ``fastgru_version``: the writing package's version.

A file from a newer format version, a truncated or corrupted file, or one not written by fastgru
is refused with a ValueError naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Dict, Mapping, Tuple

import numpy as np

__all__ = ["FORMAT_VERSION", "write_model_file", "read_model_file"]

FORMAT_VERSION = 1

_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_NAMES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}
# A header larger than this is not a model header (the format itself caps it at 100 MB).
_MAX_HEADER_BYTES = 100_000_000


def write_model_file(path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> None:
    """Writes ``tensors`` (name -> float32/float64 array) and string ``metadata`` to ``path``."""
    header: Dict[str, object] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        array = np.asarray(array)
        if array.dtype not in _NAMES:
            raise TypeError(f"{name}: expected float32 or float64, got {array.dtype}")
        blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    temporary = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(temporary, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)
    os.replace(temporary, path)  # never leave a half-written model under the real name


def read_model_file(path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a file written by :func:`write_model_file`: (tensors, metadata)."""
    with open(path, "rb") as f:
        content = f.read()

    def refuse(reason):
        return ValueError(f"{os.fspath(path)}: not a readable fastgru model file: {reason}")

    if len(content) < 8:
        raise refuse(f"expected at least 8 bytes, got {len(content)}")
    (header_bytes,) = struct.unpack("<Q", content[:8])
    if header_bytes > min(_MAX_HEADER_BYTES, len(content) - 8):
        raise refuse(f"header of {header_bytes} bytes does not fit in a {len(content)}-byte file (truncated?)")
    try:
        header = json.loads(content[8 : 8 + header_bytes].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise refuse(f"header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise refuse("header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("format") != "fastgru":
        raise refuse("no fastgru metadata (a safetensors file from another library?)")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise refuse(f"format_version {metadata.get('format_version')!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise refuse(f"format version {version} is newer than this fastgru reads ({FORMAT_VERSION}): upgrade fastgru")
    data = memoryview(content)[8 + header_bytes :]
    tensors = {}
    for name, entry in header.items():
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = tuple(int(n) for n in entry["shape"])
            begin, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise refuse(f"tensor {name!r} has a malformed entry {entry!r}") from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not 0 <= begin <= end <= len(data) or end - begin != expected or min(shape, default=1) < 0:
            raise refuse(f"tensor {name!r}: bytes {begin}..{end} do not hold shape {shape} of {dtype} "
                         f"within {len(data)} data bytes (truncated?)")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return tensors, {str(k): str(v) for k, v in metadata.items()}
