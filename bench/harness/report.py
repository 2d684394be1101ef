"""The report: machine facts, the Markdown tables (one per thread setting, the streaming step, the
contention section) and the GFLOP/s plot."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import (CHECK_TOLERANCE, CONVENTIONS, DEFAULT_THREADS, FASTGRU_QUANTIZED, IMPLS, LABELS, MODES,
                     REDUCED_CHECK_TOLERANCE, REDUCED_PRECISION, thread_label)
from .timing import BUSY_THRESHOLD

# Issue 17's claim, read off a --contention run: fastgru at its default thread setting takes at most
# this multiple of its 1-thread time under contention.
CONTENTION_TARGET = 1.15


def matmul_basis(mm, basis):
    """The rate the % column divides by: the best measured (default) or NumPy's at 1024^3."""
    rates = mm.get("rates", [])
    if basis == "numpy1024":
        rates = [r for r in rates if r["lib"] == "numpy" and r["n"] == 1024]
    return max(rates, key=lambda r: r["gflops"]) if rates else None


def machine_info():
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": sys.version.split()[0],
            "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["isa_flags"] = sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "amx")))
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total"] = line.split(":", 1)[1].strip()
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    try:
        info["git_head"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                          text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["git_dirty"] = bool(dirty)
    except OSError:
        pass
    info["numpy"] = np.__version__
    return info


def busy(rec):
    c = rec.get("contention") or {}
    return c.get("foreign_cpu_share", 0.0) > BUSY_THRESHOLD or c.get("steal_share", 0.0) > BUSY_THRESHOLD


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def ran_in(results, impl, threads):
    """The precision OpenVINO's compiled GRU node ran in at this thread setting, or None if not
    recorded (another peer, or no cell ran)."""
    return results["impl_info"].get(impl, {}).get(str(threads), {}).get("gru_runtime_precision")


def peer_label(results, impl, threads):
    """The peer's column label; OpenVINO's bf16 hint says when it ran in another precision."""
    ran = ran_in(results, impl, threads)
    if impl == "openvino-bf16" and ran is not None and ran != "bf16":
        return f"{LABELS[impl]} (ran {ran})"
    return LABELS[impl]


def precision_notes(results, peers, threads):
    """Under a sequence table: what the reduced-precision peers computed in, and their check."""
    notes = []
    for impl in ("openvino", "openvino-bf16"):
        info = results["impl_info"].get(impl, {}).get(str(threads))
        if impl in peers and info:
            notes.append(f"{LABELS[impl]}: asked for {info['requested_precision']}; the compiled model's "
                         f"INFERENCE_PRECISION_HINT reads {info['inference_precision_hint']} and its GRU node "
                         f"(RNNSeq) runs in {info['gru_runtime_precision']} (CPU capabilities: "
                         f"{', '.join(info['cpu_capabilities'])}).")
    if any(p in REDUCED_PRECISION for p in peers):
        notes.append(f"Reduced-precision peers: error against fastgru float32 on the same weights and inputs "
                     f"(max |Δy| / that over max |y|); their check against the float64 reference allows "
                     f"{REDUCED_CHECK_TOLERANCE:g} (float32: {CHECK_TOLERANCE:g}).")
    return [line for note in notes for line in (note, "")]


def build_tables(results):
    """The report as Markdown: one sequence table per thread setting, then the streaming step, then
    (--contention) the contention section."""
    cells = results["cells"]
    by_key = {(c["impl"], c["threads"], c["T"], c["B"], c["I"], c["H"], c["convention"], c["mode"]): c for c in cells}
    peers = [p for p in IMPLS[1:] if any(c["impl"] == p for c in cells)]
    contended = "contention" in results["settings"]
    under = ", under contention" if contended else ""
    besides = " besides the spinners" if contended else ""
    lines = []
    budget_note = busy_note = False
    for threads in results["settings"]["threads"]:
        mm = results["matmul"].get(str(threads), {})
        base = matmul_basis(mm, results["settings"]["matmul_basis"])
        lines.append(f"### {thread_label(threads)}{under}")
        lines.append("")
        if base:
            all_rates = ", ".join(f"{LABELS.get(r['lib'], r['lib']) if r['lib'] != 'numpy' else 'NumPy'} "
                                  f"{r['n']}³ {r['gflops']:.0f}{'†' if busy(r) else ''}"
                                  for r in mm.get("rates", []))
            busy_note = busy_note or any(busy(r) for r in mm.get("rates", []))
            lines.append(f"float32 matrix product, GFLOP/s: {all_rates}. "
                         f"**% mm divides by {base['gflops']:.0f} GFLOP/s** "
                         f"({'NumPy' if base['lib'] == 'numpy' else LABELS[base['lib']]} {base['n']}³)"
                         f"{' (measured without spinners)' if contended else ''}.")
        lines.append("")
        head = ["T", "B", "I", "H", "conv", "mode", "fastgru ms", "GFLOP/s", "% mm"]
        for p in peers:
            head += [f"{peer_label(results, p, threads)} ms", "GFLOP/s", "×"]
            if p in REDUCED_PRECISION:
                head.append("error vs fastgru fp32 (max abs / normalised)")
        head.append("check")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---:" if i < 4 or (i > 5 and i < len(head) - 1) else "---"
                                    for i in range(len(head))) + "|")
        for s in results["settings"]["sequences"]:
            for conv in CONVENTIONS:
                for mode in MODES:
                    key = (threads, s["T"], s["B"], s["I"], s["H"], conv, mode)
                    fg = by_key.get(("fastgru",) + key)
                    row = [str(s[k]) for k in "TBIH"] + ["after" if conv == "reset_after" else "before", mode]
                    bad = []

                    def ms(c):
                        nonlocal budget_note, busy_note
                        if c is None:
                            return "—"
                        mark = ""
                        if busy(c):
                            mark += "†"
                            busy_note = True
                        if c["repeats"] < results["settings"]["policy"]["min_repeats"]:
                            mark += f" (n={c['repeats']})"
                            budget_note = True
                        return fmt_ms(c["median_ms"]) + mark

                    if fg:
                        row += [ms(fg), f"{fg['gflops']:.1f}",
                                f"{fg['pct_matmul']:.0f}%" if fg.get("pct_matmul") is not None else "—"]
                        if not fg["check_ok"]:
                            bad.append("fastgru")
                    else:
                        row += ["—", "—", "—"]
                    any_peer = False
                    for p in peers:
                        c = by_key.get((p,) + key)
                        if c is None:
                            row += ["—"] * (4 if p in REDUCED_PRECISION else 3)
                            continue
                        any_peer = True
                        ratio = f"{c['median_ms'] / fg['median_ms']:.2f}" if fg else "—"
                        row += [ms(c), f"{c['gflops']:.1f}", ratio]
                        if p in REDUCED_PRECISION:
                            error = c.get("error_vs_fastgru")
                            row.append(f"{error['max_abs']:.1e} / {error['normalised']:.1e}" if error else "—")
                        if not c["check_ok"]:
                            bad.append(LABELS[p])
                    if fg is None and not any_peer:
                        continue
                    row.append("ok" if not bad else "FAIL: " + ", ".join(bad))
                    lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines += precision_notes(results, peers, threads)
    if busy_note:
        lines.append(f"†: while this cell's timed runs ran, other processes{besides} (or the hypervisor) used more "
                     f"than {100 * BUSY_THRESHOLD:.0f}% of the machine's CPUs; its time is suspect (share per cell in "
                     f"the JSON, `contention`). Rerun on a quiet machine.")
        lines.append("")
    if budget_note:
        lines.append(f"(n=k): only k timed runs fitted in the per-cell budget of "
                     f"{results['settings']['policy']['cell_budget_seconds']:g} s (see README).")
        lines.append("")
    lines += reduced_precision_section(results)
    st = results["settings"]["stream"]
    for threads in dict.fromkeys(r.get("threads", st["threads"]) for r in results["stream"]):
        stream = [r for r in results["stream"] if r.get("threads", st["threads"]) == threads]
        lines.append(f"### Streaming step from Python (B={st['B']}, I={st['I']}, H={st['H']}, "
                     f"{thread_label(threads)}, {st['steps_per_block']} chained steps per timed block){under}")
        lines.append("")
        lines.append("| implementation | conv | call | µs / step | × (vs fastgru, same conv) | ONNX Runtime × | check |")
        lines.append("|---|---|---|---:|---:|---:|---|")
        fg = {r["convention"]: r for r in stream if r["impl"] == "fastgru"}
        ort = {r["convention"]: r for r in stream if r["impl"] == "onnxruntime"}
        busy_stream = False
        for r in stream:
            base = fg.get(r["convention"])
            ratio = f"{r['median_us'] / base['median_us']:.2f}" if base else "—"
            # ONNX Runtime's time over this one's (> 1: this one is faster).
            peer = ort.get(r["convention"])
            ort_ratio = f"{peer['median_us'] / r['median_us']:.2f}" if peer and r["impl"] != "onnxruntime" else "—"
            tolerance = REDUCED_CHECK_TOLERANCE if r["impl"] in REDUCED_PRECISION else CHECK_TOLERANCE
            ok = "ok" if r["check"]["h_last"] <= tolerance else f"FAIL ({r['check']['h_last']:.1e})"
            mark = "†" if busy(r) else ""
            busy_stream = busy_stream or bool(mark)
            lines.append(f"| {LABELS[r['impl']]} | {'after' if r['convention'] == 'reset_after' else 'before'} | "
                         f"{r['api']} | {r['median_us']:.1f}{mark} | {ratio} | {ort_ratio} | {ok} |")
        lines.append("")
        if busy_stream:
            lines.append(f"†: others{besides} used more than "
                         f"{100 * BUSY_THRESHOLD:.0f}% of the CPUs meanwhile; suspect.")
            lines.append("")
    if contended:
        lines += contention_section(results)
    return "\n".join(lines)


