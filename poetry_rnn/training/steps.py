"""The one train step and the one evaluation step, for poems and lyrics streams alike.

A step is traced once (``tf.function`` with an input signature whose
dimensions are all unknown) and runs under the run's tf.distribute strategy.
What a batch is and how its loss is measured is an ``Objective``:

* ``POEMS`` (``measure_poems``): a bucketed batch ``(inputs, targets, lengths)``; each
  poem's loss is its mean over its real characters (``loss.masked_poem_loss``),
  a conditioned model's prompt not counted (``dataset.prompt_positions``);
* ``STREAMS`` (``measure_stream``): a lyrics batch ``(inputs, targets, states)`` that
  starts from the given recurrent states and returns its final ones
  (truncated BPTT: the incoming states carry no gradient).

The batch loss is the sum of the sequences' losses over the *global* number
of sequences, so with several replicas (a batch of 5 poems on 2 replicas is
split 3 + 2) the summed gradient equals one device's on the whole batch.
``evaluate`` scores a model with ``make_eval_step`` and ``poem_totals`` too.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from poetry_rnn.training import dataset, distribution
from poetry_rnn.model import loss as loss_lib

IDS = tf.TensorSpec([None, None], tf.int32)


def measure_poems(model, batch, training):
    """(per-poem loss, total NLL, real tokens, padded positions, no states) of a poem batch."""
    inputs, targets, lengths = batch
    logits, _ = model(inputs, training=training)
    scored = tf.logical_not(dataset.prompt_positions(targets))
    per_poem, nll, tokens = loss_lib.masked_poem_loss(targets, logits, lengths, scored)
    return per_poem, nll, tokens, tf.cast(tf.size(targets), tf.float32), ()


def measure_stream(model, batch, training):
    """(per-window loss, total NLL, tokens, positions, final states) of a stream batch from its states.

    The incoming states are constants here (``tf.stop_gradient``): the
    gradient of this batch's loss never reaches the batch they came from.
    Across two ``tf.function`` calls it could not anyway; this says so.
    A stream has no padding: every position is a real token.
    """
    inputs, targets, states = batch
    states = tf.nest.map_structure(tf.stop_gradient, states)
    logits, final = model(inputs, states, training=training)
    per_window, nll, tokens = loss_lib.stream_loss(targets, logits)
    return per_window, nll, tokens, tokens, final


def stream_batch_signature(model, strategy):
    """``(inputs, targets, states)``: ids of any shape, and per layer (h,) or (h, c) of ``model``'s width."""
    state = tf.TensorSpec([None, model.config.units], model.compute_dtype)
    return (IDS, IDS, tuple((state,) * model.states_per_layer for _ in model.rnns))


def poem_batch_signature(model, strategy):
    return distribution.poem_batch_signature(strategy)


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a batch is: ``measure(model, batch, training)`` and ``signature(model, strategy)``, its input spec."""

    measure: object
    signature: object


POEMS = Objective(measure_poems, poem_batch_signature)
STREAMS = Objective(measure_stream, stream_batch_signature)


def make_steps(model, optimizer, strategy, objective=POEMS):
    """``(train_step, eval_step)`` for ``objective``'s batches, each traced once for all batch shapes."""
    return make_train_step(model, optimizer, strategy, objective), make_eval_step(model, strategy, objective)


def make_train_step(model, optimizer, strategy, objective=POEMS):
    """``train_step(batch) -> ((loss, nll, tokens, positions, grad_norm), final_states)``.

    Under several replicas the gradients are summed here, before the
    optimizer clips them (see ``distribution.aggregate_gradients_before_clipping``).
    """
    if strategy.num_replicas_in_sync > 1:
        distribution.aggregate_gradients_before_clipping(optimizer)

    def replica_step(batch):
        sequences = distribution.sum_over_replicas(tf.cast(tf.shape(batch[0])[0], tf.float32), strategy)
        with tf.GradientTape() as tape:
            per_sequence, nll, tokens, positions, final = objective.measure(model, batch, training=True)
            loss = tf.math.divide_no_nan(tf.reduce_sum(per_sequence), sequences)  # this replica's share of the mean
            scaled = optimizer.scale_loss(loss)  # fp16 loss scaling; identity otherwise
        variables = model.trainable_variables
        grads = distribution.sum_over_replicas(tape.gradient(scaled, variables), strategy)
        optimizer.apply_gradients(zip(grads, variables))
        return (loss, nll, tokens, positions, tf.linalg.global_norm(grads)), final

    @tf.function(input_signature=[objective.signature(model, strategy)], autograph=False)
    def train_step(batch):
        metrics, final = strategy.run(replica_step, args=(batch,))
        return distribution.reduce_to_host(strategy, metrics, means=(4,)), final

    return train_step


def make_eval_step(model, strategy, objective=POEMS):
    """``eval_step(batch) -> (total NLL, tokens, final_states)``, the model in inference mode."""

    def replica_step(batch):
        _, nll, tokens, _, final = objective.measure(model, batch, training=False)
        return (nll, tokens), final

    @tf.function(input_signature=[objective.signature(model, strategy)], autograph=False)
    def eval_step(batch):
        totals, final = strategy.run(replica_step, args=(batch,))
        return (*distribution.reduce_to_host(strategy, totals), final)

    return eval_step


def poem_totals(eval_step, strategy, sequences, batch_size):
    """(total NLL, real tokens) of encoded poems, in bucketed batches in file order."""
    totals = np.zeros(2)
    for batch in distribution.distribute(strategy, dataset.poem_dataset(sequences, batch_size).dataset):
        nll, tokens, _ = eval_step(batch)
        totals += (float(nll), float(tokens))
    return totals


def stream_perplexity(eval_step, model, indices, batch_size, num_steps):
    """Perplexity of held-out text read in order, the state carried from window to window."""
    batches = dataset.eval_strips(indices, batch_size, num_steps)
    if not batches:
        return float("nan")
    states = model.initial_states(batches[0][0].shape[0])
    totals = np.zeros(2)
    for inputs, targets in batches:
        nll, tokens, states = eval_step((inputs, targets, states))
        totals += (float(nll), float(tokens))
    return loss_lib.perplexity(*totals)
