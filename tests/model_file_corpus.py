"""A deterministic corpus of malformed model files, and a judge that runs both loaders on one.

Each file is a valid fastgru file (:func:`base_files`) with one to three mutations drawn from a
seeded generator: at the JSON level (fields of other types, missing or unknown keys, shapes,
offsets and dtypes that do not fit, other versions and classes), at the text level (NaN, duplicate
keys, deep nesting, control characters) and at the byte level (flipped bytes, truncation, a wrong
length prefix) and in the data (a weight, an int8 value, a scale). The bases include bf16 and int8
GRUs and Models, their weights stored quantized. tests/test_model_file.py runs a few hundred in-process; tests/fuzz_model_files.py
runs thousands in memory- and time-limited subprocesses (CI's fuzz job).
"""

from __future__ import annotations

import json
import random
import struct

import numpy as np

import fastgru
from fastgru import _core
from fastgru.model_file import ModelFileError

# Values a mutated JSON field takes: every JSON type, edges of every range the format has.
_VALUES = [0, 1, -1, 2, 3, 1.5, 0.5, 1.0, 0.0, -0.0, 1e300, -5, 8000, 100000, 2**31, 2**31 + 1, 2**53 + 1, 2**63,
           True, False, None, "false", "True", "1", "relu", "tanh", "float32", "float64", "F32", [], {}, [1], {"a": 1},
           "full", "bf16", "int8"]
_VERSIONS = ["1", "1.9", "1_0", "1abc", "0", "-5", "2", "01", " 1", "", 1, None, [1]]
_CLASSES = ["GRU", "MGU", "LiGRU", "Model", "os.system", "gru", "", 1]
_TEXT_EDITS = ["NaN", "Infinity", "-Infinity", "1e400", "1e-400", "0x10", "+1", ".5", "1.", "01", "\u0001", "\ufeff",
               "\\ud800", "\\u00zz", "true", "null"]


def base_files():
    """name -> bytes of valid layer files, one per cell and layout the format has."""
    layers = {
        "gru": fastgru.GRU(3, 4, num_layers=2, seed=1),
        "gru_before_bi_f64": fastgru.GRU(2, 3, bidirectional=True, reset_after=False, dtype="float64", seed=2),
        "gru_nobias_bf": fastgru.GRU(2, 3, bias=False, batch_first=True, seed=3, zoneout=0.1),
        "mgu": fastgru.MGU(2, 3, num_layers=2, seed=4),
        "ligru": fastgru.LiGRU(2, 3, activation="leaky_relu", seed=5),
        "ligru_bi": fastgru.LiGRU(2, 2, bidirectional=True, activation="tanh", seed=6),
        "gru_int8": fastgru.GRU(3, 4, num_layers=2, seed=11).quantize("int8"),
        "gru_bf16_before_bi": fastgru.GRU(2, 3, bidirectional=True, reset_after=False, seed=12).quantize("bf16"),
        "gru_hidden_int8": fastgru.GRU(2, 3, gates="hidden", bias=False, seed=15).quantize("int8"),
        "mgu_int8": fastgru.MGU(2, 3, num_layers=2, seed=16).quantize("int8"),
        "gru_clip_before": fastgru.GRU(2, 3, num_layers=2, reset_after=False, seed=19, clip=0.25),
        "gru_clip_bf16": fastgru.GRU(2, 3, seed=20, clip=0.5).quantize("bf16"),
        "ligru_int8": _with_moved_statistics(fastgru.LiGRU(2, 3, num_layers=2, seed=17)).quantize("int8"),
    }
    files = {}
    for name, layer in layers.items():
        files[name] = _saved_bytes(layer)
    return files


def model_base_files():
    """name -> bytes of valid fastgru.Model files (named ``model...``), with and without an
    embedding and output scaling: Python's fastgru.load and C++'s fastgru::load_model read them."""
    scaled = fastgru.Model(fastgru.MGU(2, 3, num_layers=2, dtype="float64", seed=9), outputs=2, head="sequence", seed=0)
    scaled.set_output_scaling([2.0, -0.5], [10.0, 1.0])
    models = {
        "model_gru": fastgru.Model(fastgru.GRU(2, 3, batch_first=True, seed=7), outputs=2, seed=0),
        "model_ligru_huber": fastgru.Model(fastgru.LiGRU(2, 3, bidirectional=True, seed=8), outputs=1,
                                           loss=fastgru.training.losses.Huber(0.5), clip_grad_norm=1.0, seed=0),
        "model_mgu_scaled": scaled,
        "model_gru_tokens": fastgru.Model(fastgru.GRU(2, 3, seed=10), outputs=3, loss="cross_entropy", seed=0,
                                          vocab_size=5, padding_id=0),
        "model_gru_int8": fastgru.Model(fastgru.GRU(2, 3, num_layers=2, seed=13), outputs=2, seed=0).quantize("int8"),
        "model_gru_bf16_tokens": fastgru.Model(fastgru.GRU(2, 3, seed=14), outputs=3, loss="cross_entropy", seed=0,
                                               vocab_size=5, padding_id=0).quantize("bf16"),
        "model_libru_bf16": fastgru.Model(_with_moved_statistics(fastgru.LiBRU(2, 3, seed=18)), outputs=2,
                                          seed=0).quantize("bf16"),
    }
    return {name: _saved_bytes(model) for name, model in models.items()}


