"""The benchmark of fastgru against PyTorch, ONNX Runtime and oneDNN (``fastgru bench``).

The runner is :mod:`fastgru.benchmark.runner`; ``shapes.json`` holds its shape sets and
``onednn_gru.cpp`` the oneDNN peer it compiles when oneDNN is installed; :func:`busy_cpus`
(``spinners.py``) runs busy processes beside a timing (``--contention``). See bench/README.md.
"""

from pathlib import Path

from .runner import main
from .spinners import busy_cpus

SHAPES_FILE = Path(__file__).resolve().parent / "shapes.json"

__all__ = ["main", "busy_cpus", "SHAPES_FILE"]
