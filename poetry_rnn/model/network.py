"""The one model: features -> stacked RNN layers -> projection to the vocabulary.

``PoetryModel`` serves every stage from the same weights:

* ``model(ids, states)`` runs whole sequences (training, evaluation) through
  the Keras ``SimpleRNN``/``LSTM``/``GRU`` layers and returns logits and the
  final states, so streams can carry state across batches (truncated BPTT);
* ``model.step(ids, states)`` advances one character through the same layers'
  cells, which is what the in-graph decoder calls inside its while loop.

With ``prompt_bag`` a conditioned model reads its prompt as a bag of
characters (``prompt_context``), not as a prefix: the mean embedding of its
characters, through two zero-initialised projections, shifts the first
layer's input and the logits at every step (as Jiuge's keyword attention
reaches every step). The recurrent layers read the poem alone, as an
unconditioned model does; a prefix had to be carried through their state
and disturbed it (fine-tuning to prefixes left poems worse, prompted or
not), while a model given the bag from one without starts out as that model.

The recurrent state is always explicit, never a ``stateful=True`` layer, so
decoding any batch size needs no rebuilding.

On a GPU, Keras picks the cuDNN kernel for LSTM and GRU by itself when the
layer keeps its defaults (tanh / sigmoid activations, no recurrent dropout,
``unroll=False``, ``use_bias=True``, GRU ``reset_after=True``) and no mask is
passed; we pass none (padding is handled by the loss mask, and padding only
ever follows the real characters), so training gets cuDNN on GPUs unchanged.
With ``lstm_kernel="fused"`` LSTM layers run their whole sequences through
``fast_lstm`` instead (same weights, ~1.2x faster training on CPUs); the
caller chooses (``train --lstm_kernel``, default by device), the model never
probes for devices itself.
"""

import contextlib
import dataclasses
import math

import keras
import tensorflow as tf

from poetry_rnn.model import fast_lstm as fast_lstm_lib, vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.infra.fields import option, validate

