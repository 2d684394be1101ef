"""Variable-length batches whose last steps leave few rows active: inference reads x's rows and
writes y's rows in place (no packed copies), threads take rows while enough remain and the last
steps run by hidden units or on one thread. Each row must equal its sequence run alone, the
zeros past each length must be written, 1 and 2 threads must agree bit for bit, and inference
must equal the training forward (which packs copies) exactly."""

import numpy as np
import pytest

import fastgru

T, B, I, H = 80, 24, 16, 128


def tail_lengths(seed):
    """Three long rows (1, 2 and 3 rows active in the last steps), the rest at most T/2, shuffled."""
    rng = np.random.default_rng(seed)
    lengths = np.r_[[T, T - 2, T - 5], rng.integers(1, T // 2 + 1, size=B - 3)]
    return rng.permutation(lengths)


def run(layer, x, lengths, threads):
    fastgru.set_num_threads(threads)
    try:
        return layer(x, lengths=lengths)
    finally:
        fastgru.set_num_threads(0)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True)])
def test_tail_rows_match_each_sequence_alone(reset_after, batch_first, num_layers, bidirectional):
    layer = fastgru.GRU(I, H, num_layers=num_layers, bidirectional=bidirectional,
                        batch_first=batch_first, reset_after=reset_after, seed=4)
    lengths = tail_lengths(num_layers + 2 * bidirectional)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    xs = np.ascontiguousarray(x.transpose(1, 0, 2)) if batch_first else x
    y1, h1 = run(layer, xs, lengths, 1)
    y2, h2 = run(layer, xs, lengths, 2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(h1, h2)
    if batch_first:
        y1 = y1.transpose(1, 0, 2)
    # The training forward packs x and y as copies: the same states, bit for bit.
    y_train, h_train = layer.forward(xs, lengths=lengths, train=True)
    np.testing.assert_array_equal(y_train.transpose(1, 0, 2) if batch_first else y_train, y1)
    np.testing.assert_array_equal(h_train, h1)
    for b, n in enumerate(lengths):
        alone = x[:n, b:b + 1]
        y_alone, h_alone = layer(alone.transpose(1, 0, 2) if batch_first else alone)
        if batch_first:
            y_alone = y_alone.transpose(1, 0, 2)
        np.testing.assert_allclose(y1[:n, b], y_alone[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h1[:, b], h_alone[:, 0], rtol=1e-5, atol=1e-6)
        assert not y1[n:, b].any(), f"row {b}: nonzero output past its length {n}"


@pytest.mark.parametrize("reset_after", [True, False])
def test_tail_rows_with_initial_state_and_zoneout(reset_after):
    """h0 and inference zoneout (which mixes the previous state into each new one) on the same
    tail: 1 and 2 threads agree, and each row matches its sequence alone."""
    layer = fastgru.GRU(I, H, reset_after=reset_after, zoneout=0.25, seed=5)
    lengths = tail_lengths(7)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((1, B, H)).astype(np.float32)
    outputs = []
    for threads in (1, 2):
        fastgru.set_num_threads(threads)
        try:
            outputs.append(layer(x, h0, lengths=lengths))
        finally:
            fastgru.set_num_threads(0)
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    y, h_n = outputs[0]
    for b, n in enumerate(lengths):
        y_alone, h_alone = layer(x[:n, b:b + 1], h0[:, b:b + 1])
        np.testing.assert_allclose(y[:n, b], y_alone[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h_n[:, b], h_alone[:, 0], rtol=1e-5, atol=1e-6)
        assert not y[n:, b].any()
