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
