"""Writes the Model files of the C tests (cpp/tests/data/model_*.safetensors) and, beside each,
what Python's Model predicts for fixed inputs (model_*.expected.txt), which cpp/tests/capi_tests.c
and cpp/tests/model_tests.cpp hold the C and C++ loaders to; and the bf16 and int8 files: two
quantized Models (float32, QUANTIZED_NAMES) with their expected files, and gru2_f32.safetensors
quantized (gru2_int8, gru2_bf16), which the C tests run and stream.

Run from the repository root: ``PYTHONPATH=python python tests/model_deploy_data.py``.
tests/test_model_deploy.py checks that the committed files still agree with Python.

An expected file is whitespace-separated text:
    ids N T F K head classifier      (ids: 1 for token ids; head: 0 last, 1 sequence)
    lengths (N)
    inputs  (N, T, F) or ids (N, T), batch first
    values  (N, K) or (N, T, K): Model.predict
    probabilities, the same shape: Model.predict_proba (classifiers only)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "cpp" / "tests" / "data"
STEPS, ROWS = 6, 3
LENGTHS = np.array([6, 3, 5])
NAMES = ("model_regression", "model_regression_tokens", "model_classifier", "model_classifier_tokens")
QUANTIZED_NAMES = ("model_regression_int8", "model_classifier_tokens_bf16")
QUANTIZED_LAYERS = {"gru2_int8": "int8", "gru2_bf16": "bf16"}  # gru2_f32.safetensors, quantized


def models():
    """name -> (Model, inputs (N, T, F) or ids (N, T)): a regression and a classification Model,
    each with and without an embedding, with heads last and sequence, briefly trained."""
    import fastgru

    rng = np.random.default_rng(18)
    built = {}

    regression = fastgru.Model(fastgru.GRU(3, 5, num_layers=2, batch_first=True, dtype="float64", seed=1),
                               outputs=2, seed=1)
    x = rng.standard_normal((ROWS, STEPS, 3))
    y = np.stack([x[:, :, 0].sum(axis=1), x[:, :, 1].mean(axis=1)], axis=1) * [40.0, 3.0] + [1000.0, -7.0]
    regression.set_output_scaling([40.0, 3.0], [1000.0, -7.0])  # targets in their own units
    regression.fit(x, y, epochs=3, batch_size=2, lengths=LENGTHS, verbose=0)
    built["model_regression"] = (regression, x)

    tokens = fastgru.Model(fastgru.MGU(4, 5, dtype="float64", seed=2), outputs=1, head="sequence", seed=2,
                           vocab_size=9, padding_id=0)
    ids = rng.integers(1, 9, (ROWS, STEPS))
    tokens.set_output_scaling(0.5, 2.0)
    tokens.fit(ids, np.cumsum(ids, axis=1)[:, :, None] / 10.0, epochs=3, batch_size=2, verbose=0)
    built["model_regression_tokens"] = (tokens, ids)

    classifier = fastgru.Model(fastgru.LiGRU(3, 4, dtype="float64", seed=3), outputs=3, head="sequence",
                               loss="cross_entropy", seed=3)
    x = rng.standard_normal((ROWS, STEPS, 3))
    classifier.fit(x, (x[:, :, 0] > 0).astype(int) + (x[:, :, 1] > 1), epochs=3, batch_size=2, verbose=0)
    built["model_classifier"] = (classifier, x)

    text = fastgru.Model(fastgru.GRU(4, 5, bidirectional=True, dtype="float64", seed=4), outputs=4,
                         loss="cross_entropy", seed=4, vocab_size=11, padding_id=None)
    ids = rng.integers(0, 11, (ROWS, STEPS))
    text.fit(ids, ids[:, 0] % 4, epochs=3, batch_size=2, lengths=LENGTHS, verbose=0)
    built["model_classifier_tokens"] = (text, ids)
    return built


def quantized_models():
    """name -> (Model, inputs): float32 Models, briefly trained, then quantized: an int8
    regression (output scaling, head last) and a bf16 token classifier (head sequence)."""
    import fastgru

    rng = np.random.default_rng(19)
    built = {}
    regression = fastgru.Model(fastgru.GRU(3, 5, num_layers=2, batch_first=True, seed=5), outputs=2, seed=5)
    x = rng.standard_normal((ROWS, STEPS, 3))
    y = np.stack([x[:, :, 0].sum(axis=1), x[:, :, 1].mean(axis=1)], axis=1) * [40.0, 3.0] + [1000.0, -7.0]
    regression.set_output_scaling([40.0, 3.0], [1000.0, -7.0])
    regression.fit(x, y, epochs=3, batch_size=2, lengths=LENGTHS, verbose=0)
    built["model_regression_int8"] = (regression.quantize("int8"), x)

    classifier = fastgru.Model(fastgru.GRU(4, 5, seed=6), outputs=3, head="sequence", loss="cross_entropy", seed=6,
                               vocab_size=9, padding_id=0)
    ids = rng.integers(1, 9, (ROWS, STEPS))
    classifier.fit(ids, ids % 3, epochs=3, batch_size=2, verbose=0)
    built["model_classifier_tokens_bf16"] = (classifier.quantize("bf16"), ids)
    return built


def expected_text(model, inputs) -> str:
    """The expected file of `model` on `inputs` (see the module's docstring)."""
    ids = model.vocab_size is not None
    features = 1 if ids else inputs.shape[2]
    def reals(array):
        return " ".join(repr(float(v)) for v in np.asarray(array).ravel())  # repr: every digit

    lines = [f"{int(ids)} {ROWS} {STEPS} {features} {model.outputs} {int(model.head == 'sequence')} "
             f"{int(model.loss.classification)}",
             " ".join(str(n) for n in LENGTHS), " ".join(str(int(v)) for v in inputs.ravel()) if ids else reals(inputs),
             reals(model.predict(inputs, lengths=LENGTHS))]
    if model.loss.classification:
        lines.append(reals(model.predict_proba(inputs, lengths=LENGTHS)))
    return "\n".join(lines) + "\n"


def read_expected(path):
    """(inputs, lengths, values, probabilities or None) of an expected file."""
    tokens = Path(path).read_text().split()
    ids, rows, steps, features, outputs, sequence, classifier = (int(t) for t in tokens[:7])
    at = 7
    lengths = np.array([int(t) for t in tokens[at:at + rows]])
    at += rows
    count = rows * steps * (1 if ids else features)
    inputs = np.array([int(t) for t in tokens[at:at + count]]).reshape(rows, steps) if ids else \
        np.array([float(t) for t in tokens[at:at + count]]).reshape(rows, steps, features)
    at += count
    shape = (rows, steps, outputs) if sequence else (rows, outputs)
    size = int(np.prod(shape))
    values = np.array([float(t) for t in tokens[at:at + size]]).reshape(shape)
    probabilities = np.array([float(t) for t in tokens[at + size:at + 2 * size]]).reshape(shape) if classifier else None
    return inputs, lengths, values, probabilities


def main():
    import fastgru

    built = {**models(), **quantized_models()}
    assert tuple(built) == NAMES + QUANTIZED_NAMES
    for name, mode in QUANTIZED_LAYERS.items():
        fastgru.load(DATA / "gru2_f32.safetensors").quantize(mode).save(DATA / f"{name}.safetensors")
        print("wrote", DATA / f"{name}.safetensors")
    for name, (model, inputs) in built.items():
        model.save(DATA / f"{name}.safetensors")
        (DATA / f"{name}.expected.txt").write_text(expected_text(model, inputs))
        print("wrote", DATA / f"{name}.safetensors")


if __name__ == "__main__":
    main()