# Issue 16's targets for fastgru's bf16 and int8 layers (inference).
QUANTIZED_TARGETS = {"bf16 / OpenVINO bf16": 1.2, "bf16 / fastgru fp32, two largest shapes": 1.8,
                     "int8 / PyTorch int8": 1.3, "int8 / fastgru fp32, largest shape": 2.5}


def reduced_precision_section(results):
    """fastgru bf16 and int8 against fastgru float32 and the reduced-precision peers, per thread
    setting: speed-ups (other time / this time, > 1: fastgru's quantized layer faster) and each
    one's error against fastgru float32 (normalised: max |Δy| / max |y|), then the targets."""
    cells = {(c["impl"], c["threads"], c["T"], c["B"], c["I"], c["H"], c["convention"]): c
             for c in results["cells"] if c["mode"] == "inference"}
    if not any(impl in FASTGRU_QUANTIZED for impl, *_ in cells):
        return []
    sequences = results["settings"]["sequences"]
    largest = sorted(sequences, key=lambda s: s["T"] * s["B"] * 3 * s["H"] * (s["I"] + s["H"]))
    two_largest = [shape for shape in largest[-2:]]
    lines = ["### Reduced precision: fastgru bf16 and int8 (inference)", "",
             "× = the other's time / this one's (> 1: fastgru's quantized layer is faster); error = max |Δy| / "
             "max |y| against fastgru float32 on the same weights and inputs.", ""]
    head = ["threads", "T", "B", "I", "H", "conv", "fp32 ms", "bf16 ms", "× fp32", "OpenVINO bf16 ms", "× OpenVINO",
            "bf16 error", "OpenVINO error", "int8 ms", "× fp32", "PyTorch int8 ms", "× PyTorch", "int8 error",
            "PyTorch error"]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if i != 5 else "---" for i in range(len(head))) + "|"]
    met = {target: [] for target in QUANTIZED_TARGETS}
    errors = {"bf16": [], "int8": []}

    def get(impl, threads, s, conv):
        return cells.get((impl, threads, s["T"], s["B"], s["I"], s["H"], conv))

    def ms(c):
        return "—" if c is None else fmt_ms(c["median_ms"]) + ("†" if busy(c) else "")

    def ratio(slow, fast, target=None, label=None):
        if slow is None or fast is None:
            return "—"
        value = slow["median_ms"] / fast["median_ms"]
        if target:
            met[target].append((value, label))
        return f"{value:.2f}"

    def error(c):
        e = None if c is None else c.get("error_vs_fastgru")
        return "—" if not e else f"{e['normalised']:.1e}"

    for threads in results["settings"]["threads"]:
        for s in sequences:
            for conv in CONVENTIONS:
                fp32, bf16, int8 = (get(i, threads, s, conv) for i in ("fastgru", "fastgru-bf16", "fastgru-int8"))
                ov, pt = get("openvino-bf16", threads, s, conv), get("torch-int8", threads, s, conv)
                if bf16 is None and int8 is None:
                    continue
                label = f"{thread_label(threads)}, {s['T']}/{s['B']}/{s['I']}/{s['H']} {conv}"
                big = s in two_largest
                row = [str(threads)] + [str(s[k]) for k in "TBIH"] + ["after" if conv == "reset_after" else "before"]
                row += [ms(fp32), ms(bf16),
                        ratio(fp32, bf16, "bf16 / fastgru fp32, two largest shapes" if big else None, label),
                        ms(ov), ratio(ov, bf16, "bf16 / OpenVINO bf16", label), error(bf16), error(ov)]
                row += [ms(int8), ratio(fp32, int8, "int8 / fastgru fp32, largest shape" if s is largest[-1] else None,
                                        label),
                        ms(pt), ratio(pt, int8, "int8 / PyTorch int8", label), error(int8), error(pt)]
                for mode, own, peer in (("bf16", bf16, ov), ("int8", int8, pt)):
                    if own and peer and own.get("error_vs_fastgru") and peer.get("error_vs_fastgru"):
                        errors[mode].append(own["error_vs_fastgru"]["normalised"] / peer["error_vs_fastgru"]["normalised"])
                lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Targets (issue 16):")
    lines.append("")
    for target, goal in QUANTIZED_TARGETS.items():
        values = met[target]
        if not values:
            lines.append(f"- {target} ≥ {goal}: not measured in this run")
            continue
        hits = sum(value >= goal for value, _ in values)
        worst = min(values)
        lines.append(f"- {target} ≥ {goal}: {hits} of {len(values)} cells (smallest {worst[0]:.2f}, {worst[1]})")
    for mode, goal, peer in (("bf16", 1.0, "OpenVINO bf16's"), ("int8", 0.5, "PyTorch int8's")):
        if errors[mode]:
            lines.append(f"- {mode} error ≤ {goal:g} × {peer}: {sum(e <= goal for e in errors[mode])} of "
                         f"{len(errors[mode])} cells (largest ratio {max(errors[mode]):.2f})")
    lines.append("")
    return lines