CELLS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
INPUTS = ("embedding", "onehot")
CONDITIONS = ("none", "title", "keywords")  # what a poem is primed with: vocab.prompt_fields
FORMAT_VERSION = 1
# More than any character RNN needs (the default model has 8.8 M): 4 GB of
# float32 weights, 16 GB with Adam's moments. A config past it is a typo or a
# hostile file, refused before anything is allocated.
MAX_PARAMETERS = 1_000_000_000
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per cell: one per gate (GRU: update, reset, candidate)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; saved as JSON in the model dir.

    Each field is also a ``train``/``compare`` flag of the same name. In
    ``TrainOptions`` ``vocab_size`` stays None until the data decides it.
    """

    vocab_size: int = option(None, "Tokens the network reads and predicts (set from the data).", minimum=1, flag=False)
    cell: str = option("lstm", "Recurrent cell.", choices=CELLS)
    input: str = option("embedding", "Input features: embedding (dense vectors) or onehot (the d2l lessons).",
                        choices=INPUTS)
    embed_dim: int = option(256, "Embedding width (embedding input).", minimum=1)
    units: int = option(512, "Hidden units per recurrent layer.", minimum=1)
    layers: int = option(2, "Stacked recurrent layers.", minimum=1)
    dropout: float = option(0.0, "Dropout on each recurrent layer's output (training only).", minimum=0, below=1)
    # Gal & Ghahramani (2016): a fresh mask at every step lets the next layer
    # average the noise away over neighbouring characters; one mask per poem
    # drops a unit for the whole poem, a stronger regulariser at the same rate.
    variational_dropout: bool = option(False, "--dropout drops the same units at every step of a sequence "
                                              "(one mask per sequence, variational), not a fresh set per step.")
    # Merity et al. (2018), AWD-LSTM: dropping recurrent connections, not
    # activations, regularises the recurrence itself without disturbing the
    # LSTM's memory from step to step. Training only: decoding is unchanged.
    weight_drop: float = option(0.0, "LSTM: DropConnect on each layer's recurrent kernel while training (one mask "
                                     "per batch, AWD-LSTM's weight drop).", minimum=0, below=1)
    tie_embeddings: bool = option(False, "The output layer reuses the embedding (through a projection to "
                                         "--embed_dim when --units differs): fewer parameters to learn.")
    condition: str = option("none", "What each poem is primed with: title (BOS title SEP content EOS) or keywords "
                            "(BOS title SEP keywords SEP content EOS: its title half the time and 0-3 of its own "
                            "characters, drawn anew each epoch).", choices=CONDITIONS)
    # Grave et al. (2017): the 6,628-way output layer was about half a 2x512's
    # training FLOPs, and 86 % of poem characters are the 1,024 most frequent.
    adaptive_softmax: str = option("", "Exact adaptive softmax: cutoffs in the vocabulary (ordered by frequency), e.g. "
                                       "1024,3072. Ids below the first are scored straight from the last layer, each "
                                       "later band through a projection a quarter as wide as the one before; every "
                                       "id still gets its exact probability. Empty: one full output layer.")
    prompt_bag: bool = option(False, "Read the prompt as a bag of characters at every step (their mean embedding, "
                                     "projected onto the first layer's input and the logits), not as a prefix: "
                                     "the recurrent layers read the poem alone. Needs --condition title or keywords.")

    def __post_init__(self):
        validate(self)
        if self.prompt_bag and (self.condition == "none" or self.input != "embedding"):
            raise PoetryError("--prompt_bag needs --condition title or keywords and --input embedding")
        if self.weight_drop and self.cell != "lstm":
            raise PoetryError(f"--weight_drop needs --cell lstm (it drops the LSTM kernel's recurrent weights), "
                              f"got --cell {self.cell}")
        if self.tie_embeddings and self.input != "embedding":
            raise PoetryError("--tie_embeddings needs --input embedding (a one-hot input has no embedding to share)")
        cutoffs = softmax_cutoffs(self)
        if self.tie_embeddings and cutoffs:
            raise PoetryError("--adaptive_softmax and --tie_embeddings are two output layers; choose one")
        if cutoffs and self.units < 4 ** len(cutoffs):
            raise PoetryError(f"--adaptive_softmax {self.adaptive_softmax}: {len(cutoffs)} bands, each a quarter as "
                              f"wide as the one before, need --units >= {4 ** len(cutoffs)}, got {self.units}")
        if self.vocab_size is None:
            return  # TrainOptions' network, before the data decides the vocabulary
        if cutoffs and cutoffs[-1] >= self.vocab_size:
            raise PoetryError(f"--adaptive_softmax {self.adaptive_softmax}: cutoff {cutoffs[-1]} is not below the "
                              f"vocabulary's {self.vocab_size} tokens")
        parameters = sum(math.prod(shape) for shape in variable_shapes(self).values())
        if parameters > MAX_PARAMETERS:
            raise PoetryError(
                f"a {self.layers}x{self.units} {self.cell} with a vocabulary of {self.vocab_size} would have "
                f"{parameters:,} parameters, more than the {MAX_PARAMETERS:,} this package builds"
            )

    @property
    def prompt_reading(self):
        """How this model reads a prompt, as the keyword arguments that encoding and decoding take."""
        return {"condition": self.condition, "prompt_bag": self.prompt_bag}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data, source="config"):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PoetryError(f"{source}: unknown model fields {', '.join(unknown)}")
        if data.get("vocab_size") is None:
            raise PoetryError(f"{source}: no vocab_size")
        try:
            return cls(**data)
        except (TypeError, PoetryError) as error:  # in a file, a field's name is its own, not a flag
            raise PoetryError(f"{source}: {str(error).removeprefix('--')}") from None


def softmax_cutoffs(config):
    """``config.adaptive_softmax`` as a tuple of ints, () for a full output layer; refuses a malformed list."""
    if not config.adaptive_softmax:
        return ()
    try:
        cutoffs = tuple(int(part) for part in config.adaptive_softmax.split(","))
    except ValueError:
        cutoffs = ()
    if not cutoffs or cutoffs[0] <= vocab_lib.SEP or any(b <= a for a, b in zip(cutoffs, cutoffs[1:])):
        raise PoetryError(f"--adaptive_softmax must be increasing whole numbers above {vocab_lib.SEP} separated "
                          f"by commas (e.g. 1024,3072), got {config.adaptive_softmax!r}")
    return cutoffs


def softmax_bands(config):
    """[(first id, end id, width)] of each tail band of the adaptive softmax: its ids and projection width."""
    edges = (*softmax_cutoffs(config), config.vocab_size)
    return [(start, end, config.units // 4 ** (i + 1)) for i, (start, end) in enumerate(zip(edges, edges[1:]))]


def variable_shapes(config):
    """{'lstm_0/lstm_cell/kernel': (256, 2048), ...}: every weight ``PoetryModel(config)`` makes, and its shape.

    Known without building the model, so a config or a weights file can be
    checked before anything is allocated. Keys are ``variable.path`` less the
    model's own name (which Keras numbers per process); a test holds this to
    the real model for every cell and input.
    """
    cell_name = {"rnn": "simple_rnn_cell", "lstm": "lstm_cell", "gru": "gru_cell"}[config.cell]
    width = GATES[config.cell] * config.units
    shapes = {"embedding/embeddings": (config.vocab_size, config.embed_dim)} if config.input == "embedding" else {}
    features = config.embed_dim if config.input == "embedding" else config.vocab_size
    for i in range(config.layers):
        prefix = f"{config.cell}_{i}/{cell_name}"
        shapes[f"{prefix}/kernel"] = (features if i == 0 else config.units, width)
        shapes[f"{prefix}/recurrent_kernel"] = (config.units, width)
        shapes[f"{prefix}/bias"] = (2, width) if config.cell == "gru" else (width,)  # GRU reset_after: two biases
    if config.adaptive_softmax:
        bands = softmax_bands(config)
        shortlist = bands[0][0]  # the head scores the ids before the first band
        shapes["logits/head/kernel"] = (config.units, shortlist + len(bands))
        shapes["logits/head/bias"] = (shortlist + len(bands),)
        for i, (start, end, width) in enumerate(bands):
            shapes[f"logits/tail_{i}_projection/kernel"] = (config.units, width)
            shapes[f"logits/tail_{i}/kernel"] = (width, end - start)
            shapes[f"logits/tail_{i}/bias"] = (end - start,)
    else:
        if config.tie_embeddings:
            shapes["logits/projection/kernel"] = (config.units, config.embed_dim)
            shapes["logits/projection/bias"] = (config.embed_dim,)
        else:
            shapes["logits/kernel"] = (config.units, config.vocab_size)
        shapes["logits/bias"] = (config.vocab_size,)
    if config.prompt_bag:
        shapes["bag_features/kernel"] = (config.embed_dim, config.embed_dim)
        shapes["bag_logits/kernel"] = (config.embed_dim, config.vocab_size)
    return shapes


def matmul_flops(config):
    """Forward FLOPs per position (2 per multiply-add) of every matrix product ``PoetryModel(config)`` makes.

    The embedding lookup costs none, and the prompt bag's are made once per
    poem, not per position; a tied model multiplies by its embedding matrix
    too. Training costs about 3x this (forward, and two products backward).
    """
    shapes = variable_shapes(config)
    flops = sum(2 * math.prod(shape) for name, shape in shapes.items()
                if name.endswith("kernel") and not name.startswith("bag_"))
    return flops + (2 * config.vocab_size * config.embed_dim if config.tie_embeddings else 0)


# Weights a model with these options has and one without them lacks; they start at zero, so
# fine-tuning from the model without them (``train --init_from``) starts from its very outputs.
ADDED_BY = {"prompt_bag": ("bag_features/kernel", "bag_logits/kernel")}


def added_weights(config):
    """The names (as ``variable_shapes`` keys) of the weights ``config``'s options add (``ADDED_BY``)."""
    return {name for option, names in ADDED_BY.items() if getattr(config, option) for name in names}


