"""``fastgru.load``: reads a model file back into the layer or :class:`fastgru.Model` that wrote it.

Writing is each object's ``save``; the file format and its checks are :mod:`fastgru.model_file`.
This module is the one that knows every class a file can name, so it imports them all, and
nothing imports it but ``fastgru`` (lazily, on first use of ``fastgru.load``).
"""

from __future__ import annotations

from .layers import LAYER_CLASSES
from .model_file import (build_layer, check_identity_statistics, check_tensors, dequantized, layer_plan, read_model_file,
                         refused_as, refusal)
from .training.model import Model

__all__ = ["load"]


def load(path):
    """Reads a layer written by ``layer.save(path)`` (or a :class:`fastgru.Model` written by
    ``model.save(path)``): the same class, configuration and weights; a bf16 or int8 layer's
    (``layer.quantize(mode).save(path)``) is one again, with the file's quantized weights.

    Raises :class:`fastgru.model_file.ModelFileError` (a ValueError) for any file that is not a
    well-formed fastgru model file, before building anything (README.md, "The model file");
    OSError where the file cannot be opened.
    """
    tensors, metadata = read_model_file(path)
    refuse = refusal(path)
    class_name = metadata["class"]
    if class_name == "Model":
        return Model._from_file(path, tensors, metadata)
    if class_name not in LAYER_CLASSES:
        raise refuse(f"expected a layer class in {tuple(LAYER_CLASSES)} or 'Model', got {class_name!r:.50}")
    layer_class = LAYER_CLASSES[class_name]
    config, expected = layer_plan(layer_class, metadata["config"], "config", refuse, len(tensors))
    check_tensors(tensors, expected, refuse)
    check_identity_statistics(tensors, config, refuse)
    weights = dequantized(tensors, refuse)
    with refused_as(refuse):
        layer = build_layer(layer_class, config)
        layer.load_state_dict(weights)
        if config["precision"] != "full":
            layer = layer.quantize(config["precision"])
    return layer