def _with_moved_statistics(layer):
    """A batch-normalised layer whose running statistics a training forward moved (a quantized
    one's file holds them folded into W_ih)."""
    layer.forward(np.random.default_rng(3).standard_normal((5, 4, layer.input_size)) + 0.5, train=True)
    return layer


def _saved_bytes(layer):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "base.safetensors")
        layer.save(path)
        with open(path, "rb") as f:
            return f.read()


def _split(content):
    (n,) = struct.unpack("<Q", content[:8])
    return json.loads(content[8 : 8 + n]), content[8 + n :]


def _join(header, data, text_edit=None, rng=None):
    text = json.dumps(header, separators=(",", ":"))
    if text_edit is not None:
        at = rng.randrange(len(text))
        text = text[:at] + text_edit + text[at:]
    encoded = text.encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(encoded)) + encoded + data


def mutate(content: bytes, seed: int) -> bytes:
    """A mutation of the valid file ``content``, fixed by ``seed``."""
    rng = random.Random(seed)
    header, data = _split(content)
    meta = header["__metadata__"]
    config = json.loads(meta["config"])
    whole_model = "recurrent_config" in meta  # a Model file: its recurrent layer's config mutates too
    recurrent_config = json.loads(meta["recurrent_config"]) if whole_model else None
    tensors = [k for k in header if k != "__metadata__"]
    text_edit, raw_config, byte_damage = None, False, False
    for _ in range(rng.choice([1, 1, 2, 3])):
        kind = rng.randrange(14)
        if kind <= 2:  # a config field of another value or type
            target = recurrent_config if whole_model and rng.random() < 0.4 else config
            if rng.random() < 0.2 and isinstance(target.get("embedding"), dict):  # inside the embedding's object
                target["embedding"][rng.choice(["vocab_size", "padding_id"])] = rng.choice(_VALUES)
            else:
                target[rng.choice(sorted(target))] = rng.choice(_VALUES)
        elif kind == 3:  # a config field missing or unknown
            if rng.random() < 0.5 and config:
                del config[rng.choice(sorted(config))]
            else:
                config[rng.choice(["reset_after", "bias", "unknown", "activation", "bn_eps", "precision"])] = rng.choice(_VALUES)
        elif kind == 4:
            meta["format_version"] = rng.choice(_VERSIONS)
        elif kind == 5:
            key = rng.choice(["class", "format", "config", "extra"] +
                             (["recurrent_class", "recurrent_config", "user_metadata"] if whole_model else []))
            meta[key] = rng.choice(_CLASSES + _VALUES[:6])
            raw_config |= key == "config"
        elif kind == 6:  # a shape of other dimensions
            entry = header[rng.choice(tensors)]
            shape = list(entry["shape"])
            if shape and rng.random() < 0.7:
                shape[rng.randrange(len(shape))] = rng.choice(_VALUES)
            else:
                shape.append(rng.choice([1, 0, 2]))
            entry["shape"] = shape
        elif kind == 7:  # byte ranges
            entry = header[rng.choice(tensors)]
            offsets = entry["data_offsets"]
            past_end = offsets[1] + 4 if type(offsets[1]) is int else 1
            offsets[rng.randrange(2)] = rng.choice([-1, 0, 4, 1e20, 2**64, past_end, None])
        elif kind == 8:
            header[rng.choice(tensors)]["dtype"] = rng.choice(["F32", "F64", "BF16", "I8", "F16", "I32", "f32", None, 4])
        elif kind == 9:  # a tensor removed, renamed or aliased under another name
            name = rng.choice(tensors)
            choice = rng.randrange(3)
            if choice == 0:
                del header[name]
            else:
                other = rng.choice([name + "_reverse", name.replace("_l0", "_l1"), "bias_ih_l0", "bn_weight_l0", "x"])
                header[other] = dict(header[name]) if choice == 1 else header.pop(name)
            tensors = [k for k in header if k != "__metadata__"]
            if not tensors:
                break
        elif kind == 10:
            text_edit = rng.choice(_TEXT_EDITS + ['"weight_hh_l0":{},', "[" * 100, '{"a":' * 80])
        elif kind == 11:  # the config as something other than an object of fields
            meta["config"] = rng.choice(["null", "[]", "{", json.dumps(json.dumps(config)), '{"input_size": NaN}',
                                         json.dumps(config) + json.dumps(config)])
            raw_config = True
        elif kind == 12:  # a value in the data changed: a weight, an int8 value or a scale
            if data:
                at = rng.randrange(len(data))
                data = data[:at] + bytes([rng.choice([0x80, 0x7F, 0xFF, 0x00, rng.randrange(256)])]) + data[at + 1 :]
        else:  # byte-level damage, applied last
            byte_damage = True
            break
    if not raw_config:
        meta["config"] = json.dumps(config)
    if whole_model and isinstance(meta.get("recurrent_config"), str):
        meta["recurrent_config"] = json.dumps(recurrent_config)
    out = bytearray(_join(header, data, text_edit, rng))
    if byte_damage:
        damage = rng.randrange(4)
        if damage == 0:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif damage == 1:
            del out[rng.randrange(len(out)) :]
        elif damage == 2:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            out[:8] = struct.pack("<Q", rng.choice([0, 1, 7, len(out), 2**40, 2**64 - 1, 100_000_001,
                                                      struct.unpack("<Q", bytes(out[:8]))[0] + rng.choice([-1, 1, 8])]))
    return bytes(out)


