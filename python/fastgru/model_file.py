"""fastgru's model file: the safetensors format, written and read without dependencies.

Layout (safetensors): an 8-byte little-endian header length N, N bytes of JSON, then the raw
little-endian tensor data. The JSON maps each weight's name (PyTorch's, e.g. ``weight_ih_l0``) to
its dtype, shape and byte range, and ``__metadata__`` holds strings (the format, its version, the
layer class and its configuration as JSON). A bf16 or int8 GRU (``GRU.quantize``) stores its weight
matrices as it computes with them: BF16 bit patterns, or I8 values with one float32 scale per row
(:func:`stored_tensors`). README.md ("The model file") specifies every field;
this module and the C++ reader (cpp/src/api/model_file.cpp) enforce exactly that, and
tests/test_model_file.py feeds one corpus of malformed files to both.

Reading an untrusted file costs memory and time bounded by a small multiple of its size: only
regular files are opened, the header is capped, its JSON may hold at most one value per 4 bytes,
and every configured size is checked against the tensors present before any layer is built. Every
malformed file raises :class:`ModelFileError` (a ValueError) naming the file and what is wrong.

Writing never destroys: the file is written beside its destination, flushed to disk and renamed
over it (see :func:`atomic_write`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import struct
import warnings
from typing import Callable, Dict, Mapping, NamedTuple, Tuple, Union

import numpy as np

from . import _core
from ._version import __version__
from .files import atomic_write, describe_file_type

__all__ = ["FORMAT_VERSION", "ModelFileError", "write_model_file", "read_model_file", "save_layer",
           "check_layer_config", "layer_plan", "check_tensors", "stored_tensors", "stored_weights", "file_config",
           "dequantized", "check_identity_statistics", "identity_running_var", "folded_state"]

FORMAT_VERSION = 1

MAX_HEADER_BYTES = 100_000_000  # safetensors' own readers cap the header there
MAX_SIZE = 2**31  # configured sizes: 1..2^31
MAX_OFFSET = 2**53  # shape entries and byte offsets: 0..2^53 (exact in a double)

# The tensors' safetensors dtypes and the arrays that hold them: a BF16 tensor is read and
# written as its bit patterns in uint16 (NumPy has no bfloat16).
_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "BF16": np.dtype("<u2"), "I8": np.dtype("i1")}
_NAMES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("uint16"): "BF16", np.dtype("int8"): "I8"}

class ModelFileError(ValueError):
    """A file that is not a readable fastgru model file (malformed, foreign, truncated, newer)."""


# ----------------------------------------------------------------------------- writing
def write_model_file(path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> None:
    """Writes ``tensors`` (name -> float32, float64 or int8 array, or uint16 for bfloat16 bit
    patterns) and string ``metadata`` to ``path`` atomically (:func:`atomic_write`)."""
    header: Dict[str, object] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        array = np.asarray(array)
        if array.dtype not in _NAMES:
            raise TypeError(f"{name}: expected float32, float64, int8 or uint16 (bfloat16 bits), got {array.dtype}")
        blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    with atomic_write(path) as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


# ----------------------------------------------------------------------------- reading
def read_model_file(path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a file written by :func:`write_model_file`: (tensors, metadata).

    Checks everything that does not depend on the layer class: a regular file, the header's size
    and JSON, the fastgru metadata and its version, and that the tensors tile the data exactly
    (before the data is read). The tensors are read-only arrays (BF16 ones as uint16 bit
    patterns). Raises :class:`ModelFileError`;
    OSError where the file cannot be opened at all.
    """
    refuse = refusal(path)
    with _open_regular_file(path, refuse) as (handle, size):
        if size < 8:
            raise refuse(f"expected at least 8 bytes, got {size}")
        prefix = _read_exactly(handle, 8, refuse)
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            raise refuse(_foreign_format(prefix) or (
                f"header of {header_bytes} bytes is over the format's cap of {MAX_HEADER_BYTES}"
                if header_bytes > MAX_HEADER_BYTES
                else f"header of {header_bytes} bytes does not fit in a {size}-byte file (truncated?)"))
        header = parse_json(_read_exactly(handle, header_bytes, refuse), "header", refuse)
        if not isinstance(header, dict):
            raise refuse("header is not a JSON object")
        metadata = check_metadata(header.pop("__metadata__", None), refuse)
        # Checked against the file's size before its data is read: a file claiming more than its
        # header describes (a sparse file, say) costs nothing.
        entries = _tensor_entries(header, size - 8 - header_bytes, refuse)
        data = memoryview(_read_exactly(handle, size - 8 - header_bytes, refuse))
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        tensors[name] = array if array.dtype.isnative else array.astype(dtype.newbyteorder("="))
    return tensors, metadata


