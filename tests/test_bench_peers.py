"""bench/run.py's reduced-precision peers: PyTorch's dynamic int8 GRU and OpenVINO's bf16 hint, each
row with its error against fastgru float32 on the same inputs, and what OpenVINO really compiled."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.best_isa_only

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def quick_run(tmp_path, impls):
    """A one-thread run of the quick set with the fewest timed runs; returns (report, results)."""
    result = subprocess.run([sys.executable, str(RUN), "--set", "quick", "--impls", impls, "--threads", "1",
                             "--no-stream", "--min-repeats", "1", "--target-seconds", "0.01", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "results.md").read_text(), json.loads((tmp_path / "results.json").read_text())


def test_torch_int8_rows_print_their_error_against_fastgru_float32(tmp_path):
    report, results = quick_run(tmp_path, "fastgru,torch-int8")
    int8 = [c for c in results["cells"] if c["impl"] == "torch-int8"]
    shapes = results["settings"]["sequences"]
    assert {(c["T"], c["B"], c["I"], c["H"]) for c in int8} == {(s["T"], s["B"], s["I"], s["H"]) for s in shapes}
    assert {(c["convention"], c["mode"]) for c in int8} == {("reset_after", "inference")}
    for c in int8:
        error = c["error_vs_fastgru"]
        # int8 rounding shows (float32 would be ~1e-7) but stays far from another function's error
        assert 1e-4 < error["normalised"] < 0.2 and error["max_abs"] > 0 and c["check_ok"]
        row = next(line for line in report.splitlines()
                   if line.startswith(f"| {c['T']} | {c['B']} | {c['I']} | {c['H']} | after | inference |"))
        assert f"{error['max_abs']:.1e} / {error['normalised']:.1e}" in row and row.endswith("| ok |")
    assert "| PyTorch int8 ms | GFLOP/s | × | error vs fastgru fp32 (max abs / normalised) |" in report
    assert all("error_vs_fastgru" not in c for c in results["cells"] if c["impl"] == "fastgru")


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed (the bench extra)")
def test_openvino_reports_the_precision_it_compiled_and_bf16_its_error(tmp_path):
    report, results = quick_run(tmp_path, "fastgru,openvino,openvino-bf16")
    for impl, requested in (("openvino", "f32"), ("openvino-bf16", "bf16")):
        info = results["impl_info"][impl]["1"]
        assert info["requested_precision"] == requested and info["num_streams"] == 1
        assert info["inference_num_threads"] == 1
        ran = info["gru_runtime_precision"]
        assert ran in ("f32", "bf16")
        assert (f"{'OpenVINO bf16' if requested == 'bf16' else 'OpenVINO'}: asked for {requested}; the compiled "
                f"model's INFERENCE_PRECISION_HINT reads {info['inference_precision_hint']} and its GRU node "
                f"(RNNSeq) runs in {ran}") in report
        cells = [c for c in results["cells"] if c["impl"] == impl]
        assert len(cells) == 2 * len(results["settings"]["sequences"]) and all(c["check_ok"] for c in cells)
        assert all(("error_vs_fastgru" in c) == (requested == "bf16") for c in cells)
    ran = results["impl_info"]["openvino-bf16"]["1"]["gru_runtime_precision"]
    assert ("| OpenVINO bf16 (ran f32) ms |" in report) == (ran == "f32")
    if ran == "f32":  # the hint was not honoured: the error is float32's rounding, and shows it
        assert all(c["error_vs_fastgru"]["normalised"] < 1e-5 for c in results["cells"] if c["impl"] == "openvino-bf16")
