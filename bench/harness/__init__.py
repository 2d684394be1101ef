"""The benchmark's harness (bench/run.py): what every peer's worker shares.

    timing.py    warm-up, timed runs, the contention measure (Policy, measure)
    spinners.py  busy processes beside a timing (--contention)
    data.py      the arrays every implementation reads, the float64 reference, fastgru's float32 output
    stream.py    the streaming step's timing (one step at a time from Python)
    workers.py   one process per (implementation, thread setting), and the worker's body
    report.py    machine facts, the Markdown tables, the plot
    common.py    implementations, labels, thread settings, the correctness measure, a cell's record

Nothing here imports fastgru at module level: a peer's worker never loads fastgru's core.
"""
