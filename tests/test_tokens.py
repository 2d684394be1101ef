"""Token inputs (Model's embedding), Model.step and Model.generate: gradients by central
differences, lazy row updates against PyTorch's SparseAdam, the model file, streaming equal to
predict, seeded generation, and bad inputs."""

import json

import numpy as np
import pytest

import fastgru
from fastgru.model_file import read_model_file
from fastgru.training import SGD, Adam, AdamW, Model

from .helpers import central_difference, normalised_error

VOCAB = 6


def token_model(head="sequence", padding_id=None, outputs=VOCAB, layers=1, batch_first=True, optimizer="adam",
                dtype="float64", seed=0):
    layer = fastgru.GRU(3, 4, num_layers=layers, batch_first=batch_first, dtype=dtype, seed=seed)
    return Model(layer, outputs=outputs, head=head, loss="cross_entropy", optimizer=optimizer, seed=seed,
                 vocab_size=VOCAB, padding_id=padding_id)


@pytest.mark.parametrize("head,padding_id,ragged,batch_first",
                         [("sequence", None, False, True), ("sequence", 0, True, False), ("last", 5, True, True),
                          ("last", None, False, False)])
def test_embedding_gradient_matches_central_differences_and_touches_only_used_rows(head, padding_id, ragged,
                                                                                   batch_first):
    rng = np.random.default_rng(3)
    model = token_model(head, padding_id, batch_first=batch_first)
    ids = np.array([[1, 2, 1, 0, 5], [2, 2, 0, 5, 3], [1, 0, 5, 1, 2]])  # id 4 is never used
    lengths = np.array([5, 2, 4]) if ragged else None  # the second row's 0, 5, 3 are padding
    rows = 3 * (5 if head == "sequence" else 1)
    target = rng.integers(0, VOCAB, rows)
    weight = None
    if head == "sequence" and ragged:
        weight = (np.arange(5)[None, :] < lengths[:, None]).reshape(-1).astype(np.float64)
    _, grads, _ = model._gradients(ids, lengths, target, weight)
    used = ids if lengths is None else ids[np.arange(5)[None, :] < lengths[:, None]]
    expected_rows = sorted(set(used.ravel().tolist()) - {padding_id})
    assert model._embedding_rows.tolist() == expected_rows
    assert 4 not in expected_rows and (padding_id is None or padding_id not in expected_rows)
    weights = model.get_weights()
    assert set(grads) == set(weights)

    def f():
        model.set_weights(weights)
        return model.loss(model._run(ids, lengths, train=True)[0], target, weight)[0]

    for name, array in weights.items():
        numeric = central_difference(f, array)
        if name == "embedding.weight":
            unused = np.setdiff1d(np.arange(VOCAB), expected_rows)
            if padding_id is None:
                assert np.abs(numeric[unused]).max() < 1e-9  # rows not used: no gradient
            numeric = numeric[expected_rows]
        assert normalised_error(grads[name], numeric) < 1e-6, name


@pytest.mark.parametrize("optimizer", [lambda: SGD(0.1, momentum=0.9), lambda: AdamW(0.05, weight_decay=0.1)])
def test_untouched_rows_and_the_padding_row_do_not_move(optimizer):
    model = token_model("last", padding_id=0, optimizer=optimizer())
    assert not model.embedding_weight[0].any()
    before = model.embedding_weight.copy()
    ids = np.array([[1, 2, 0], [2, 1, 0]])
    model.fit(ids, np.array([0, 1]), epochs=3, batch_size=2, verbose=0)
    after = model.embedding_weight
    assert not after[0].any()  # padding: zero, no gradient, no decay
    np.testing.assert_array_equal(after[3:], before[3:])  # never used: no momentum, no decay
    assert (after[1:3] != before[1:3]).all()