def _cpp_verdict(loader, path):
    try:
        return loader(str(path)), "accepted"
    except _core.CoreArgumentError:
        return None, "refused"
    except Exception as error:  # noqa: BLE001 - any other exception is what the judge reports
        return None, f"failed: {type(error).__name__}: {error}"


def judge(path):
    """Both readers on one file: (python verdict, c++ verdict, detail). A verdict is "accepted",
    "refused" (the documented error) or "failed: ..." (anything else). C++ has two loaders, of
    recurrent layers (fastgru::load_network) and of Models (fastgru::load_model), each in float64
    and float32: its verdict is "accepted" when one of them accepts the file, and that one must
    be the loader of the class Python read: in float64 for a full-precision file, in float32 only
    for a bf16 or int8 one (which computes in float32)."""
    try:
        loaded = fastgru.load(path)
        python = "accepted"
    except ModelFileError:
        loaded, python = None, "refused"
    except Exception as error:  # noqa: BLE001 - any other exception is what the judge reports
        loaded, python = None, f"failed: {type(error).__name__}: {error}"
    results = {(kind, bits): _cpp_verdict(loader, path) for kind, bits, loader in (
        ("network", 64, _core.load_model_file_f64), ("model", 64, _core.load_whole_model_file_f64),
        ("network", 32, _core.load_model_file_f32), ("model", 32, _core.load_whole_model_file_f32))}
    verdicts = {verdict for _, verdict in results.values()}
    failed = sorted(v for v in verdicts if v.startswith("failed"))
    cpp = failed[0] if failed else ("accepted" if "accepted" in verdicts else "refused")
    accepted = {key for key, (_, verdict) in results.items() if verdict == "accepted"}
    detail = ""
    if {kind for kind, _ in accepted} == {"network", "model"}:
        detail = "both C++ loaders accepted the file"
    elif loaded is not None and accepted:
        is_model = isinstance(loaded, fastgru.Model)
        layer = loaded.recurrent if is_model else loaded
        bits = 64 if layer.precision == "full" else 32
        kind = "model" if is_model else "network"
        if (kind, bits) not in accepted:
            detail = f"C++ did not read the {layer.precision} {type(loaded).__name__} file as a {kind} in float{bits}"
        elif bits == 32 and (kind, 64) in accepted:
            detail = f"C++ read a {layer.precision} file in float64"
        elif is_model:
            detail = same_model(loaded, results[kind, bits][0])
        else:
            detail = same_network(loaded, results[kind, bits][0])
    return python, cpp, detail


def same_model(model, cpp_model) -> str:
    """"" when the C++ Model (float64) predicts what the Python Model does (in float64 too),
    probabilities included, else how they differ."""
    import copy

    layer = model.recurrent
    if layer.precision != "full":
        return _same_quantized_model(model, cpp_model)
    exact = copy.deepcopy(model)
    exact.recurrent = type(layer)(**{**layer.config(), "dtype": "float64"})
    exact.recurrent.load_state_dict(layer.state_dict())
    for name in ("head_weight", "head_bias", "embedding_weight", "output_scale", "output_offset"):
        if getattr(exact, name) is not None:
            setattr(exact, name, getattr(exact, name).astype(np.float64))
    rng = np.random.default_rng(0)
    lengths = np.array([3, 1, 2, 3])
    if model.vocab_size is not None:
        x = rng.integers(0, model.vocab_size, (4, 3))
    else:
        x = rng.standard_normal((4, 3, layer.input_size))
    expected = exact.predict(x, lengths=lengths)
    got = cpp_model.predict(x, lengths, False)
    if model.loss.classification:
        expected = np.concatenate([expected, exact.predict_proba(x, lengths=lengths)])
        got = np.concatenate([got, cpp_model.predict(x, lengths, True)])
    if expected.shape != got.shape:
        return f"shapes differ: Python {expected.shape}, C++ {got.shape}"
    if not np.allclose(expected, got, rtol=1e-9, atol=1e-12, equal_nan=True):
        return f"predictions differ: Python {expected.ravel()[:4]}, C++ {got.ravel()[:4]}"
    return ""