def refusal(path) -> Callable[[str], ModelFileError]:
    """The error for ``path`` with a reason: ``raise refusal(path)("...")``."""
    return lambda reason: ModelFileError(f"{os.fsdecode(path)}: not a readable fastgru model file: {reason}")


def _foreign_format(prefix: bytes) -> str:
    """What a file whose header makes no sense probably is, and how to load it (or "")."""
    # A pickle: PROTO 2..5, then an opcode, never a NUL (which a model file's header size of
    # 0x280..0x5ff bytes starts the same way with).
    pickle = prefix[:1] == b"\x80" and prefix[1:2] in b"\x02\x03\x04\x05" and prefix[2:3] not in (b"", b"\x00")
    if prefix.startswith(b"PK\x03\x04") or pickle:
        return ("this looks like a PyTorch file (torch.save's zip or pickle; or another zip archive such as a "
                "Keras .keras file): load it with torch, module.load_state_dict(torch.load(path)), then "
                "fastgru.GRU.from_torch(module); Keras layers: fastgru.GRU.from_keras(layer)")
    if prefix.startswith(b"\x89HDF"):
        return "this is an HDF5 file (a Keras .h5?): load it with Keras, then fastgru.GRU.from_keras(layer)"
    return ""


@contextlib.contextmanager
def _open_regular_file(path, refuse):
    """(binary file, its size) of a regular file. Its type is checked before it is opened
    (opening a device can act on it) and again on what was opened; it is opened without
    blocking, so that a FIFO swapped in between is refused, not waited on."""
    if "\0" in os.fsdecode(path):
        raise refuse("the path holds a NUL byte")
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise refuse(f"expected a regular file, got {describe_file_type(info.st_mode)}")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"expected a regular file, got {describe_file_type(info.st_mode)}")
        yield handle, info.st_size


def _read_exactly(handle, count: int, refuse) -> bytes:
    content = handle.read(count)
    if len(content) != count:
        raise refuse("it shrank while being read")
    return content


def parse_json(text: Union[bytes, str], what: str, refuse: Callable[[str], Exception], user_data: bool = False):
    """Strict JSON (RFC 8259: UTF-8, no NaN or Infinity, no duplicate keys) within the format's
    bounds (nesting at most 64 deep; but for ``user_data``, at most one ``,``, ``[`` or ``{``
    outside strings per 6 bytes), which keep what parsing allocates to a small multiple of the
    text's size. ``text``: UTF-8 bytes, or a string from the header."""
    try:
        encoded, decoded = (text.encode("utf-8"), text) if isinstance(text, str) else (text, text.decode("utf-8"))
    except UnicodeError as error:
        raise refuse(f"{what} is not UTF-8 ({error})") from None
    try:
        _core.check_model_json(encoded, user_data)  # the C++ reader's own bounds: both count alike
    except _core.CoreArgumentError as error:
        raise refuse(f"{what} is not JSON of a model file ({error})") from None

    def reject_constant(name):
        raise ValueError(f"{name} is not JSON")

    def finite_float(literal):
        value = float(literal)
        if not math.isfinite(value):
            raise ValueError(f"number {literal} is out of range")
        return value

    def unique_keys(pairs):
        result = dict(pairs)
        if len(result) != len(pairs):
            seen = set()
            duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
            raise ValueError(f"duplicate key {duplicate!r:.80}")
        return result

    try:
        value = json.loads(decoded, parse_constant=reject_constant, parse_float=finite_float,
                           object_pairs_hook=unique_keys)
    except ValueError as error:
        raise refuse(f"{what} is not JSON ({error})") from None
    return value