def test_lazy_adam_matches_torch_sparse_adam():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    table = rng.standard_normal((7, 3))
    ours, theirs = table.copy(), torch.nn.Parameter(torch.tensor(table))
    # SparseAdam adds epsilon before the bias correction, Adam after: a negligible epsilon
    # compares the rest exactly.
    adam = Adam(0.01, epsilon=1e-16)
    sparse = torch.optim.SparseAdam([theirs], lr=0.01, eps=1e-16)
    for rows in ([1, 4], [4, 5, 6], [0, 1]):
        rows = np.array(rows)
        grad = rng.standard_normal((len(rows), 3))
        adam.step({"e": ours}, {"e": grad}, rows={"e": rows})
        theirs.grad = torch.sparse_coo_tensor(torch.tensor(rows)[None], torch.tensor(grad), (7, 3),
                                              check_invariants=True)
        sparse.step()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_text_classification_with_ragged_token_ids():
    rng = np.random.default_rng(0)
    sequences = [rng.integers(1, VOCAB, rng.integers(3, 12)) for _ in range(160)]
    labels = np.array([int(3 in s) for s in sequences])  # does the text hold token 3?
    model = Model(fastgru.GRU(8, 16, batch_first=True, seed=0), outputs=2, loss="cross_entropy",
                  optimizer=Adam(0.02), seed=0, vocab_size=VOCAB, padding_id=0)
    model.fit(sequences[:128], labels[:128], epochs=25, batch_size=16, verbose=0)
    assert model.evaluate(sequences[128:], labels[128:])["accuracy"] >= 0.9
    # a dense (N, T) array with lengths is the same data
    dense = np.zeros((32, 11), np.int32)
    for row, s in zip(dense, sequences[128:]):
        row[: len(s)] = s
    lengths = np.array([len(s) for s in sequences[128:]])
    np.testing.assert_allclose(model.predict(dense, lengths=lengths), model.predict(sequences[128:]), atol=1e-6)
    np.testing.assert_array_equal(model.predict(sequences[130]), model.predict(sequences[130:131])[0])


def test_token_model_file_round_trip(tmp_path):
    model = token_model("sequence", padding_id=2, dtype="float32")
    model.fit(np.array([[1, 2, 3, 4]]), np.array([[2, 3, 4, 5]]), epochs=2, verbose=0)
    path = tmp_path / "lm.safetensors"
    model.save(path)
    tensors, metadata = read_model_file(path)
    np.testing.assert_array_equal(tensors["embedding.weight"], model.embedding_weight)
    assert json.loads(metadata["config"])["embedding"] == {"vocab_size": VOCAB, "padding_id": 2}
    loaded = fastgru.load(path)
    assert (loaded.vocab_size, loaded.padding_id) == (VOCAB, 2)
    ids = np.array([[5, 1, 2, 0, 3]])
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))


def test_a_model_file_with_a_bad_embedding_field_is_refused(tmp_path):
    from fastgru.model_file import write_model_file

    model = token_model("sequence")
    path = tmp_path / "lm.safetensors"
    model.save(path)
    tensors, metadata = read_model_file(path)
    for field, message in ((({"vocab_size": VOCAB, "padding_id": VOCAB}), "padding_id"),
                           ({"vocab_size": 0, "padding_id": None}, "vocab_size"),
                           ({"vocab_size": VOCAB}, "embedding")):
        config = {**json.loads(metadata["config"]), "embedding": field}
        write_model_file(path, tensors, {**metadata, "config": json.dumps(config)})
        with pytest.raises(ValueError, match=message):
            fastgru.load(path)
    config = {**json.loads(metadata["config"]), "embedding": {"vocab_size": VOCAB + 1, "padding_id": None}}
    write_model_file(path, tensors, {**metadata, "config": json.dumps(config)})
    with pytest.raises(ValueError, match="embedding.weight"):
        fastgru.load(path)


def test_bad_token_inputs_name_the_argument():
    model = token_model("last", outputs=2)
    with pytest.raises(ValueError, match=r"X: expected token ids in 0\.\.5 .* got values in 1\.\.6"):
        model.predict(np.array([[1, 6]]))
    with pytest.raises(ValueError, match=r"X\[1\]: expected token ids in 0\.\.5 .* got values in -1\.\.2"):
        model.predict([np.array([1, 2]), np.array([-1, 2])])
    with pytest.raises(TypeError, match="X: expected integer token ids .* float64"):
        model.fit(np.array([[1.0, 2.0]]), np.array([0]), verbose=0)
    with pytest.raises(ValueError, match="X: a 1-D array .* is one sequence"):
        model.fit(np.array([1, 2]), np.array([0]), verbose=0)
    with pytest.raises(ValueError, match=r"X\[0\]: expected a 1-D array"):
        model.fit([np.array([[1, 2]])], np.array([0]), verbose=0)
    with pytest.raises(ValueError, match="x_t: expected token ids of shape"):
        model.step(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="x_t: expected token ids in"):
        model.step(np.array([1, 9]))
    layer = fastgru.GRU(3, 4)
    with pytest.raises(ValueError, match=r"padding_id: expected an id in 0\.\.5 .* got 6"):
        Model(layer, vocab_size=VOCAB, padding_id=6)
    with pytest.raises(ValueError, match="padding_id: needs token inputs"):
        Model(layer, padding_id=0)
    with pytest.raises(TypeError, match="vocab_size: expected an int"):
        Model(layer, vocab_size=6.0)
    with pytest.raises(ValueError, match="vocab_size: expected an int >= 1"):
        Model(layer, vocab_size=0)