@contextlib.contextmanager
def precision(policy):
    """Make layers under the Keras dtype ``policy``, then put the global policy back.

    Keras reads its global policy when a layer is made, and the policy then
    stays the layer's. Training makes its model under bf16 or fp16 this way
    without leaving that policy to what the process makes next: a model
    loaded afterwards for evaluation or writing computes in float32.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class TiedLogits(keras.layers.Layer):
    """Logits from the embedding matrix itself: ``project(x) @ embeddings.T + bias`` (weight tying).

    Press & Wolf (2017): the input and output embeddings of a language model
    can be one matrix; a character model then learns each character's vector
    from both sides. The projection maps the recurrent width to the embedding
    width (it is there even when they match, so every tied model has one shape
    of weights).
    """

    def __init__(self, embedding, embed_dim, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.projection = keras.layers.Dense(embed_dim, name="projection")
        self.vocab_size = vocab_size

    def build(self, input_shape):
        self.projection.build(input_shape)
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, x):
        matrix = tf.cast(self.embedding.embeddings, self.compute_dtype)
        return tf.matmul(self.projection(x), matrix, transpose_b=True) + tf.cast(self.bias, self.compute_dtype)


class AdaptiveLogits(keras.layers.Layer):
    """Exact log-probabilities of every id from a head and frequency bands (adaptive softmax, Grave et al. 2017).

    The head scores the ids below the first cutoff and one entry per tail
    band; a band's ids are scored from a narrow projection of the same
    input (a quarter of the units, then a sixteenth, ...), and
    log p(id) = log p_head(band) + log p_band(id). Every id is computed for
    every position, so the result is the full normalised distribution that
    the loss, perplexity and the decoder read as logits, as they read a
    full layer's; the saving is in the narrow bands (for a 2x512 with
    cutoffs 1024,3072, 1.0 M multiply-adds a position instead of 3.4 M).
    Computed in float32 under mixed precision, as Keras advises for a
    model's last softmax.
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        bands = softmax_bands(config)
        self.shortlist = bands[0][0]  # the ids before the first band
        self.head = keras.layers.Dense(self.shortlist + len(bands), name="head")
        self.tails = []
        for i, (start, end, width) in enumerate(bands):
            projection = keras.layers.Dense(width, use_bias=False, name=f"tail_{i}_projection")
            band = keras.layers.Dense(end - start, name=f"tail_{i}")
            setattr(self, f"tail_{i}_projection", projection)  # attributes, for tf.train.Checkpoint (see PoetryModel)
            setattr(self, f"tail_{i}", band)
            self.tails.append((projection, band))

    def build(self, input_shape):
        self.head.build(input_shape)
        for projection, band in self.tails:
            projection.build(input_shape)
            band.build((*input_shape[:-1], projection.units))

    def call(self, x):
        head = tf.nn.log_softmax(tf.cast(self.head(x), tf.float32))
        parts = [head[..., : self.shortlist]]
        for i, (projection, band) in enumerate(self.tails):
            band_logits = tf.nn.log_softmax(tf.cast(band(projection(x)), tf.float32))
            parts.append(head[..., self.shortlist + i : self.shortlist + i + 1] + band_logits)
        return tf.concat(parts, axis=-1)