def contention_section(results):
    """Issue 17's reading of a --contention run: per cell, fastgru at its default thread setting
    against its own 1-thread time, and each peer at its default setting against fastgru's."""
    spinners = results["settings"]["contention"]["spinners"]
    explicit = [t for t in results["settings"]["threads"] if t != DEFAULT_THREADS]
    cells = {(c["impl"], c["threads"], c["T"], c["B"], c["I"], c["H"], c["convention"], c["mode"]): c
             for c in results["cells"]}
    stream = {(r["impl"], r["threads"], r["convention"]): r for r in results["stream"]}

    def peers_in(keys):
        return [p for p in IMPLS[1:] if any(key[:2] == (p, DEFAULT_THREADS) for key in keys)]

    peers = peers_in(list(cells) + list(stream))
    within, ahead = [], {p: [] for p in peers}  # (ratio, which cell, whether a time is †) per comparison

    def timed(record, value, fmt):
        return "—" if record is None else fmt(record[value]) + ("†" if busy(record) else "")

    def row(columns, settings, peers, get, value, fmt, label):
        default = get("fastgru", DEFAULT_THREADS)
        one = get("fastgru", 1)
        columns = list(columns) + [timed(get("fastgru", t), value, fmt) for t in settings + [DEFAULT_THREADS]]
        if default and one:
            ratio = default[value] / one[value]
            within.append((ratio, label, busy(default) or busy(one)))
            columns.append(f"{ratio:.2f} {'✓' if ratio <= CONTENTION_TARGET else '✗'}")
        else:
            columns.append("—")
        for p in peers:
            peer = get(p, DEFAULT_THREADS)
            columns.append(timed(peer, value, fmt))
            if peer and default:
                ahead[p].append((peer[value] / default[value], label, busy(peer) or busy(default)))
                columns.append(f"{ahead[p][-1][0]:.2f}")
            else:
                columns.append("—")
        return "| " + " | ".join(columns) + " |"

    def head(first, settings, peers, unit):
        names = first + [f"fastgru {thread_label(t)} {unit}" for t in settings] + [f"fastgru default {unit}"]
        names.append("default / 1 thread")
        for p in peers:
            names += [f"{LABELS[p]} default {unit}", "×"]
        return ["| " + " | ".join(names) + " |",
                "|" + "|".join("---" if name in ("conv", "mode") else "---:" for name in names) + "|"]

    def default_info(impl):
        return results["impl_info"].get(impl, {}).get(DEFAULT_THREADS, {})

    resolved = [f"fastgru {default_info('fastgru').get('info', {}).get('threads', '?')} "
                f"(set_num_threads(0): the usable CPUs)"]
    if "torch" in peers:
        resolved.append(f"PyTorch {default_info('torch').get('num_threads', '?')} (torch's own default)")
    if "torch-int8" in peers:
        resolved.append(f"PyTorch int8 {default_info('torch-int8').get('num_threads', '?')} (torch's own default)")
    if "onnxruntime" in peers:
        resolved.append("ONNX Runtime intra_op_num_threads = 0 (its own choice)")
    for p in ("openvino", "openvino-bf16"):
        if p in peers:
            resolved.append(f"{LABELS[p]} {default_info(p).get('inference_num_threads', '?')} "
                            f"(no INFERENCE_NUM_THREADS: its own choice)")
    if "onednn" in peers:
        resolved.append(f"oneDNN {default_info('onednn').get('omp_max_threads', '?')} (OpenMP's default)")
    lines = [f"## Under contention: {spinners} busy processes (one per usable CPU) beside every cell", "",
             f"Every cell and streaming time in this report was measured with {spinners} spinners running beside "
             f"it (the matrix-product rates without). "
             f"`default`: no thread variable in the worker's environment and no thread count set, giving "
             f"{'; '.join(resolved)}. default / 1 thread: fastgru's default time over its 1-thread time (target "
             f"≤ {CONTENTION_TARGET}, ✓); ×: the peer's default time over fastgru's default time (above 1: "
             f"fastgru faster).", ""]
    sequence_peers = peers_in(cells)
    lines += head(["T", "B", "I", "H", "conv", "mode"], explicit, sequence_peers, "ms")
    for s in results["settings"]["sequences"]:
        for conv in CONVENTIONS:
            for mode in MODES:
                key = (s["T"], s["B"], s["I"], s["H"], conv, mode)
                measured = [("fastgru", t) for t in explicit + [DEFAULT_THREADS]]
                if not any((impl, t) + key in cells
                           for impl, t in measured + [(p, DEFAULT_THREADS) for p in sequence_peers]):
                    continue
                after = "after" if conv == "reset_after" else "before"
                lines.append(row([str(s[k]) for k in "TBIH"] + [after, mode], explicit, sequence_peers,
                                 lambda impl, t, key=key: cells.get((impl, t) + key), "median_ms", fmt_ms,
                                 f"T={s['T']} B={s['B']} I={s['I']} H={s['H']} {after} {mode}"))
    lines.append("")
    stream_settings = [t for t in results["settings"]["contention"]["stream_threads"] if t != DEFAULT_THREADS]
    if stream:
        lines.append("Streaming step (B = 1, one step at a time), µs per step:")
        lines.append("")
        stream_peers = peers_in(stream)
        lines += head(["conv"], stream_settings, stream_peers, "µs")
        for conv in CONVENTIONS:
            after = "after" if conv == "reset_after" else "before"
            lines.append(row([after], stream_settings, stream_peers,
                             lambda impl, t, conv=conv: stream.get((impl, t, conv)), "median_us",
                             lambda v: f"{v:.1f}", f"streaming {after}"))
        lines.append("")

    def suspect(comparisons):
        count = sum(marked for *_, marked in comparisons)
        if not count:
            return ""
        return f"; {count} of the {len(comparisons)} comparisons {'uses' if count == 1 else 'use'} a † time"

    if within:
        worst = max(within)
        lines.append(f"- fastgru default ≤ {CONTENTION_TARGET}× its 1-thread time in "
                     f"{sum(r <= CONTENTION_TARGET for r, *_ in within)} of {len(within)} cells "
                     f"(worst {worst[0]:.2f}×: {worst[1]}{suspect(within)}).")
    for p in peers:
        if ahead[p]:
            least = min(ahead[p])
            lines.append(f"- fastgru default ahead of {LABELS[p]} default in {sum(r > 1 for r, *_ in ahead[p])} of "
                         f"{len(ahead[p])} cells (smallest ×: {least[0]:.2f}, {least[1]}{suspect(ahead[p])}).")
    shares = [r["contention"]["spinner_cpu_share"] for r in results["cells"] + results["stream"]
              if "spinner_cpu_share" in r.get("contention", {})]
    if shares:
        lines.append(f"- The spinners used {100 * statistics.median(shares):.0f}% of the machine's CPUs during the "
                     f"timed runs (median over cells; {100 * min(shares):.0f}–{100 * max(shares):.0f}%).")
    lines.append("")
    return lines