@pytest.mark.parametrize("tokens", [False, True])
def test_step_equals_predict_with_many_streams_and_resets(tokens):
    rng = np.random.default_rng(2)
    layer = fastgru.GRU(3, 5, num_layers=2, batch_first=False, seed=1)
    if tokens:
        model = Model(layer, outputs=4, head="sequence", seed=1, vocab_size=VOCAB)
        X = rng.integers(0, VOCAB, (3, 7))
    else:
        model = Model(layer, outputs=4, head="sequence", seed=1)
        X = rng.standard_normal((3, 7, 3))
    expected = model.predict(X)
    state, outputs = None, []
    for t in range(7):
        output, state = model.step(X[:, t], state)
        outputs.append(output)
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, rtol=1e-5, atol=1e-6)
    # The second stream restarts at step 4 with the first three steps of its sequence.
    state = None
    for t in range(7):
        x_t = X[:, t].copy()
        if t >= 4:
            x_t[1] = X[1, t - 4]
        output, state = model.step(x_t, state, reset=np.array([False, t == 4, False]))
    restarted = model.predict(X[1:2, :3])[0, -1]
    np.testing.assert_allclose(output[1], restarted, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output[[0, 2]], expected[[0, 2], -1], rtol=1e-5, atol=1e-6)
    one, _ = model.step(X[0, 0])
    np.testing.assert_allclose(one, expected[0, 0], rtol=1e-5, atol=1e-6)


def test_generation_is_seeded_and_greedy_at_temperature_zero():
    model = token_model("sequence")
    prompt = np.array([1, 2, 3])
    first = model.generate(prompt, 30, seed=7)
    assert first.shape == (30,) and first.dtype == np.int64 and first.min() >= 0 and first.max() < VOCAB
    np.testing.assert_array_equal(model.generate(prompt, 30, seed=7), first)
    assert any((model.generate(prompt, 30, seed=s) != first).any() for s in range(8, 12))
    greedy = model.generate(prompt, 10, temperature=0)
    np.testing.assert_array_equal(model.generate(prompt, 10, top_k=1, seed=3), greedy)
    # greedy: each id is the argmax of predict on everything before it
    sequence = list(prompt)
    for following in greedy:
        assert model.predict(np.array(sequence))[-1].argmax() == following
        sequence.append(following)
    batch = model.generate(np.stack([prompt, prompt[::-1]]), 5, temperature=0.5, top_k=3, seed=1)
    assert batch.shape == (2, 5)


def test_real_valued_generation_feeds_each_prediction_back():
    rng = np.random.default_rng(0)
    model = Model(fastgru.GRU(2, 6, batch_first=True, seed=0), outputs=2, head="sequence", seed=0)
    prompt = rng.standard_normal((4, 2))
    continuation = model.generate(prompt, 3)
    assert continuation.shape == (3, 2)
    sequence = prompt
    for value in continuation:
        np.testing.assert_allclose(model.predict(sequence)[-1], value, rtol=1e-5, atol=1e-6)
        sequence = np.vstack([sequence, value])
    assert model.generate(np.stack([prompt, prompt]), 3).shape == (2, 3, 2)


def test_bad_generation_arguments_name_the_argument():
    model = token_model("sequence")
    with pytest.raises(ValueError, match="steps: expected an int >= 1"):
        model.generate([1, 2], 0)
    with pytest.raises(ValueError, match="temperature: expected a number >= 0"):
        model.generate([1, 2], 3, temperature=-1)
    with pytest.raises(ValueError, match=r"top_k: expected None or an int in 1\.\.6"):
        model.generate([1, 2], 3, top_k=7)
    with pytest.raises(ValueError, match="seed: expected None or an int"):
        model.generate([1, 2], 3, seed=-2)
    with pytest.raises(ValueError, match="prompt: expected token ids in"):
        model.generate([1, 9], 3)
    with pytest.raises(ValueError, match="prompt: expected ids"):
        model.generate(np.zeros((1, 1, 1), np.int64), 3)
    with pytest.raises(ValueError, match="head='sequence'"):
        token_model("last").generate([1], 3)
    with pytest.raises(ValueError, match="outputs=6 .vocab_size."):
        token_model("sequence", outputs=2).generate([1], 3)
    real = Model(fastgru.GRU(2, 3), outputs=2, head="sequence")
    with pytest.raises(ValueError, match="draws nothing"):
        real.generate(np.zeros((2, 2)), 3, temperature=0.5)
    with pytest.raises(ValueError, match=r"prompt: expected \(T0, 2\)"):
        real.generate(np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="outputs == input_size"):
        Model(fastgru.GRU(2, 3), outputs=1, head="sequence").generate(np.zeros((2, 2)), 3)
