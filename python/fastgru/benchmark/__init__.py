"""The benchmark of fastgru against PyTorch, ONNX Runtime and oneDNN (``fastgru bench``).

The runner is :mod:`fastgru.benchmark.runner`; ``shapes.json`` holds its shape sets and
``onednn_gru.cpp`` the oneDNN peer it compiles when oneDNN is installed. See bench/README.md.
"""

from pathlib import Path

from .runner import main

SHAPES_FILE = Path(__file__).resolve().parent / "shapes.json"

__all__ = ["main", "SHAPES_FILE"]
