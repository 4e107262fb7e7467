"""tf.distribute plumbing for training: the strategy, the chief, distributed batches, summed gradients.

One code path serves one CPU and many GPUs: ``train`` always runs its steps
under a strategy (the default one on a single device). What differs with
several replicas or workers lives here: which strategy object, which worker
writes, how a batch is split, and how the replicas' gradients are summed
before the optimizer clips them.
"""

import functools

import keras
import tensorflow as tf

from poetry_rnn.infra import hardware
from poetry_rnn.infra.errors import PoetryError


def default_precision():
    """``bf16`` where ``hardware.bf16_is_native()``, else ``off`` (float32); fp16 on GPUs only when asked."""
    return "bf16" if hardware.bf16_is_native() else "off"


def make_strategy(name):
    """The tf.distribute strategy called ``name``; one per process and name, reused by later runs.

    Two MirroredStrategy objects in one process reuse the same collective
    instance keys and abort each other's all-reduces ("Shape mismatch in the
    collective instance"), and a cluster or TPU can be set up only once, so
    ``fit`` called again in the same process (compare, tests) gets the same one.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    return _make_distributed_strategy(name)


@functools.lru_cache(maxsize=None)
def _make_distributed_strategy(name):
    """``name`` is one of ``train_options.STRATEGIES`` other than default (TrainOptions checked it)."""
    if name == "mirrored":
        # All GPUs; without GPUs, all logical CPU devices (MirroredStrategy's
        # default would take CPU:0 alone), so it can be tried on one machine.
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """Only the chief writes checkpoints and logs (TensorFlow's multi-worker convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def distribute(strategy, ds):
    """``ds`` split across the strategy's replicas (and workers: by batch, not by file).

    Our datasets are built from in-memory tensors, so the default FILE
    auto-sharding cannot apply; DATA sharding gives each worker its part of
    every global batch.
    """
    if strategy.num_replicas_in_sync == 1 and not getattr(strategy, "cluster_resolver", None):
        return ds
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(ds.with_options(options))


def poem_batch_signature(strategy):
    """The input signature of one (distributed) batch of ``(inputs, targets, lengths)``.

    Every dimension is unknown, so a step traces once for all batch shapes;
    under a multi-replica strategy the batch is a PerReplica value, whose spec
    comes from distributing a probe dataset with the same structure.
    """
    probe = tf.data.Dataset.range(1).map(
        lambda i: (tf.zeros([i + 1, i + 1], tf.int32), tf.zeros([i + 1, i + 1], tf.int32), tf.zeros([i + 1], tf.int32))
    )
    return distribute(strategy, probe).element_spec


def sum_over_replicas(value, strategy):
    """``value`` summed over the replicas, inside a replica function (unchanged on one replica)."""
    if strategy.num_replicas_in_sync == 1:
        return value
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def reduce_to_host(strategy, values, means=()):
    """Per-replica results as one value each: summed, or averaged at the indices in ``means``."""
    return tuple(
        strategy.reduce(tf.distribute.ReduceOp.MEAN if i in means else tf.distribute.ReduceOp.SUM, v, axis=None)
        for i, v in enumerate(values)
    )


def aggregate_gradients_before_clipping(optimizer):
    """Let the train step sum the replicas' gradients itself, before the optimizer sees them.

    Keras 3's optimizer clips (``global_clipnorm``) each replica's partial
    gradient and only then all-reduces, so under several replicas the clip
    would apply to the wrong vector. The train step all-reduces instead
    (``sum_over_replicas``) and the optimizer's own (second) all-reduce is
    switched off, by replacing its private ``_all_reduce_sum_gradients``, so
    clipping applies to the global gradient, as on one device.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer wraps one
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise PoetryError(f"this Keras ({keras.__version__}) optimizer has no _all_reduce_sum_gradients to replace")
    inner._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)
