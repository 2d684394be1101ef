"""``fastgru demo text``: a character-level language model of the CPython documentation.

The text is what every Python installation carries for ``help()``: ``pydoc_data.topics.topics``,
its topics joined in sorted key order; the last 10% is held out. A GRU over an embedding of the
characters learns to predict each next character from windows of the training text (truncated
backpropagation through time), and is scored in bits per held-out character, read as one
stream after the end of the training text. The baselines are general-purpose compressors given
the training text first: the bits that the held-out text adds to the compressed training text.
"""

from __future__ import annotations

import bz2
import lzma
import math
import sys
import time
import zlib
from typing import Optional

import numpy as np

from .._arguments import positive_int, real_number
from ..layers import GRU
from ..training import AdamW, Model

HELD_OUT_FRACTION = 0.1
# Training characters the held-out stream starts after (its state is warmed on them).
CONTEXT = 200


def load_text() -> str:
    """The CPython documentation topics, joined in sorted key order."""
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


def split(text: str, held_out_fraction: float = HELD_OUT_FRACTION):
    """(training text, held-out text): the last ``held_out_fraction`` held out."""
    cut = int(len(text) * (1 - held_out_fraction))
    return text[:cut], text[cut:]


def compressor_bits(train: str, held_out: str) -> dict:
    """Bits per held-out character that zlib, bz2 and lzma (at their strongest settings) add
    to the compressed training text: len(C(train + held)) - len(C(train)), in bits, per char."""
    compressors = {
        "zlib": lambda data: zlib.compress(data, 9),
        "bz2": lambda data: bz2.compress(data, 9),
        "lzma": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
    }
    before, together = train.encode("utf-8"), (train + held_out).encode("utf-8")
    return {name: 8 * (len(compress(together)) - len(compress(before))) / len(held_out)
            for name, compress in compressors.items()}


class Vocabulary:
    """The characters of a text, each with an id (sorted by code point)."""

    def __init__(self, text: str):
        self.characters = sorted(set(text))
        self._ids = {character: i for i, character in enumerate(self.characters)}

    def __len__(self):
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        """(len(text),) int64 ids."""
        return np.fromiter((self._ids[character] for character in text), np.int64, len(text))

    def decode(self, ids) -> str:
        return "".join(self.characters[i] for i in ids)


def windows(ids: np.ndarray, length: int, offset: int):
    """Consecutive windows of ``length`` ids starting at ``offset`` and the ids one step later:
    (X (N, length), y (N, length)) int64."""
    count = (len(ids) - 1 - offset) // length
    end = offset + count * length
    return ids[offset:end].reshape(count, length), ids[offset + 1 : end + 1].reshape(count, length)


def bits_per_character(model: Model, context: np.ndarray, held_out: np.ndarray) -> float:
    """Mean -log2 p(next character) over ``held_out``, read as one stream after ``context``
    (whose last id predicts the held-out text's first)."""
    stream = np.concatenate([context, held_out[:-1]])
    logits = model.predict(stream).astype(np.float64)[len(context) - 1 :]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(held_out)), held_out].mean() / math.log(2))


def train_language_model(train_ids, vocab_size, hidden=256, embedding=48, window=100, batch_size=16,
                         epochs: Optional[int] = None, seconds: Optional[float] = None, learning_rate=3e-3,
                         seed=0, out=sys.stdout):
    """A GRU language model trained on ``train_ids`` for ``epochs`` passes, or as many as fit
    in ``seconds`` (counted from the first epoch's time); each pass cuts the text into windows
    at a new offset. AdamW, the rate on a cosine from ``learning_rate`` to a tenth, gradients
    clipped at norm 1. Returns (model, epochs run, seconds)."""
    if (epochs is None) == (seconds is None):
        raise ValueError(f"epochs, seconds: expected one budget, got epochs={epochs!r}, seconds={seconds!r}")
    if epochs is not None:
        positive_int(epochs, "epochs")
    else:
        real_number(seconds, "seconds", "a number > 0", lambda value: value > 0)
    model = Model(GRU(embedding, hidden, batch_first=True, seed=seed), outputs=vocab_size, head="sequence",
                  loss="cross_entropy", optimizer=AdamW(learning_rate, weight_decay=0.01), clip_grad_norm=1.0,
                  seed=seed, vocab_size=vocab_size)
    offsets = np.random.default_rng(seed).integers(0, window, 1_000_000)
    started = time.perf_counter()
    planned, epoch = epochs, 0
    while planned is None or epoch < planned:
        progress = 0.0 if planned is None else epoch / planned
        model.optimizer.learning_rate = learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        X, y = windows(train_ids, window, int(offsets[epoch]))
        history = model.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)
        epoch += 1
        elapsed = time.perf_counter() - started
        if planned is None:  # the first epoch's time sets how many fit in the budget
            planned = max(1, int(seconds // elapsed))
        print(f"  epoch {epoch}/{planned}: training loss {history.history['loss'][-1] / math.log(2):.3f} "
              f"bits/char, {elapsed:.0f} s", file=out, flush=True)
    return model, epoch, time.perf_counter() - started


def run(hidden=256, window=100, epochs=None, seconds=180.0, seed=0, sample_length=400, out=sys.stdout) -> dict:
    """Trains the model, prints its held-out bits per character beside the compressors' and a
    generated sample; returns the figures."""
    text = load_text()
    train, held_out = split(text)
    vocabulary = Vocabulary(text)
    train_ids, held_ids = vocabulary.encode(train), vocabulary.encode(held_out)
    print(f"CPython documentation topics: {len(text):,} characters ({len(vocabulary)} distinct); training on the "
          f"first {len(train):,}, scoring the last {len(held_out):,}", file=out)
    budget = f"{epochs} epochs" if epochs is not None else f"about {seconds:g} s"
    print(f"Training a GRU language model (hidden {hidden}, windows of {window} characters, AdamW) for {budget}:",
          file=out, flush=True)
    model, epochs_run, training_seconds = train_language_model(
        train_ids, len(vocabulary), hidden=hidden, window=window, epochs=epochs,
        seconds=None if epochs is not None else seconds, seed=seed, out=out)
    scores = {"fastgru GRU": bits_per_character(model, train_ids[-CONTEXT:], held_ids)}
    scores.update(compressor_bits(train, held_out))
    print(f"\n{'held-out text':<16}{'bits/char':>10}", file=out)
    for name, bits in scores.items():
        print(f"{name:<16}{bits:10.3f}", file=out)
    prompt = "The "
    sample = model.generate(vocabulary.encode(prompt), sample_length, temperature=0.7, seed=seed)
    print(f"\nSample (temperature 0.7, after {prompt!r}):\n{prompt}{vocabulary.decode(sample)}", file=out)
    print(f"\nTraining time: {training_seconds:.0f} s for {epochs_run} epochs", file=out)
    return {"bits_per_char": scores, "epochs": epochs_run, "training_seconds": training_seconds}
