#!/usr/bin/env python
"""Variable-length batches, stacked bidirectional networks, the GRU's gate forms, the MGU, the LiGRU and the LiBRU: fastgru against torch.nn.GRU.

    python bench/layers.py [--threads 1,2] [--parts lengths,stacked,cells,gates,clip] [--out bench/results]

Shapes come from bench/shapes.json ("layers"). Each cell is the median of timed runs after a
warm-up, float32, every implementation on the same arrays. Variable lengths compare a mixed-length
batch with a dense batch holding the same number of real steps (B rows of the mean length), the
padded batch, and PyTorch's packed sequences; `train` is forward + backward of all gradients.
The mixed-length batch and its dense batch of the same real steps are timed alternately in one
loop (so a busy machine slows both alike), and a table of their ratio, mixed / dense, closes the
report: the cost of variable lengths beyond the real steps they hold (goal: at most 1.25). A
table gives the LiBRU's time over the LiGRU's (ReLU) on the "cells" shapes, the two timed
alternately in one loop (goal: at most 1.15). The last gives each form of the GRU's gates
(EQUATIONS.md §7) over the full GRU of the same reset convention on the "cells" shapes, all timed
in turn in one loop (goals at T=100, B=32, I=H=256: "hidden_bias" and "hidden" at most 0.85,
"bias" at most 0.5, inference and training). With --parts clip, a GRU with ONNX's clip
(EQUATIONS.md §1.1, clip=3) over the same GRU without, each convention, timed in turn (goal: at
most 1.05: a bound on the pre-activations costs two comparisons per gate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def median_ms(run, repeats=9):
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def interleaved_ms(runs, seconds):
    """Median ms of each of `runs`, timed one after the other in turn for `seconds`."""
    for run in runs:
        run()
    times = [[] for _ in runs]
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times[0]) < 5:
        for run, out in zip(runs, times):
            start = time.perf_counter()
            run()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) * 1e3 for t in times]


def fastgru_pair(fastgru, x, lengths, dy, dense_T, seconds=4.0):
    """(inference ms, train ms) of the mixed-length batch and of the dense batch of its real
    steps (B rows of dense_T steps), each pair timed alternately."""
    layer = fastgru.GRU(x.shape[2], dy.shape[2], seed=0)
    xd, dyd = x[:dense_T].copy(), dy[:dense_T].copy()

    def train(inputs, grads, row_lengths):
        layer.forward(inputs, lengths=row_lengths)
        layer.backward(grads)

    inference = interleaved_ms([lambda: layer(x, lengths=lengths), lambda: layer(xd)], seconds)
    training = interleaved_ms([lambda: train(x, dy, lengths), lambda: train(xd, dyd, None)], seconds)
    return (inference[0], training[0]), (inference[1], training[1])


def fastgru_cells(fastgru, x, lengths, dy, cls="GRU", **config):
    layer = getattr(fastgru, cls)(x.shape[2], config.pop("H"), seed=0, **config)

    def train():
        layer.forward(x, lengths=lengths)
        layer.backward(dy)

    return median_ms(lambda: layer(x, lengths=lengths)), median_ms(train, 5)


def libru_over_ligru(fastgru, x, dy, H, seconds=4.0):
    """(inference, train): the LiBRU's median time over the LiGRU's, the two timed alternately."""
    libru, ligru = fastgru.LiBRU(x.shape[2], H, seed=0), fastgru.LiGRU(x.shape[2], H, seed=0)

    def train(layer):
        layer.forward(x)
        layer.backward(dy)

    inference = interleaved_ms([lambda: libru(x), lambda: ligru(x)], seconds)
    training = interleaved_ms([lambda: train(libru), lambda: train(ligru)], seconds)
    return inference[0] / inference[1], training[0] / training[1]


def variants_over_full(fastgru, x, dy, H, reset_after, variants, seconds=4.0):
    """name -> (inference, train): each variant's median time over the full GRU's, all timed in
    turn in one loop. ``variants``: name -> the GRU's settings."""
    forms = ("full", *variants)
    layers = [fastgru.GRU(x.shape[2], H, reset_after=reset_after, seed=0, **settings)
              for settings in ({}, *variants.values())]

    def train(layer):
        layer.forward(x)
        layer.backward(dy)

    inference = interleaved_ms([lambda layer=layer: layer(x) for layer in layers], seconds)
    training = interleaved_ms([lambda layer=layer: train(layer) for layer in layers], seconds)
    return {form: (inference[i] / inference[0], training[i] / training[0]) for i, form in enumerate(forms) if i}