def same_network(layer, network) -> str:
    """"" when the C++ network (float64) computes what the Python layer does, else how they
    differ. The layer runs in float64 too, so that weights near float32's limits compare; a bf16
    or int8 layer and its C++ network (float32) run the same quantized products."""
    if layer.precision != "full":
        x = np.random.default_rng(0).standard_normal((4, 2, layer.input_size)).astype(np.float32)
        outcomes = []
        for run in (lambda: layer.forward(x.transpose(1, 0, 2) if layer.batch_first else x, train=False)[0],
                    lambda: network.forward(x, None, None, False, None, 0)[0]):
            try:
                outcomes.append(run())
            except _core.CoreArgumentError as error:  # int8 inputs that are not finite (a NaN bias, say)
                outcomes.append(str(error))
        y_py, y_cpp = outcomes
        if isinstance(y_py, str) or isinstance(y_cpp, str):
            return "" if y_py == y_cpp else f"{layer.precision} runs differ: Python {y_py!r:.200}, C++ {y_cpp!r:.200}"
        y_py = _concatenated(y_py.transpose(1, 0, *range(2, y_py.ndim)) if layer.batch_first else y_py, layer)
        if y_py.shape != y_cpp.shape or not np.allclose(y_py, y_cpp, rtol=1e-6, atol=1e-7, equal_nan=True):
            return f"{layer.precision} outputs differ: Python {y_py.ravel()[:4]}, C++ {y_cpp.ravel()[:4]}"
        return ""
    exact = type(layer)(**{**layer.config(), "dtype": "float64"})
    exact.load_state_dict(layer.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 2, layer.input_size))
    y_py, h_py = exact.forward(x.transpose(1, 0, 2) if layer.batch_first else x, train=False)
    if layer.batch_first:
        y_py = y_py.transpose(1, 0, *range(2, y_py.ndim))
    y_py = _concatenated(y_py, layer)
    y_cpp, h_cpp = network.forward(x, None, None, False, None, 0)
    if y_py.shape != y_cpp.shape or h_py.shape != h_cpp.shape:
        return f"shapes differ: Python y {y_py.shape}, C++ y {y_cpp.shape}"
    if not np.allclose(y_py, y_cpp, rtol=1e-9, atol=1e-12, equal_nan=True):
        return f"outputs differ: Python {y_py.ravel()[:4]}, C++ {y_cpp.ravel()[:4]}"
    return ""


def _concatenated(y, layer):
    """A layer's outputs (T, B, ...) as the C++ network gives them: a bidirectional layer with
    merge_mode None gives its directions apart (T, B, 2, H), the network side by side."""
    return y.reshape(*y.shape[:2], -1) if layer.bidirectional and layer.merge_mode is None else y


def _same_quantized_model(model, cpp_model) -> str:
    """"" when the C++ Model (float32) of a bf16 or int8 Model predicts what Python's does."""
    rng = np.random.default_rng(0)
    lengths = np.array([3, 1, 2, 3])
    if model.vocab_size is not None:
        x = rng.integers(0, model.vocab_size, (4, 3))
    else:
        x = rng.standard_normal((4, 3, model.recurrent.input_size)).astype(np.float32)
    outcomes = []
    for predict in (lambda probabilities: model.predict_proba(x, lengths=lengths) if probabilities else
                    model.predict(x, lengths=lengths),
                    lambda probabilities: cpp_model.predict(x, lengths, probabilities)):
        try:
            outputs = [predict(False)] + ([predict(True)] if model.loss.classification else [])
            outcomes.append(np.concatenate(outputs))
        except _core.CoreArgumentError as error:  # int8 inputs that are not finite (a NaN bias, say)
            outcomes.append(str(error))
    expected, got = outcomes
    if isinstance(expected, str) or isinstance(got, str):
        return "" if expected == got else f"{model.recurrent.precision} runs differ: {expected!r:.200}, {got!r:.200}"
    if expected.shape != got.shape or not np.allclose(expected, got, rtol=1e-5, atol=1e-6, equal_nan=True):
        return f"{model.recurrent.precision} predictions differ: Python {expected.ravel()[:4]}, C++ {got.ravel()[:4]}"
    return ""