def check_metadata(metadata, refuse) -> Dict[str, str]:
    """The ``__metadata__`` object: strings only, fastgru's format and a version this reads."""
    if not isinstance(metadata, dict) or metadata.get("format") != "fastgru":
        raise refuse("no fastgru metadata (a safetensors file from another library?)")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise refuse(f"metadata {key!r}: expected a JSON string, got {_json_type(value)}")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        if version is not None and re.fullmatch(r"[1-9][0-9]{0,8}", version):
            raise refuse(f"format version {version} is newer than this fastgru reads ({FORMAT_VERSION}): upgrade fastgru")
        raise refuse(f"format_version: expected the string {str(FORMAT_VERSION)!r}, got {version!r}")
    for key in ("class", "config"):
        if key not in metadata:
            raise refuse(f"metadata lacks {key!r}")
    return metadata


def _tensor_entries(header, data_bytes, refuse):
    """name -> (dtype, shape, begin, end), checked to tile the data section exactly."""
    entries = {}
    for entry_name, entry in header.items():
        name = f"{entry_name!r:.80}"  # for messages
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise refuse(f"tensor {name}: expected an object of dtype, shape and data_offsets, got {entry!r:.200}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise refuse(f"tensor {name}: dtype expected 'F32', 'F64', 'BF16' or 'I8', got {dtype!r:.50}")
        if not isinstance(shape, list) or not all(_is_integer(n, 0, MAX_OFFSET) for n in shape):
            raise refuse(f"tensor {name}: shape expected a list of integers in 0..2^53, got {shape!r:.200}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_integer(n, 0, MAX_OFFSET) for n in offsets):
            raise refuse(f"tensor {name}: data_offsets expected two integers in 0..2^53, got {offsets!r:.200}")
        begin, end = offsets
        if end < begin or end - begin != _shape_bytes(shape, _DTYPES[dtype].itemsize):
            raise refuse(f"tensor {name}: bytes {begin}..{end} do not hold shape {shape!r:.100} of {dtype}")
        entries[entry_name] = (_DTYPES[dtype], tuple(shape), begin, end)
    covered = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if begin != covered:
            raise refuse(f"tensor {name!r:.80}: starts at data byte {begin}, expected {covered} "
                         "(tensors must tile the data without gaps or overlaps)")
        covered = end
    if covered != data_bytes:
        raise refuse(f"the tensors hold {covered} data bytes, the file has {data_bytes} after its header (truncated?)")
    return entries


def _shape_bytes(shape, itemsize) -> int:
    """Bytes of ``shape``, or 2^54 (past any file) once a factor takes it there: a product of
    many large entries never grows into a huge integer."""
    size = itemsize
    for dimension in shape:
        size = min(size * dimension, 2**54)
    return size


def _is_integer(value, low, high) -> bool:
    return type(value) is int and low <= value <= high


def _json_type(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}[type(value)]


# ----------------------------------------------------------------------------- layer classes
REQUIRED = object()  # Field.absent_means of a field that every file names


class Field(NamedTuple):
    """How a model file's configuration field is checked: what it must be (for messages), the
    check, and whether it is a number (read as a float, as the C++ reader reads it)."""

    expected: str
    valid: Callable[[object], bool]
    number: bool = False
    # What a file written before the field existed means by leaving it out (REQUIRED: every
    # file names it).
    absent_means: object = REQUIRED


def as_number(value):
    """A JSON number as the float the C++ reader reads it as, or None (not a number, or beyond
    a double's range)."""
    if type(value) not in (int, float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def number_field(expected: str, accept: Callable[[float], bool]) -> Field:
    return Field(expected, lambda v: as_number(v) is not None and accept(as_number(v)), number=True)


SIZE = Field("an integer in 1..2^31", lambda v: _is_integer(v, 1, MAX_SIZE))
BOOLEAN = Field("a boolean", lambda v: type(v) is bool)
RATE = number_field("a number in [0, 1)", lambda v: 0 <= v < 1)
DTYPE = Field("'float32' or 'float64'", lambda v: v in ("float32", "float64"))
# The products' arithmetic (GRU.quantize); a file written before quantized layers existed holds
# a layer of its dtype.
PRECISIONS = ("full", "bf16", "int8")
PRECISION = Field("'full', 'bf16' or 'int8'", lambda v: type(v) is str and v in PRECISIONS, absent_means="full")


def folds_batch_norm(class_name: str) -> bool:
    """Whether a class is batch-normalised (the core's cell table says): its bf16 and int8
    layers quantize W_ih with the batch normalisation folded in, so their files hold that W_ih,
    its shift as bn_bias and the identity statistics (identity_running_var), which fold to the
    same W_ih and shift again."""
    return any(d["class_name"] == class_name and d["normalises_inputs"] for d in _core.cell_descriptions().values())


def identity_running_var(bn_eps: float) -> np.float32:
    """The running variance v of a folded file's identity statistics: v + ε = 1 to within 2^-25
    (ε as a float32, v a float32), so that the fold's scale γ / √(v + ε) with γ = 1 is within
    2^-26 of 1 and rounds every float32 weight back to itself. Needs ε ≤ 1."""
    return np.float32(1.0 - np.float64(np.float32(bn_eps)))


def check_layer_config(layer_class, text: str, what: str, refuse) -> dict:
    """The configuration JSON of a ``layer_class`` layer: exactly the fields of its
    ``_file_fields()``, each of its type (numbers as floats)."""
    config = parse_json(text, what, refuse)
    if not isinstance(config, dict):
        raise refuse(f"{what}: expected a JSON object, got {_json_type(config)}")
    fields = layer_class._file_fields()
    config = {**{name: field.absent_means for name, field in fields.items() if field.absent_means is not REQUIRED},
              **config}
    missing, unknown = sorted(set(fields) - set(config)), sorted(set(config) - set(fields))
    if missing or unknown:
        raise refuse(f"{what}: a {layer_class.__name__} has the fields {sorted(fields)}; missing {missing}, "
                     f"unknown {_listing(unknown)}")
    for name, field in fields.items():
        if not field.valid(config[name]):
            raise refuse(f"{what} {name}: expected {field.expected}, got {config[name]!r:.50}")
    return {name: as_number(value) if fields[name].number else value for name, value in config.items()}


def layer_plan(layer_class, text: str, what: str, refuse, tensor_count: int):
    """What a model file's configuration of a ``layer_class`` layer (JSON ``text``) builds,
    checked: (config, name -> (shape, file dtype) of the tensors it needs), so that the tensors
    can be checked before anything is built."""
    config = check_layer_config(layer_class, text, what, refuse)
    needed = 2 * config["num_layers"] * (2 if config["bidirectional"] else 1)  # weights of each layer and direction
    if needed > tensor_count:
        raise refuse(f"{what} num_layers: {config['num_layers']} layers need at least {needed} tensors, "
                     f"the file has {tensor_count}")
    precision = config["precision"]
    if precision != "full" and config["dtype"] != "float32":
        raise refuse(f"{what} precision: bf16 and int8 layers compute in float32; expected 'full' for a float64 "
                     f"{layer_class.__name__}, got {precision!r}")
    # ε as the fold reads it, a float32 (capped first: beyond float32's range it would overflow).
    folds = folds_batch_norm(layer_class.__name__)
    if precision != "full" and folds and np.float32(min(config["bn_eps"], 2)) > 1:
        raise refuse(f"{what} bn_eps: the file of a {layer_class.__name__} in {precision} holds identity statistics "
                     f"with bn_running_var 1 - bn_eps; expected bn_eps <= 1, got {config['bn_eps']!r}")
    return config, stored_tensors(config, layer_class._parameter_shapes_of(config))


def file_dtype(dtype: str) -> str:
    """The safetensors dtype of a configuration's ``dtype`` ("float32" or "float64")."""
    return "F32" if dtype == "float32" else "F64"


def _is_quantized_weight(name: str) -> bool:
    """Whether a bf16 or int8 layer's file holds the tensor ``name`` quantized: its weight
    matrices (weight_ih_l* and weight_hh_l*); biases and statistics stay in float32."""
    return name.startswith(("weight_ih_", "weight_hh_"))


def stored_tensors(config, shapes) -> Dict[str, Tuple[tuple, str]]:
    """name -> (shape, file dtype) of what a file holds for a layer of ``config`` whose parameters
    and buffers have ``shapes``: each in the configuration's dtype; for a bf16 layer its weights
    in BF16; for an int8 layer its weights in I8, each followed by its rows' scales
    ``<name>.scale`` (F32)."""
    precision, dtype = config["precision"], file_dtype(config["dtype"])
    stored = {}
    for name, shape in shapes.items():
        if precision == "full" or not _is_quantized_weight(name):
            stored[name] = (tuple(shape), dtype)
        elif precision == "bf16":
            stored[name] = (tuple(shape), "BF16")
        else:
            stored[name] = (tuple(shape), "I8")
            stored[name + ".scale"] = ((shape[0],), "F32")
    return stored


def stored_weights(layer) -> Dict[str, np.ndarray]:
    """What a file holds for ``layer`` (name -> array, :func:`stored_tensors`): its state_dict
    (:func:`folded_state`'s for a batch-normalised one), with a bf16 or int8 layer's weights
    quantized as its compiled core quantizes them (:func:`fastgru.reference_quantized.quantize_matrix`,
    the same bits)."""
    from .reference_quantized import quantize_matrix

    precision = layer.precision
    stored = {}
    for name, array in folded_state(layer).items():
        if precision == "full" or not _is_quantized_weight(name):
            stored[name] = array
            continue
        quantized = quantize_matrix(array, precision)
        if precision == "int8":
            stored[name], stored[name + ".scale"] = quantized.values, quantized.scale
        elif not np.isfinite(quantized.values).all():
            raise ValueError(f"save: {name} has values that are not finite in bf16 (NaN, inf, or beyond bf16's "
                             "range): a model file's bf16 weights are finite")
        else:
            stored[name] = (quantized.values.view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    return stored


def folded_state(layer) -> Dict[str, np.ndarray]:
    """The state_dict of ``layer``, for a bf16 or int8 batch-normalised layer as its compiled layer
    computes: W_ih with the batch normalisation folded in (fastgru.reference_quantized's
    fold_batch_norm, as the core folds it), bn_bias the fold's shift, and the identity
    statistics (γ 1, mean 0, variance :func:`identity_running_var`), which fold to them again."""
    from .reference_quantized import fold_batch_norm

    state = layer.state_dict()
    if layer.precision == "full" or not folds_batch_norm(type(layer).__name__):
        return state
    if np.float32(min(layer.bn_eps, 2)) > 1:
        raise ValueError(f"save: the file of a {type(layer).__name__} in {layer.precision} holds identity statistics "
                         f"with bn_running_var 1 - bn_eps; expected bn_eps <= 1, got {layer.bn_eps!r}: save the "
                         "float32 layer and quantize it after fastgru.load")
    for name in [name for name in state if name.startswith("weight_ih_")]:
        suffix = name[len("weight_ih_"):]
        statistics = [state[f"bn_{part}_{suffix}"] for part in ("weight", "bias", "running_mean", "running_var")]
        weight, shift = fold_batch_norm(state[name], *statistics, eps=layer.bn_eps)
        rows = weight.shape[0]
        state.update({name: weight, f"bn_weight_{suffix}": np.ones(rows, np.float32), f"bn_bias_{suffix}": shift,
                      f"bn_running_mean_{suffix}": np.zeros(rows, np.float32),
                      f"bn_running_var_{suffix}": np.full(rows, identity_running_var(layer.bn_eps), np.float32)})
    return state


def check_identity_statistics(tensors: Mapping[str, np.ndarray], config, refuse) -> None:
    """A bf16 or int8 batch-normalised layer's file holds the identity statistics (see
    :func:`folded_state`): bn_weight 1, bn_running_mean 0, bn_running_var
    :func:`identity_running_var`. ``tensors``: checked, names with or without ``recurrent.``."""
    if "bn_eps" not in config or config["precision"] == "full":
        return
    identity = {"bn_weight": 1, "bn_running_mean": 0, "bn_running_var": identity_running_var(config["bn_eps"])}
    for name, array in tensors.items():
        base = name.rsplit(".", 1)[-1].split("_l")[0]
        if base in identity and not (array == identity[base]).all():
            variance = float(identity["bn_running_var"])
            raise refuse(f"tensor {name!r}: a bf16 or int8 layer's file holds W_ih with its batch "
                         "normalisation folded in and the identity statistics: expected bn_weight 1, "
                         f"bn_running_mean 0, bn_running_var 1 - bn_eps as a float32 ({variance:.9g})")


def file_config(layer) -> dict:
    """The configuration a file holds for ``layer``: :meth:`config`, and a bf16 or int8 layer's
    ``precision`` (left out for a full-precision one, as files written before it had it). A
    setting that is null where a file may leave it out to mean null (the GRU's ``clip``) is left
    out too, so that readers from before the field existed read the files that do not use it."""
    fields = layer._file_fields()
    config = {name: value for name, value in layer.config().items()
              if not (value is None and fields[name].absent_means is None)}
    return config if layer.precision == "full" else {**config, "precision": layer.precision}


def dequantized(tensors: Mapping[str, np.ndarray], refuse) -> Dict[str, np.ndarray]:
    """The float32 values of a checked file's quantized weights (BF16 bit patterns widened; I8
    values times their rows' scales, in float32), the other tensors as they are and the scales
    left out: what the layer is built from before it is quantized again, which gives back the
    file's bf16 values, and its int8 values (checked here; but for rows of scale 0, which
    compute 0 either way) with their scales to within a float32 rounding."""
    from .reference_quantized import quantize_rows_int8

    values = {}
    for name, array in tensors.items():
        weight = name[: -len(".scale")]
        if name.endswith(".scale") and weight in tensors and tensors[weight].dtype == np.int8:
            continue
        if array.dtype == np.uint16:
            widened = (array.astype(np.uint32) << np.uint32(16)).view(np.float32)
            if not np.isfinite(widened).all():
                raise refuse(f"tensor {name!r}: expected finite bf16 weights, got NaN or inf")
            values[name] = widened
        elif array.dtype == np.int8:
            scale = tensors[name + ".scale"]
            if (array == -128).any():
                raise refuse(f"tensor {name!r}: expected int8 values in -127..127, got -128")
            if not (np.isfinite(scale) & (scale >= 0)).all():
                bad = scale[~(np.isfinite(scale) & (scale >= 0))][0]
                raise refuse(f"tensor {name + '.scale'!r}: expected finite scales >= 0, got {float(bad):.9g}")
            with np.errstate(over="ignore"):
                widened = array.astype(np.float32) * scale[:, None]
            if not np.isfinite(widened).all():
                raise refuse(f"tensor {name!r}: its values times their scales overflow float32")
            requantized, _ = quantize_rows_int8(widened)
            # A row of scale 0 (the scale of a row of tiny values underflows) computes 0 whatever its q.
            rows = np.flatnonzero((requantized != array).any(axis=1) & (scale != 0))
            if rows.size:
                raise refuse(f"tensor {name!r} row {rows[0]}: q * scale does not quantize back to q (a row's largest "
                             "|q| is 127 and its scale max|row| / 127, or the row is all 0)")
            values[name] = widened
        else:
            values[name] = array
    return values


def build_layer(layer_class, config):
    """The float layer of a checked file configuration (its ``precision`` is applied by the
    caller, after the weights are loaded). Its warnings were given when it was first built
    (e.g. dropout with one layer): loading it does not repeat them."""
    arguments = {name: value for name, value in config.items() if name != "precision"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return layer_class(**arguments)


@contextlib.contextmanager
def refused_as(refuse):
    """Turns what a constructor refuses in a model file (e.g. a negative running variance) into
    the file's error."""
    try:
        yield
    except ValueError as error:
        raise refuse(str(error)) from None


def save_layer(layer, path) -> None:
    """Writes ``layer``'s weights and configuration to ``path`` (:meth:`fastgru.GRU.save`)."""
    write_model_file(path, stored_weights(layer), {
        "format": "fastgru",
        "format_version": str(FORMAT_VERSION),
        "class": type(layer).__name__,
        "config": json.dumps(file_config(layer)),
        "fastgru_version": __version__,
    })


def check_tensors(tensors: Mapping[str, np.ndarray], expected: Mapping[str, Tuple[tuple, str]], refuse) -> None:
    """The file holds exactly the ``expected`` tensors (name -> (shape, file dtype))."""
    missing, unknown = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unknown:
        raise refuse(f"the configuration needs the tensors {_listing(expected)}; missing {_listing(missing)}, "
                     f"unexpected {_listing(unknown)}")
    for name, (shape, dtype) in expected.items():
        array = tensors[name]
        if array.shape != tuple(shape):
            raise refuse(f"tensor {name!r}: the configuration needs shape {tuple(shape)}, the file has {array.shape}")
        if _NAMES[array.dtype] != dtype:
            raise refuse(f"tensor {name!r}: the configuration needs dtype {dtype}, the file has {_NAMES[array.dtype]}")


def _listing(names, limit=8) -> str:
    names = [f"{name:.80}" for name in sorted(names)]
    return str(names if len(names) <= limit else names[:limit] + [f"... {len(names) - limit} more"])
