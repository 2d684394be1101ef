"""The core's table of cells (_core.cell_descriptions) against what the layers have."""
import numpy as np
import pytest

import fastgru
from fastgru import _core

DESCRIPTIONS = _core.cell_descriptions()
INPUT, HIDDEN = 3, 4


def test_every_layer_class_is_described():
    assert set(DESCRIPTIONS) == {"GRU", "MGU", "LiGRU", "LiBRU"}
    for class_name, entry in DESCRIPTIONS.items():
        assert entry["class_name"] == class_name
        assert isinstance(getattr(fastgru, class_name), type)
        assert entry["gates"] == len(entry["gate_blocks"]) >= 2
        assert entry["parameters"][:2] == ("weight_ih", "weight_hh")
        assert all(isinstance(name, str) for key in ("gate_blocks", "parameters", "buffers", "activations", "options")
                   for name in entry[key])


def test_names_match_the_core():
    cells = {entry["cell"] for entry in DESCRIPTIONS.values()}
    assert cells == {"gru", "mgu", "ligru", "libru"}
    with pytest.raises(ValueError, match="cell: expected 'gru', 'mgu', 'ligru' or 'libru', got 'lstm'"):
        _core.GruF64(INPUT, HIDDEN, 1, False, True, True, [], cell="lstm")
    # A setting the cell cannot honour is refused, not dropped.
    with pytest.raises(ValueError, match="activation: cell 'gru' has no choice of activation, got 'tanh'"):
        _core.GruF64(INPUT, HIDDEN, 1, False, True, True, [], cell="gru", activation="tanh")


@pytest.mark.parametrize("class_name", sorted(DESCRIPTIONS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_parameters_and_buffers_are_the_layers(class_name, bidirectional):
    entry = DESCRIPTIONS[class_name]
    layer = getattr(fastgru, class_name)(INPUT, HIDDEN, num_layers=2, bidirectional=bidirectional,
                                         dtype="float64")
    directions = ("", "_reverse") if bidirectional else ("",)
    suffixes = [f"_l{k}{d}" for k in range(2) for d in directions]
    names = entry["parameters"] + entry["buffers"]
    state = layer.state_dict()
    assert set(state) == {name + s for name in names for s in suffixes}
    assert set(layer.grads) == {name + s for name in entry["parameters"] for s in suffixes}
    G = entry["gates"] * HIDDEN
    D = len(directions)
    for s in suffixes:
        assert state["weight_ih" + s].shape == (G, INPUT if s.startswith("_l0") else D * HIDDEN)
        assert state["weight_hh" + s].shape == (G, HIDDEN)
        for name in names[2:]:
            assert state[name + s].shape == (G,)


@pytest.mark.parametrize("class_name", sorted(DESCRIPTIONS))
def test_options_are_the_layers(class_name):
    entry = DESCRIPTIONS[class_name]
    cls = getattr(fastgru, class_name)
    if entry["has_bias_option"]:
        without = cls(INPUT, HIDDEN, bias=False).state_dict()
        assert not any(name.startswith("bias_") for name in without)
    else:
        assert not any(name.startswith("bias_") for name in entry["parameters"])
        with pytest.raises(TypeError):
            cls(INPUT, HIDDEN, bias=True)
    for activation in entry["activations"]:
        assert cls(INPUT, HIDDEN, activation=activation).activation == activation
    # The cell's own settings are the model file's configuration beyond the common ones.
    common = set(fastgru.MGU(INPUT, HIDDEN).config()) - {"bias"}
    assert set(cls(INPUT, HIDDEN).config()) - common - {"bias"} == set(entry["options"])
    assert entry["normalises_inputs"] == ("bn_weight" in entry["parameters"])
    if entry["has_reset_conventions"]:
        x = np.random.default_rng(0).standard_normal((5, 2, INPUT))
        before = cls(INPUT, HIDDEN, reset_after=False, dtype="float64", seed=1)
        after = cls(INPUT, HIDDEN, reset_after=True, dtype="float64", seed=1)
        assert not np.allclose(before(x)[0], after(x)[0])
    else:
        with pytest.raises(TypeError):
            cls(INPUT, HIDDEN, reset_after=False)