def torch_cells(torch, x, lengths, dy, H, **config):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    gru = torch.nn.GRU(x.shape[2], H, **config)
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)

    def run(inputs):
        if lengths is None:
            return gru(inputs)[0]
        packed = pack_padded_sequence(inputs, torch.from_numpy(lengths), enforce_sorted=False)
        return pad_packed_sequence(gru(packed)[0], total_length=x.shape[0])[0]

    def inference():
        with torch.inference_mode():
            run(xt)

    def train():
        inputs = xt.clone().requires_grad_()
        run(inputs).backward(dyt)

    return median_ms(inference), median_ms(train, 5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--parts", default="lengths,stacked,cells,gates,clip",
                        help="which tables: lengths, stacked, cells, gates, clip (comma-separated)")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    unknown = parts - {"lengths", "stacked", "cells", "gates", "clip"}
    if unknown:
        parser.error(f"--parts: expected lengths, stacked, cells, gates or clip, got {', '.join(sorted(unknown))}")
    import fastgru
    import torch

    shapes = json.loads((HERE / "shapes.json").read_text())["layers"]
    rows, ratios, libru_ratios, form_ratios, clip_ratios = [], [], [], [], []
    for threads in [int(t) for t in args.threads.split(",")]:
        fastgru.set_num_threads(threads)
        torch.set_num_threads(threads)
        for case in shapes["variable_lengths"] if "lengths" in parts else []:
            T, B, I, H = case["T"], case["B"], case["I"], case["H"]
            rng = np.random.default_rng(case["seed"])
            lengths = rng.integers(case["min_length"], T + 1, size=B)
            x = rng.standard_normal((T, B, I)).astype(np.float32)
            dy = rng.standard_normal((T, B, H)).astype(np.float32)
            dense_T = int(round(lengths.sum() / B))
            mixed, dense = fastgru_pair(fastgru, x, lengths, dy, dense_T)
            results = {
                "fastgru mixed lengths": mixed,
                "fastgru dense, same real steps": dense,
                "fastgru padded (lengths ignored)": fastgru_cells(fastgru, x, None, dy, H=H),
                "PyTorch packed sequence": torch_cells(torch, x, lengths, dy, H),
                "PyTorch padded": torch_cells(torch, x, None, dy, H),
            }
            label = f"T={T} B={B} I={I} H={H}, lengths {case['min_length']}..{T} ({lengths.sum() / (T * B):.0%} real)"
            rows += [dict(threads=threads, case=label, impl=k, inference_ms=v[0], train_ms=v[1]) for k, v in results.items()]
            ratios.append(dict(threads=threads, case=label, dense_steps=f"{dense_T}x{B}",
                               inference=mixed[0] / dense[0], train=mixed[1] / dense[1]))
        for case in shapes["stacked"] if "stacked" in parts else []:
            T, B, I, H, L, bi = case["T"], case["B"], case["I"], case["H"], case["layers"], case["bidirectional"]
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, I)).astype(np.float32)
            dy = rng.standard_normal((T, B, (2 if bi else 1) * H)).astype(np.float32)
            results = {
                "fastgru": fastgru_cells(fastgru, x, None, dy, H=H, num_layers=L, bidirectional=bi),
                "PyTorch": torch_cells(torch, x, None, dy, H, num_layers=L, bidirectional=bi),
            }
            label = f"T={T} B={B} I={I} H={H}, {L} layers{', bidirectional' if bi else ''}"
            rows += [dict(threads=threads, case=label, impl=k, inference_ms=v[0], train_ms=v[1]) for k, v in results.items()]

        for case in shapes["cells"] if parts & {"gates", "clip"} else []:
            T, B, I, H = case["T"], case["B"], case["I"], case["H"]
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, I)).astype(np.float32)
            dy = rng.standard_normal((T, B, H)).astype(np.float32)
            variants = {form: {"gates": form} for form in ("hidden_bias", "hidden", "bias")} if "gates" in parts else {}
            if "clip" in parts:
                variants["clip=3"] = {"clip": 3.0}
            for reset_after in (True, False):
                for name, (inference, train) in variants_over_full(fastgru, x, dy, H, reset_after, variants).items():
                    row = dict(threads=threads, case=f"T={T} B={B} I={I} H={H}", reset_after=reset_after,
                               inference=inference, train=train)
                    if name == "clip=3":
                        clip_ratios.append(row)
                    else:
                        form_ratios.append(dict(row, gates=name))
        for case in shapes["cells"] if "cells" in parts else []:
            T, B, I, H = case["T"], case["B"], case["I"], case["H"]
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, I)).astype(np.float32)
            dy = rng.standard_normal((T, B, H)).astype(np.float32)
            results = {
                "fastgru GRU, reset after": fastgru_cells(fastgru, x, None, dy, H=H),
                "fastgru GRU, reset before": fastgru_cells(fastgru, x, None, dy, H=H, reset_after=False),
                "fastgru MGU": fastgru_cells(fastgru, x, None, dy, cls="MGU", H=H),
                "fastgru LiGRU (ReLU)": fastgru_cells(fastgru, x, None, dy, cls="LiGRU", H=H),
                "fastgru LiGRU (tanh)": fastgru_cells(fastgru, x, None, dy, cls="LiGRU", H=H, activation="tanh"),
                "fastgru LiGRU (softplus)": fastgru_cells(fastgru, x, None, dy, cls="LiGRU", H=H,
                                                          activation="softplus"),
                "fastgru LiBRU": fastgru_cells(fastgru, x, None, dy, cls="LiBRU", H=H),
            }
            label = f"T={T} B={B} I={I} H={H}, cells"
            inference, train = libru_over_ligru(fastgru, x, dy, H)
            libru_ratios.append(dict(threads=threads, case=label, inference=inference, train=train))
            rows += [dict(threads=threads, case=label, impl=k, inference_ms=v[0], train_ms=v[1]) for k, v in results.items()]

    lines = ["| threads | case | implementation | inference ms | train ms | × (vs first fastgru row) |",
             "|---:|---|---|---:|---:|---|"]
    first = {}
    for r in rows:
        base = first.setdefault((r["threads"], r["case"]), r)
        ratio = f"{r['inference_ms'] / base['inference_ms']:.2f} / {r['train_ms'] / base['train_ms']:.2f}"
        lines.append(f"| {r['threads']} | {r['case']} | {r['impl']} | {r['inference_ms']:.2f} | {r['train_ms']:.2f} | {ratio} |")
    lines += ["", "Variable lengths: fastgru mixed lengths / fastgru dense batch of the same real steps "
              "(timed alternately; goal <= 1.25)", "",
              "| threads | case | dense batch (T x B) | inference | train |", "|---:|---|---|---:|---:|"]
    for r in ratios:
        lines.append(f"| {r['threads']} | {r['case']} | {r['dense_steps']} | {r['inference']:.2f} | {r['train']:.2f} |")
    lines += ["", "LiBRU / LiGRU (ReLU), timed alternately (goal <= 1.15)", "",
              "| threads | case | inference | train |", "|---:|---|---:|---:|"]
    for r in libru_ratios:
        lines.append(f"| {r['threads']} | {r['case']} | {r['inference']:.2f} | {r['train']:.2f} |")
    lines += ["", "GRU gate forms / the full GRU of the same convention, timed in turn (goals at T=100 B=32 "
              "I=H=256: hidden_bias, hidden <= 0.85; bias <= 0.5)", "",
              "| threads | case | reset | gates | inference | train |", "|---:|---|---|---|---:|---:|"]
    for r in form_ratios:
        lines.append(f"| {r['threads']} | {r['case']} | {'after' if r['reset_after'] else 'before'} | {r['gates']} "
                     f"| {r['inference']:.2f} | {r['train']:.2f} |")
    lines += ["", "GRU with clip=3 (ONNX's) / the same GRU without, timed in turn (goal <= 1.05)", "",
              "| threads | case | reset | inference | train |", "|---:|---|---|---:|---:|"]
    for r in clip_ratios:
        lines.append(f"| {r['threads']} | {r['case']} | {'after' if r['reset_after'] else 'before'} "
                     f"| {r['inference']:.2f} | {r['train']:.2f} |")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "layers.json").write_text(json.dumps(dict(rows=rows, variable_length_ratios=ratios,
                                                       libru_over_ligru=libru_ratios,
                                                       gate_forms_over_full=form_ratios,
                                                       clip_over_unclipped=clip_ratios), indent=1))
    (out / "layers.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
