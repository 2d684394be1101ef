"""The model file's guarantees (README.md, "The model file"): saving never destroys, loading an
untrusted file costs a bounded multiple of its size, and the Python and C++ readers accept and
refuse the same files and read the same network from them."""

import json
import os
import stat
import struct
import threading
import tracemalloc

import numpy as np
import pytest

import fastgru
from fastgru import _core
from fastgru.model_file import ModelFileError

from .model_file_corpus import base_files, judge, model_base_files, mutate

pytestmark = pytest.mark.best_isa_only  # file handling: the kernels are covered elsewhere


def saved(layer, path):
    layer.save(path)
    return path.read_bytes()


def split(content):
    (n,) = struct.unpack("<Q", content[:8])
    return json.loads(content[8 : 8 + n]), content[8 + n :]


def join(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def with_config(content, **changes):
    header, data = split(content)
    config = json.loads(header["__metadata__"]["config"])
    config.update(changes)
    header["__metadata__"]["config"] = json.dumps(config)
    return join(header, data)


def both_refuse(path, match):
    """Both loaders refuse ``path`` with their documented error, Python's message matching."""
    with pytest.raises(ModelFileError, match=match):
        fastgru.load(path)
    with pytest.raises(_core.CoreArgumentError, match="not a readable fastgru model file"):
        _core.load_model_file_f64(str(path))


def peak_bytes(call):
    """Peak Python-visible allocation (NumPy's included) while ``call`` runs, after a first run
    that imports whatever it imports on first use."""
    for measured in (False, True):
        if measured:
            tracemalloc.start()
        try:
            call()
        except ValueError:
            pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# ----------------------------------------------------------------------------- saving
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_saving_to_a_device_is_refused_and_leaves_it_a_device():
    with pytest.raises(ValueError, match="character device.*/dev/full"):
        fastgru.GRU(3, 4).save("/dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_saving_over_a_fifo_or_directory_is_refused(tmp_path, kind):
    path = tmp_path / "target"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(ValueError, match="FIFO" if kind == "fifo" else "directory"):
        fastgru.GRU(3, 4).save(path)
    assert sorted(os.listdir(tmp_path)) == ["target"]


def test_saving_through_a_symlink_writes_its_target(tmp_path):
    target, link = tmp_path / "real.safetensors", tmp_path / "link.safetensors"
    fastgru.GRU(2, 3, seed=0).save(target)
    link.symlink_to(target)
    layer = fastgru.GRU(2, 3, seed=1)
    layer.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(fastgru.load(target).state_dict()["weight_hh_l0"], layer.state_dict()["weight_hh_l0"])
    assert sorted(os.listdir(tmp_path)) == ["link.safetensors", "real.safetensors"]


def test_a_failed_save_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    before = saved(fastgru.GRU(2, 3, seed=0), path)

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left") as error:
        fastgru.GRU(2, 3, seed=1).save(path)
    assert error.value.filename == str(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]


def test_an_exception_while_writing_keeps_the_old_file(tmp_path):
    from fastgru.files import atomic_write

    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_write(path, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("midway")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["out.csv"]


def test_saving_into_a_missing_folder_names_the_users_path(tmp_path):
    path = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(FileNotFoundError) as error:
        fastgru.GRU(2, 3).save(path)
    assert error.value.filename == str(path) and ".tmp" not in str(error.value)


def test_saved_files_get_the_usual_mode_and_keep_an_existing_one(tmp_path):
    path = tmp_path / "model.safetensors"
    fastgru.GRU(2, 3).save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    fastgru.GRU(2, 3).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


# ----------------------------------------------------------------------------- loading: bounded
def test_a_tiny_file_claiming_a_huge_layer_is_refused_before_allocating(tmp_path):
    """1 KB file, ``hidden_size`` 8000: once 3 GB and 15 s, now refused on the tensors' shapes."""
    path = tmp_path / "big.safetensors"
    path.write_bytes(with_config(saved(fastgru.GRU(2, 3), tmp_path / "base.safetensors"), hidden_size=8000))
    assert peak_bytes(lambda: fastgru.load(path)) < 1_000_000
    both_refuse(path, "weight_ih_l0.*needs shape")


@pytest.mark.parametrize("num_layers", [1000, 10**6, 2**31])
def test_a_huge_layer_count_is_refused_at_once(tmp_path, num_layers):
    path = tmp_path / "deep.safetensors"
    path.write_bytes(with_config(saved(fastgru.GRU(2, 3), tmp_path / "base.safetensors"), num_layers=num_layers))
    assert peak_bytes(lambda: fastgru.load(path)) < 1_000_000
    both_refuse(path, "num_layers")


def test_a_model_with_a_huge_head_is_refused_before_allocating(tmp_path):
    path = tmp_path / "model.safetensors"
    fastgru.Model(fastgru.GRU(2, 3), outputs=2).save(path)
    path.write_bytes(with_config(path.read_bytes(), outputs=100_000_000))
    assert peak_bytes(lambda: fastgru.load(path)) < 1_000_000
    with pytest.raises(ModelFileError, match="head.weight"):
        fastgru.load(path)


@pytest.mark.parametrize("filler", [b"[],", b"0,", b'"",', b"{},"])
def test_a_header_of_many_small_values_is_refused_before_parsing(tmp_path, filler):
    """A 95 MB header of ``[],`` once took 2.4 GB in Python (2 GB in C++ for ``0,``)."""
    body = b"[" + filler * 300_000 + b"0]"
    path = tmp_path / "values.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    assert peak_bytes(lambda: fastgru.load(path)) < 4 * len(body)
    both_refuse(path, "values in .* bytes: more than one per 6 bytes")


def test_a_header_over_the_cap_is_refused(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 100_000_001) + b" " * 64)
    both_refuse(path, "over the format's cap|does not fit")


def test_deep_nesting_is_refused(tmp_path):
    path = tmp_path / "deep.safetensors"
    body = b'{"a":' * 20_000 + b"1" + b"}" * 20_000
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    both_refuse(path, "nested too deeply|not JSON")


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_devices_are_refused_without_reading(path):
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    both_refuse(path, "character device")


def test_a_directory_is_refused(tmp_path):
    both_refuse(tmp_path, "directory")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    verdicts = []
    reader = threading.Thread(target=lambda: verdicts.append(judge(path)[:2]), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "a loader blocked on a FIFO"
    assert verdicts == [("refused", "refused")]


@pytest.mark.parametrize("zip_file", [True, False], ids=["zip", "legacy pickle"])
def test_a_pytorch_file_says_how_to_load_it(tmp_path, zip_file):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.GRU(2, 3).state_dict(), path, _use_new_zipfile_serialization=zip_file)
    with pytest.raises(ModelFileError, match=r"PyTorch.*torch\.load.*from_torch"):
        fastgru.load(path)
    with pytest.raises(_core.CoreArgumentError, match="PyTorch"):
        _core.load_model_file_f64(str(path))


def test_a_truncated_header_whose_size_starts_like_a_pickle_is_called_truncated(tmp_path):
    # A header of 0x280 bytes: the size's first bytes are 80 02, as a pickle's PROTO 2 is.
    path = tmp_path / "cut.safetensors"
    path.write_bytes(struct.pack("<Q", 0x280) + b"{" + b" " * 11)
    with pytest.raises(ModelFileError, match="does not fit"):
        fastgru.load(path)
    with pytest.raises(_core.CoreArgumentError, match="does not fit"):
        _core.load_model_file_f64(str(path))


# ----------------------------------------------------------------------------- one format
@pytest.fixture(scope="module")
def gru_file(tmp_path_factory):
    return saved(fastgru.GRU(2, 3, bidirectional=True, seed=0), tmp_path_factory.mktemp("base") / "gru.safetensors")


@pytest.mark.parametrize("field, value, match", [
    ("reset_after", 0, "reset_after: expected a boolean"),  # once reset-before in Python, reset-after in C++
    ("bidirectional", 1, "bidirectional: expected a boolean"),  # once bidirectional in Python only
    ("bias", "false", "bias: expected a boolean"),  # once True in Python (bool("false"))
    ("hidden_size", 3.0, "hidden_size: expected an integer"),
    ("hidden_size", 2**31 + 1, "hidden_size: expected an integer in 1..2"),
    ("dropout", 1, r"dropout: expected a number in \[0, 1\)"),
    ("dtype", "float16", "dtype"),
    ("unknown", 1, "unknown"),
])
def test_config_fields_have_one_json_type_for_both_readers(tmp_path, gru_file, field, value, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(with_config(gru_file, **{field: value}))
    both_refuse(path, match)


@pytest.mark.parametrize("version", ["1.9", "1_0", "1abc", "0", "-5", "01", " 1", 1, None, [1]])
def test_format_version_is_exactly_the_string_1(tmp_path, gru_file, version):
    header, data = split(gru_file)
    header["__metadata__"]["format_version"] = version
    path = tmp_path / "bad.safetensors"
    path.write_bytes(join(header, data))
    both_refuse(path, "format_version|metadata 'format_version'")


@pytest.mark.parametrize("case, match", [
    ("shape_inf", "Infinity is not JSON"), ("shape_nan", "NaN is not JSON"), ("shape_2e63", "shape expected"),
    ("shape_1e300", "shape expected"), ("begin_negative", "data_offsets expected"), ("end_1e20", "data_offsets expected"),
    ("config_null", "config: expected a JSON object"), ("duplicate_key", "duplicate key"),
    ("extra_tensor", "unexpected.*extra"), ("alias", "tile the data"), ("dtype", "do not hold"),
])
def test_malformed_tensor_tables_are_refused_by_both(tmp_path, gru_file, case, match):
    header, data = split(gru_file)
    entry = header["weight_hh_l0"]
    text_edit = None
    if case.startswith("shape_"):
        entry["shape"] = [{"inf": "INF", "nan": "NAN", "2e63": 2**63, "1e300": 1e300}[case[6:]], 3]
    elif case == "begin_negative":
        entry["data_offsets"][0] = -4
    elif case == "end_1e20":
        entry["data_offsets"][1] = 1e20
    elif case == "config_null":
        header["__metadata__"]["config"] = "null"
    elif case == "duplicate_key":
        text_edit = ('"weight_hh_l0": ', '"weight_hh_l0": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "weight_hh_l0": ')
    elif case == "extra_tensor":  # data beyond the configured tensors
        header["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        data += b"\0" * 4
    elif case == "alias":  # a second name for the same bytes
        header["weight_hh_l1"] = dict(entry)
    elif case == "dtype":
        entry["dtype"] = "F64"
    text = json.dumps(header).replace('"INF"', "Infinity").replace('"NAN"', "NaN")
    if text_edit:
        text = text.replace(text_edit[0], text_edit[1], 1)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + data)
    both_refuse(path, match)


def test_both_readers_read_the_same_network_from_every_base_file(tmp_path):
    for name, content in {**base_files(), **model_base_files()}.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        assert judge(path) == ("accepted", "accepted", ""), name


def test_one_corpus_of_malformed_files_gets_one_verdict_from_both_readers(tmp_path):
    """400 mutated files here; CI's fuzz job (tests/fuzz_model_files.py) runs thousands more."""
    bases = {**base_files(), **model_base_files()}
    names = sorted(bases)
    disagreements = []
    for seed in range(400):
        path = tmp_path / "mutated.safetensors"
        path.write_bytes(mutate(bases[names[seed % len(names)]], seed))
        python, cpp, detail = judge(path)
        if python != cpp or detail or python.startswith("failed"):
            disagreements.append((seed, python, cpp, detail))
    assert disagreements == []



# ----------------------------------------------------------------------------- edges found in review
def test_numbers_beyond_an_int64_read_as_the_floats_cpp_reads(tmp_path):
    content = saved(fastgru.LiGRU(2, 3, seed=0), tmp_path / "base.safetensors")
    path = tmp_path / "slope.safetensors"
    path.write_bytes(with_config(content, negative_slope=10**20))  # a float in C++: accepted by both
    assert judge(path) == ("accepted", "accepted", "")
    path.write_bytes(with_config(content, bn_eps=10**400))  # beyond a double: refused by both
    both_refuse(path, "bn_eps: expected a number > 0")


def test_merge_mode_null_on_a_unidirectional_layer_is_refused_by_both(tmp_path):
    # Found by the fuzz job: C++ once ignored it (a network has no directions to keep apart).
    content = saved(fastgru.GRU(2, 3, seed=0), tmp_path / "base.safetensors")
    path = tmp_path / "bad.safetensors"
    path.write_bytes(with_config(content, merge_mode=None))
    both_refuse(path, "merge_mode: only a bidirectional layer has two directions to merge")
    with pytest.raises(_core.CoreArgumentError, match="merge_mode: only a bidirectional layer"):
        _core.load_model_file_f32(str(path))


def test_model_numbers_beyond_a_double_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    fastgru.Model(fastgru.GRU(2, 3), clip_grad_norm=1.0).save(path)
    path.write_bytes(with_config(path.read_bytes(), clip_grad_norm=10**400))
    with pytest.raises(ModelFileError, match="clip_grad_norm"):
        fastgru.load(path)


def test_a_path_with_a_nul_byte_is_refused_not_cut_short(tmp_path):
    fastgru.GRU(2, 3).save(tmp_path / "a")
    both_refuse(str(tmp_path / "a") + "\0b", "NUL")


def test_a_sparse_file_larger_than_its_header_says_is_refused_before_reading(tmp_path):
    path = tmp_path / "sparse.safetensors"
    fastgru.GRU(2, 3).save(path)
    os.truncate(path, 2**40)  # a terabyte that takes no disk
    assert peak_bytes(lambda: fastgru.load(path)) < 1_000_000
    both_refuse(path, "after its header")


def test_a_shape_of_many_large_entries_is_refused_in_linear_time(tmp_path, gru_file):
    header, data = split(gru_file)
    header["weight_hh_l0"]["shape"] = [2**53] * 50_000
    path = tmp_path / "shape.safetensors"
    path.write_bytes(join(header, data))
    both_refuse(path, "do not hold shape")


def test_loading_repeats_no_construction_warning(tmp_path):
    path = tmp_path / "dropout.safetensors"
    with pytest.warns(UserWarning, match="dropout"):
        fastgru.GRU(2, 3, dropout=0.5).save(path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fastgru.load(path).dropout == 0.5


@pytest.mark.parametrize("metadata", [{"ids": list(range(1000))}, {"x": [[[[]]]]}, {"s": "a,b,c" * 1000}])
def test_model_metadata_that_save_writes_load_reads(tmp_path, metadata):
    path = tmp_path / "model.safetensors"
    fastgru.Model(fastgru.GRU(2, 3)).save(path, metadata=metadata)
    assert fastgru.load(path).metadata == metadata


@pytest.mark.parametrize("metadata, error", [
    ({"s": float("nan")}, ValueError), ({"deep": json.loads("[" * 70 + "]" * 70)}, ValueError),
    ({"big": "x" * 1_000_001}, ValueError), ([1, 2], TypeError),
])
def test_model_metadata_that_load_would_refuse_is_not_written(tmp_path, metadata, error):
    path = tmp_path / "model.safetensors"
    with pytest.raises(error, match="metadata"):
        fastgru.Model(fastgru.GRU(2, 3)).save(path, metadata=metadata)
    assert not path.exists()


def test_atomic_write_keeps_the_name_of_another_files_error(tmp_path):
    from fastgru.files import atomic_write

    with pytest.raises(FileNotFoundError) as error:
        with atomic_write(tmp_path / "out.bin"):
            open(tmp_path / "missing-input.csv")
    assert error.value.filename == str(tmp_path / "missing-input.csv")
    assert os.listdir(tmp_path) == []


def test_atomic_write_takes_long_names_bytes_paths_and_refuses_folders(tmp_path):
    from fastgru.files import atomic_write

    long_name = tmp_path / ("m" * 250)
    with atomic_write(long_name) as handle:
        handle.write(b"long")
    with atomic_write(os.fsencode(tmp_path / "bytes.bin")) as handle:
        handle.write(b"bytes")
    assert long_name.read_bytes() == b"long" and (tmp_path / "bytes.bin").read_bytes() == b"bytes"
    for bad in ("", str(tmp_path / "folder") + os.sep):
        with pytest.raises(ValueError, match="path: expected the path of a file"):
            with atomic_write(bad):
                pass
    assert sorted(os.listdir(tmp_path)) == ["bytes.bin", "m" * 250]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a write-protected file, as open() lets it")
def test_atomic_write_refuses_a_write_protected_file(tmp_path):
    path = tmp_path / "protected.safetensors"
    fastgru.GRU(2, 3).save(path)
    os.chmod(path, 0o444)
    with pytest.raises(PermissionError):
        fastgru.GRU(2, 3).save(path)


# ----------------------------------------------------------------------------- bf16 and int8 layers
def both_refuse_quantized(path, match, whole_model=False):
    """Both loaders refuse ``path`` (the C++ one asked for float32, as a bf16 or int8 file is
    loaded) with their documented errors, both messages matching ``match``."""
    with pytest.raises(ModelFileError, match=match):
        fastgru.load(path)
    loaders = (_core.load_whole_model_file_f32, _core.load_model_file_f32)
    for loader in loaders if whole_model else reversed(loaders):
        with pytest.raises(_core.CoreArgumentError, match="not a readable fastgru model file"):
            loader(str(path))
    with pytest.raises(_core.CoreArgumentError, match=match):
        loaders[0 if whole_model else 1](str(path))


def _config_edit(**changes):
    def edit(tensors, metadata):
        key = "recurrent_config" if "recurrent_config" in metadata else "config"
        metadata[key] = json.dumps({**json.loads(metadata[key]), **changes})
    return edit


def _tensor_edit(name, change):
    def edit(tensors, metadata):
        prefix = "recurrent." if "recurrent_config" in metadata else ""
        tensors[prefix + name] = change(np.array(tensors[prefix + name]))
    return edit


def _set(index, value):
    def change(array):
        array[index] = value
        return array
    return change


def _halved_row(array):
    array[0] //= 2  # largest |q| 63: scale no longer max|row| / 127
    return array


def _added_scale(tensors, metadata):
    prefix = "recurrent." if "recurrent_config" in metadata else ""
    tensors[prefix + "weight_ih_l0.scale"] = np.ones(9, np.float32)


def _dropped_scale(tensors, metadata):
    prefix = "recurrent." if "recurrent_config" in metadata else ""
    del tensors[prefix + "weight_hh_l0.scale"]


# (base file, edit, what both readers say)
QUANTIZED_REFUSALS = {
    "bf16_as_full": ("bf16", _config_edit(precision="full"),
        "weight_ih_l0'?: the configuration needs dtype F32, the file has BF16"),
    "float_weights_as_bf16": ("full", _config_edit(precision="bf16"),
        "weight_ih_l0'?: the configuration needs dtype BF16, the file has F32"),
    "missing_scale": ("int8", _dropped_scale, "weight_hh_l0.scale"),
    "extra_scale": ("bf16", _added_scale, "unexpected.*weight_ih_l0.scale"),
    "scale_shape": ("int8", _tensor_edit("weight_ih_l0.scale", lambda a: np.append(a, 1)),
        "weight_ih_l0.scale'?: the configuration needs"),
    "scale_dtype": ("int8", _tensor_edit("weight_ih_l0.scale", lambda a: a.astype(np.float64)),
        "weight_ih_l0.scale'?: the configuration needs dtype F32, the file has F64"),
    "scale_nan": ("int8", _tensor_edit("weight_ih_l0.scale", _set(1, np.nan)),
        "weight_ih_l0.scale': expected finite scales >= 0, got nan"),
    "scale_inf": ("int8", _tensor_edit("weight_hh_l0.scale", _set(2, np.inf)),
        "weight_hh_l0.scale': expected finite scales >= 0, got inf"),
    "scale_negative": ("int8", _tensor_edit("weight_ih_l0.scale", _set(0, -0.5)),
        "weight_ih_l0.scale': expected finite scales >= 0, got -0.5"),
    "int8_minus_128": ("int8", _tensor_edit("weight_hh_l0", _set((4, 1), -128)),
        "weight_hh_l0': expected int8 values in -127..127, got -128"),
    "row_not_at_127": ("int8", _tensor_edit("weight_hh_l0", _halved_row),
        "weight_hh_l0' row 0: q \\* scale does not quantize back to q"),
    "scale_overflow": ("int8", _tensor_edit("weight_ih_l0.scale", _set(0, 3e37)),
        "weight_ih_l0': its values times their scales overflow float32"),
    "bf16_nan": ("bf16", _tensor_edit("weight_hh_l0", _set((1, 1), 0x7FC0)),
        "weight_hh_l0': expected finite bf16 weights, got NaN or inf"),
    "bf16_inf": ("bf16", _tensor_edit("weight_ih_l0", _set((0, 0), 0xFF80)),
        "weight_ih_l0': expected finite bf16 weights"),
    "float64_layer": ("full", _config_edit(precision="int8", dtype="float64"),
        "precision: bf16 and int8 layers compute in float32; expected 'full' for a float64 GRU, got 'int8'"),
    "ligru_statistics": ("ligru_int8", _tensor_edit("bn_running_var_l0", _set(2, 1.0)),
        "bn_running_var_l0': a bf16 or int8 layer's file holds W_ih with its batch normalisation folded in and "
        "the identity statistics"),
    "libru_bn_weight": ("libru_bf16", _tensor_edit("bn_weight_l0", _set(0, 0.5)),
        "bn_weight_l0': a bf16 or int8 layer's file holds W_ih with its batch normalisation folded in"),
    "ligru_bn_eps": ("ligru_int8", _config_edit(bn_eps=1.5),
        "bn_eps: the file of a LiGRU in int8 holds identity statistics with bn_running_var 1 - bn_eps; "
        "expected bn_eps <= 1"),
    "precision_int4": ("int8", _config_edit(precision="int4"), "precision: expected 'full', 'bf16' or 'int8'"),
    "precision_null": ("int8", _config_edit(precision=None), "precision: expected 'full', 'bf16' or 'int8'"),
}


@pytest.mark.parametrize("whole_model", [False, True], ids=["layer", "model"])
@pytest.mark.parametrize("case", sorted(QUANTIZED_REFUSALS))
def test_malformed_quantized_files_are_refused_alike_by_both(tmp_path, case, whole_model):
    from fastgru.model_file import read_model_file, write_model_file

    base, edit, match = QUANTIZED_REFUSALS[case]
    if base.startswith(("ligru", "libru")):
        cell, mode = base.split("_")
        layer = {"ligru": fastgru.LiGRU, "libru": fastgru.LiBRU}[cell](2, 3, seed=1).quantize(mode)
    else:
        layer = fastgru.GRU(2, 3, seed=1)
        layer = layer if base == "full" else layer.quantize(base)
    saved_object = fastgru.Model(layer, outputs=2, seed=0) if whole_model else layer
    saved_object.save(tmp_path / "base.safetensors")
    tensors, metadata = read_model_file(tmp_path / "base.safetensors")
    tensors = {name: np.array(array) for name, array in tensors.items()}
    edit(tensors, metadata)
    write_model_file(tmp_path / "bad.safetensors", tensors, metadata)
    both_refuse_quantized(tmp_path / "bad.safetensors", match, whole_model)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_rows_of_zeros_tiny_and_huge_values_save_and_load_as_they_ran(tmp_path, mode):
    # int8: a zero row (scale 0), rows whose reciprocal 127 / max|row| overflows (all ±127), one
    # whose scale underflows to 0 (q kept as computed, its products 0), subnormal and huge values.
    from fastgru.model_file import read_model_file
    from fastgru.reference_quantized import quantize_matrix

    layer = fastgru.GRU(4, 3, seed=0)
    weight = layer.state_dict()["weight_ih_l0"]
    weight[:6] = [[0, 0, 0, 0], [1e-38, -3e-39, 0, 2e-45], [3e38, -1e38, 1, 0], [1e-30, 5e-31, -1e-31, 0],
                  [127, -1, 0.5, 3], [1.4e-45, 2.8e-45, 0, -1.4e-45]]
    layer.load_state_dict({**layer.state_dict(), "weight_ih_l0": weight})
    quantized = layer.quantize(mode)
    quantized.save(tmp_path / "q.safetensors")
    loaded = fastgru.load(tmp_path / "q.safetensors")
    x = np.random.default_rng(1).standard_normal((5, 2, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded(x)[0], quantized(x)[0], rtol=1e-6, atol=1e-7)
    y_cpp, _ = _core.load_model_file_f32(str(tmp_path / "q.safetensors")).forward(x, None, None, False, None, 0)
    np.testing.assert_allclose(y_cpp, quantized(x)[0], rtol=1e-6, atol=1e-7)
    if mode == "int8":
        tensors, _ = read_model_file(tmp_path / "q.safetensors")
        assert tensors["weight_ih_l0.scale"][5] == 0 and np.array_equal(tensors["weight_ih_l0"][5], [127, 127, 0, -127])
        again = quantize_matrix(loaded.state_dict()["weight_ih_l0"], "int8")
        np.testing.assert_array_equal(again.values[:5], tensors["weight_ih_l0"][:5])
        assert not again.values[5].any() and again.scale[5] == 0


def test_a_quantized_batch_normalised_layer_with_bn_eps_over_1_is_not_saved(tmp_path):
    # Its file's identity statistics need bn_running_var = 1 - bn_eps >= 0.
    layer = fastgru.LiGRU(2, 3, seed=0, bn_eps=1.5).quantize("int8")
    for saved_object in (layer, fastgru.Model(layer, outputs=1)):
        with pytest.raises(ValueError, match="save: the file of a LiGRU in int8 holds identity statistics with "
                                             "bn_running_var 1 - bn_eps; expected bn_eps <= 1, got 1.5"):
            saved_object.save(tmp_path / "q.safetensors")
    assert os.listdir(tmp_path) == []


def test_a_bf16_layer_whose_weights_round_to_inf_is_not_saved(tmp_path):
    layer = fastgru.GRU(2, 3, seed=0)
    layer.load_state_dict({**layer.state_dict(), "weight_hh_l0": np.full((9, 3), 3.4e38, np.float32)})
    with pytest.raises(ValueError, match="weight_hh_l0 has values that are not finite in bf16"):
        layer.quantize("bf16").save(tmp_path / "q.safetensors")
    assert os.listdir(tmp_path) == []


QUANTIZED_LAYERS = [("GRU", dict()), ("GRU", dict(num_layers=2, bidirectional=True)),
                    ("GRU", dict(reset_after=False, bias=False)), ("GRU", dict(reverse=True, batch_first=True)),
                    ("GRU", dict(gates="hidden", reset_after=False)), ("GRU", dict(gates="bias")),
                    ("MGU", dict(num_layers=2)), ("MGU", dict(bias=False, bidirectional=True, merge_mode="sum")),
                    ("LiGRU", dict(num_layers=2, activation="leaky_relu")), ("LiGRU", dict(bidirectional=True, bn_eps=0.5)),
                    ("LiBRU", dict(reverse=True))]


@pytest.mark.parametrize("mode", ["bf16", "int8"])
@pytest.mark.parametrize("cls, settings", QUANTIZED_LAYERS, ids=str)
def test_a_quantized_layer_saves_its_quantized_weights_and_loads_as_it_ran(tmp_path, mode, cls, settings):
    from fastgru.model_file import read_model_file
    from fastgru.reference_quantized import quantize_matrix

    from fastgru.model_file import folded_state

    layer = getattr(fastgru, cls)(3, 5, seed=4, **settings)
    if cls in ("LiGRU", "LiBRU"):  # running statistics away from their initial values
        layer.forward(np.random.default_rng(1).standard_normal((6, 4, 3)) + 0.5)
    quantized = layer.quantize(mode)
    quantized.save(tmp_path / "q.safetensors")
    tensors, metadata = read_model_file(tmp_path / "q.safetensors")
    # A GRU that clips nothing leaves clip out (readers from before it existed read the file).
    written = {name: value for name, value in layer.config().items() if (name, value) != ("clip", None)}
    assert json.loads(metadata["config"]) == {**written, "precision": mode}
    loaded = fastgru.load(tmp_path / "q.safetensors")
    assert type(loaded) is type(layer) and loaded.precision == mode and loaded.config() == layer.config()
    weights = [name for name in layer.state_dict() if name.startswith("weight_")]
    # What the layer computes with: the batch-normalised cells' W_ih with the statistics folded in,
    # which their files hold with the identity statistics (the other cells': their state_dict).
    for name, array in folded_state(quantized).items():
        stored = quantize_matrix(array, mode) if name in weights else None
        reloaded = loaded.state_dict()[name]
        if name not in weights:  # biases (and statistics) stay float32, exactly
            assert tensors[name].dtype == np.float32 and np.array_equal(tensors[name], array)
        elif mode == "bf16":  # the bit patterns of the rounded weights, which load back exactly
            assert tensors[name].dtype == np.uint16
            assert np.array_equal(tensors[name], stored.values.view(np.uint32) >> 16)
            assert np.array_equal(reloaded, stored.values)
        else:  # the int8 values and scales; the loaded weights quantize to the same values
            assert tensors[name].dtype == np.int8 and np.array_equal(tensors[name], stored.values)
            assert np.array_equal(tensors[name + ".scale"], stored.scale)
            again = quantize_matrix(reloaded, "int8")
            assert np.array_equal(again.values, stored.values)
            np.testing.assert_allclose(again.scale, stored.scale, rtol=2 * np.finfo(np.float32).eps, atol=0)
    x = np.random.default_rng(5).standard_normal((6, 4, 3)).astype(np.float32)
    expected = quantized(x)[0]
    np.testing.assert_allclose(loaded(x)[0], expected, rtol=1e-6, atol=1e-7)
    network = _core.load_model_file_f32(str(tmp_path / "q.safetensors"))
    y_cpp, _ = network.forward(x.transpose(1, 0, 2).copy() if layer.batch_first else x, None, None, False, None, 0)
    np.testing.assert_allclose(y_cpp.transpose(1, 0, 2) if layer.batch_first else y_cpp, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_a_quantized_model_saves_and_loads_in_both_readers(tmp_path, mode):
    model = fastgru.Model(fastgru.GRU(3, 4, num_layers=2, seed=2), outputs=2, head="sequence", seed=2)
    model.set_output_scaling([3.0, 0.5], [10.0, -1.0])
    model.metadata = {"units": "kW"}
    quantized = model.quantize(mode)
    quantized.save(tmp_path / "m.safetensors")
    loaded = fastgru.load(tmp_path / "m.safetensors")
    assert loaded.recurrent.precision == mode and loaded.metadata == {"units": "kW"}
    assert loaded.head_weight.dtype == np.float32 and np.array_equal(loaded.head_weight, model.head_weight)
    x = np.random.default_rng(3).standard_normal((5, 6, 3)).astype(np.float32)
    expected = quantized.predict(x)
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-6, atol=1e-6)
    cpp = _core.load_whole_model_file_f32(str(tmp_path / "m.safetensors"))
    np.testing.assert_allclose(cpp.predict(x, None, False), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_a_quantized_file_computes_in_float32_only(tmp_path, mode):
    fastgru.GRU(2, 3, seed=0).quantize(mode).save(tmp_path / "layer.safetensors")
    fastgru.Model(fastgru.GRU(2, 3, seed=0), outputs=1).quantize(mode).save(tmp_path / "model.safetensors")
    for loader, name in ((_core.load_model_file_f64, "layer"), (_core.load_whole_model_file_f64, "model")):
        with pytest.raises(_core.CoreArgumentError, match=f"{mode} model computes in float32: load it as float32"):
            loader(str(tmp_path / f"{name}.safetensors"))


def test_quantized_files_hold_their_weights_in_2_or_1_bytes(tmp_path):
    """README's figures: a GRU(256, 256)'s file in float32, bf16 and int8."""
    layer = fastgru.GRU(256, 256, seed=0)
    weights, rows = 2 * 768 * 256, 2 * 768  # weight_ih and weight_hh; their rows, the biases' values
    data = {}
    for mode, expected in (("full", 4 * weights + 4 * rows), ("bf16", 2 * weights + 4 * rows),
                           ("int8", weights + 4 * rows + 4 * rows)):  # int8: and a float32 scale per row
        content = saved(layer if mode == "full" else layer.quantize(mode), tmp_path / f"{mode}.safetensors")
        data[mode] = len(split(content)[1])
        assert data[mode] == expected, mode