def make_plot(results, path: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter, NullLocator
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    cells = results["cells"]
    threads_list = results["settings"]["threads"]
    series = sorted({(c["impl"], c["convention"]) for c in cells}, key=lambda k: (IMPLS.index(k[0]), k[1]))
    colors = {"fastgru": "tab:red", "torch": "tab:orange", "onnxruntime": "tab:green", "onednn": "tab:blue",
              "openvino": "tab:purple", "openvino-bf16": "tab:pink", "torch-int8": "tab:brown",
              "fastgru-bf16": "tab:olive", "fastgru-int8": "tab:cyan"}
    markers = {"reset_after": "o", "reset_before": "s"}
    rows = [(t, m) for t in threads_list for m in MODES]
    under = ", under contention" if "contention" in results["settings"] else ""
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 3.6 * len(rows)), squeeze=False)
    for r, (threads, mode) in enumerate(rows):
        base = matmul_basis(results["matmul"].get(str(threads), {}), results["settings"]["matmul_basis"])
        rate = base["gflops"] if base else None
        for col, var in enumerate(("H", "B")):
            ax = axes[r][col]
            for impl, conv in series:
                pts = sorted((c[var], c["gflops"], c) for c in cells if c["impl"] == impl and c["convention"] == conv
                             and c["threads"] == threads and c["mode"] == mode)
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", marker=markers[conv],
                        color=colors[impl], alpha=0.85, markerfacecolor="none" if conv == "reset_before" else None,
                        label=f"{LABELS[impl]} ({'reset after' if conv == 'reset_after' else 'reset before'})")
            if rate:
                ax.axhline(rate, color="gray", linestyle="--", linewidth=1, label="matmul rate (% mm basis)")
            ax.set_xscale("log", base=2)
            xs = sorted({s[var] for s in results["settings"]["sequences"]})
            ax.set_xticks(xs)
            ax.set_xticklabels([str(v) for v in xs])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
            ax.tick_params(axis="y", which="minor", labelsize=7)
            ax.set_xlabel(var + (" (hidden units; I varies with it)" if var == "H" else " (batch)"))
            ax.set_ylabel("GFLOP/s (nominal)")
            ax.set_title(f"{mode}, {thread_label(threads)}{under}")
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8)
    # The legend's rows (about 0.2 inch each) stay above the panels, however many implementations ran.
    legend_inches = 0.2 * -(-len(labels) // 4) + 0.15
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_inches / fig.get_figheight()))
    from fastgru.files import atomic_write  # the workers run this file as a script: no relative imports

    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return None

