"""Fitting the head: sigmoid cross-entropy per synset and cell, on the pseudo-masks'
confident cells only; early stopping on a held-out part of the pseudo-labels."""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from transforms.model.head import DEFAULT_FACTOR, build_head
from transforms.train.examples import HeadExample


def masked_sigmoid_cross_entropy(targets, logits):
    """Mean binary cross-entropy over the cells whose target is 0 or 1 (-1: left out)."""
    known = tf.cast(targets >= 0, logits.dtype)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.maximum(targets, 0.0), logits=logits)
    return tf.reduce_sum(losses * known) / tf.maximum(tf.reduce_sum(known), 1.0)


def _dataset(examples: Sequence[HeadExample], shuffle: bool, seed: int) -> tf.data.Dataset:
    """One example per batch (images differ in size), repeated; a new order each pass."""
    channels, synsets = examples[0].features.shape[-1], examples[0].targets.shape[-1]
    rng = np.random.default_rng(seed)

    def generate():
        for i in rng.permutation(len(examples)) if shuffle else range(len(examples)):
            yield examples[i].features[None].astype(np.float32), examples[i].targets[None]

    return tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((1, None, None, channels), tf.float32),
        tf.TensorSpec((1, None, None, synsets), tf.float32))).repeat()


def train_head(train: Sequence[HeadExample], held_out: Sequence[HeadExample],
               factor: int = DEFAULT_FACTOR, epochs: int = 20, learning_rate: float = 1e-3,
               patience: int = 3, seed: int = 0,
               callbacks: Sequence[keras.callbacks.Callback] = (),
               ) -> tuple[keras.Model, dict[str, list[float]]]:
    """A head fitted on ``train``, stopped when the loss on ``held_out`` has not improved
    for ``patience`` epochs (the best epoch's weights kept). Returns it and the history."""
    if not train or not held_out:
        raise ValueError("training needs examples to fit and held-out examples to stop on")
    keras.utils.set_random_seed(seed)
    head = build_head(train[0].features.shape[-1], train[0].targets.shape[-1], factor)
    head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=masked_sigmoid_cross_entropy)
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = head.fit(_dataset(train, True, seed), steps_per_epoch=len(train), shuffle=False,
                       validation_data=_dataset(held_out, False, seed),
                       validation_steps=len(held_out), epochs=epochs,
                       callbacks=[stop, *callbacks], verbose=0)
    return head, history.history


def evaluate_loss(head: keras.Model, examples: Sequence[HeadExample]) -> float:
    """The masked loss over ``examples``, each weighted equally."""
    return float(np.mean([masked_sigmoid_cross_entropy(
        tf.constant(e.targets[None]), head(e.features[None].astype(np.float32), training=False)).numpy()
        for e in examples]))