class PoetryModel(keras.Model):
    def __init__(self, config, lstm_kernel="keras", initialize=True, **kwargs):
        """``initialize=False``: weights about to be loaded start as zeros, which skips the recurrent kernels'
        orthogonal initializer (QR decompositions: a third of a fresh ``write``'s load time)."""
        super().__init__(**kwargs)
        self.config = config
        self.lstm_kernel = lstm_kernel  # whole sequences: keras layers, or fused (fast_lstm) for LSTM cells
        self.embedding = (
            keras.layers.Embedding(config.vocab_size, config.embed_dim, name="embedding")
            if config.input == "embedding"
            else None
        )
        layer = CELLS[config.cell]
        self.rnns = [
            layer(config.units, return_sequences=True, return_state=True, name=f"{config.cell}_{i}",
                  **({} if initialize else {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}))
            for i in range(config.layers)
        ]
        per_sequence = (None, 1, config.units) if config.variational_dropout else None  # one mask over all steps
        self.dropouts = [keras.layers.Dropout(config.dropout, noise_shape=per_sequence) for _ in range(config.layers)]
        # tf.train.Checkpoint follows attributes, not the list Keras keeps
        # (a TrackedList it cannot see): name each recurrent layer, so the
        # checkpoint holds model/rnn_<i>/... and not only the optimizer's copy.
        for i, rnn in enumerate(self.rnns):
            setattr(self, f"rnn_{i}", rnn)
        if config.adaptive_softmax:
            self.head = AdaptiveLogits(config, name="logits")
        elif config.tie_embeddings:
            self.head = TiedLogits(self.embedding, config.embed_dim, config.vocab_size, name="logits")
        else:
            self.head = keras.layers.Dense(config.vocab_size, name="logits")
        if config.prompt_bag:
            self.bag_features = keras.layers.Dense(config.embed_dim, use_bias=False, kernel_initializer="zeros",
                                                   name="bag_features")
            self.bag_logits = keras.layers.Dense(config.vocab_size, use_bias=False, kernel_initializer="zeros",
                                                 name="bag_logits")
        # Create the variables now, so checkpoints can be restored before any call.
        self(tf.zeros((1, 1), tf.int32))

    def recast(self, policy):
        """The same network computing under the Keras dtype ``policy``, its weights cast (a copy).

        Writing reads every weight at every character for a handful of rows,
        so memory bounds it: bfloat16 weights are half the bytes to read, and
        on a CPU with native bf16 the model step ran 1.7x faster (docs/performance.md).
        A checkpoint's float32 variables restore only into float32 ones: ``store.load`` recasts that model.
        """
        with precision(policy):
            twin = PoetryModel(self.config, self.lstm_kernel, initialize=False)
        for target, source in zip(twin.weights, self.weights):
            target.assign(tf.cast(source, target.dtype))
        return twin

    @property
    def states_per_layer(self):
        return 2 if self.config.cell == "lstm" else 1

    def initial_states(self, batch_size):
        """Zero states: a tuple per layer of (h,) or (h, c) tensors."""
        zeros = tf.zeros((batch_size, self.config.units), self.compute_dtype)
        return tuple((zeros,) * self.states_per_layer for _ in self.rnns)

    def features(self, ids):
        if self.embedding is not None:
            return self.embedding(ids)
        return tf.one_hot(ids, self.config.vocab_size, dtype=self.compute_dtype)

    def prompt_context(self, prompt):
        """(input shift (batch, embed_dim), logit shift (batch, vocab)) for prompt ids (batch, length).

        Only characters count (ids past SEP; the reserved tokens and padding
        do not), so a row with no prompt gets zero shifts: an unprompted poem
        is read exactly as by the same model without the bag. None for a model
        without ``prompt_bag``.
        """
        if not self.config.prompt_bag:
            return None
        chars = tf.cast(prompt > vocab_lib.SEP, self.compute_dtype)[..., None]
        bag = tf.reduce_sum(self.embedding(prompt) * chars, axis=1) / tf.maximum(tf.reduce_sum(chars, axis=1), 1)
        return self.bag_features(bag), self.bag_logits(bag)

    def sequence_prompt(self, ids):
        """The bag of each row of whole sequences: the ids after its first EOS, PAD elsewhere.

        ``dataset.encode_poems`` puts a bag model's prompt there (unscored),
        and every step of the poem before it reads it, as a decoder given the
        prompt up front does: the prompt is given, so no step learns from a
        character it must predict.
        """
        is_eos = tf.cast(tf.equal(ids, vocab_lib.EOS), tf.int32)
        return tf.where(tf.cumsum(is_eos, axis=1, exclusive=True) > 0, ids, vocab_lib.PAD)

    def call(self, ids, states=None, training=False):
        """Logits (batch, time, vocab) for int ids (batch, time), and the final states."""
        x = self.features(ids)
        context = self.prompt_context(self.sequence_prompt(ids)) if self.config.prompt_bag else None
        if context is not None:
            x += context[0][:, None, :]
        if states is None:
            states = self.initial_states(tf.shape(ids)[0])
        final = []
        weight_drop = self.config.weight_drop if training else 0.0
        for rnn, dropout, state in zip(self.rnns, self.dropouts, states):
            # Weight drop lives in fast_lstm (the Keras layer has no hook for it), so it takes that kernel.
            if (self.lstm_kernel == "fused" or weight_drop) and fast_lstm_lib.usable(rnn.cell):
                x, *state = fast_lstm_lib.run(rnn.cell, x, state, weight_drop=weight_drop)
            else:
                x, *state = rnn(x, initial_state=list(state), training=training)
            x = dropout(x, training=training)
            final.append(tuple(state))
        logits = self.head(x)
        return (logits if context is None else logits + tf.cast(context[1], logits.dtype)[:, None, :]), tuple(final)

    def step(self, ids, states, context=None):
        """One character for a batch: ids (batch,) -> logits (batch, vocab), new states.

        ``context`` is ``prompt_context`` of the batch's prompts, computed once
        before the first step (None: no prompt, or a model without the bag).
        """
        x = self.features(ids)
        if context is not None:
            x += context[0]
        new_states = []
        for rnn, state in zip(self.rnns, states):
            x, state = rnn.cell(x, list(state))
            new_states.append(tuple(state) if isinstance(state, (list, tuple)) else (state,))
        logits = self.head(x)
        return (logits if context is None else logits + tf.cast(context[1], logits.dtype)), tuple(new_states)

    def count_params(self):
        return int(sum(v.numpy().size for v in self.weights))
