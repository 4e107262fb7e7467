"""What a training run can be told: ``TrainOptions``, one field per ``train``/``compare`` flag.

``TrainOptions`` holds the network's settings as a ``ModelConfig`` (its
``vocab_size`` left for the data to decide) instead of repeating them, and
checks every value, and the combinations that cannot work, when it is made:
the command line and the Python API get the same one-line errors. Each name
list here (optimizers, precisions, strategies, ...) is the only one; the
flags' choices come from it.
"""

import dataclasses

import keras

from poetry_rnn.corpus import reading
from poetry_rnn.training import dataset, distribution
from poetry_rnn.model import fast_lstm
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig
from poetry_rnn.infra.fields import option, validate

OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
PRECISION_POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
CORPORA = ("poems", "lyrics")
INITS = ("keras", "normal")
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """Training hyper-parameters; the network's own are in ``model``."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    # Data.
    min_count: int = option(2, "Characters seen fewer times become UNK.", minimum=1)
    max_len: int = option(reading.DEFAULT_MAX_LEN, "Skip poems with longer content.", minimum=1)
    valid_fraction: float = option(0.02, "Share of poems held out (by content hash) and evaluated each epoch.",
                                   minimum=0, below=1)
    # Streams (--corpus lyrics, the d2l char-RNN lessons; see lessons.py).
    corpus: str = option("poems", "poems: a poems.txt; lyrics: one text stream, lines joined with a space (the d2l lessons).",
                         choices=CORPORA)
    sampling: str = option("random", "Lyrics: random windows (zero state per batch) or consecutive strips (state carried).",
                           choices=dataset.SAMPLINGS)
    num_steps: int = option(35, "Lyrics: characters per window (truncated BPTT length).", minimum=1)
    max_chars: int = option(0, "Lyrics: only the first N characters (0 = all; d2l: 10000).", minimum=0)
    random_offset: bool = option(True, "Lyrics: start each epoch's windows at a random offset "
                                       "(--norandom_offset: at 0 every epoch, as the book).")
    init: str = option("keras", "Lyrics: keras initialisers, or normal: N(0, 0.01^2) weights, 0 biases (the book).",
                       choices=INITS)
    stream_valid_fraction: float = option(0.1, "Lyrics: the last share of the stream held out.", minimum=0, below=1)
    # Optimisation.
    optimizer: str = option("adam", "Optimizer.", choices=OPTIMIZERS)
    # 1e-2, not the usual 2e-3: with a 6,600-way softmax, Adam at 2e-3 sat on
    # the unigram plateau (validation perplexity 735) for a whole epoch.
    learning_rate: float = option(1e-2, "Learning rate.", above=0)
    # cosine anneals by position in the run, so a resumed run picks up the same
    # curve. A constant 1e-2 left the default model still improving slowly;
    # annealing is what turns that into a lower perplexity.
    lr_schedule: str = option("constant", "constant, or cosine: anneal to --final_lr_fraction x --learning_rate "
                                          "over all --epochs.", choices=LR_SCHEDULES)
    final_lr_fraction: float = option(0.05, "cosine: the last learning rate, as a share of the first.", minimum=0, maximum=1)
    # The default model's first stage spent an hour at a constant rate; a short
    # linear warm-up lets a high peak rate start the cosine at step 0 safely.
    warmup: float = option(0.0, "Share of the run over which the rate rises linearly from 0 to --learning_rate "
                                "(then the schedule goes on from there).", minimum=0, below=1)
    # Fine-tuning, or more epochs for a model shipped without its optimizer
    # state: its vocabulary is used, and its network must match.
    init_from: str = option("", "Start a new run from this model directory's weights and vocabulary "
                                "(e.g. checkpoints/default).")
    # A prompt bag learnt on top of a frozen model leaves its unprompted poems exactly as they were.
    train_only_new: bool = option(False, "With --init_from: train only the weights an option adds (--prompt_bag's) "
                                         "and keep the source's as they are, so poems without a prompt stay exactly "
                                         "the source model's.")
    clip_norm: float = option(5.0, "Global-norm gradient clipping (0 = off).", minimum=0)
    batch_size: int = option(64, "Poems (or lyrics windows) per batch (global, across replicas).", minimum=1)
    epochs: int = option(10, "Epochs in all (a resumed run continues to this).", minimum=1)
    seed: int = option(0, "Seed for initialisation and data order.", minimum=0)
    max_steps: int = option(0, "Stop after this many steps in all (0 = no limit).", minimum=0)
    # Bookkeeping.
    checkpoint_every: int = option(500, "Steps between checkpoints (also saved at each epoch end).", minimum=1)
    keep_checkpoints: int = option(3, "Checkpoints kept.", minimum=1)
    samples: int = option(4, "Sample poems logged to TensorBoard per epoch.", minimum=0)
    strategy: str = option("default", "tf.distribute strategy.", choices=STRATEGIES)
    mixed_precision: str = option(None, "off (float32), bf16 (CPUs with native bf16, TPUs) or fp16 (GPUs, with loss "
                                        "scaling). Default: bf16 where the CPU computes it natively (AVX-512 BF16, "
                                        "AMX), else off: emulated bf16 trained 5x slower.",
                                  choices=PRECISION_POLICIES)
    lstm_kernel: str = option(None, "LSTM over whole sequences: keras (cuDNN on GPUs) or fused (fast_lstm). "
                                    "Default: fused without a GPU or TPU, where it trained ~1.2x faster; else keras.",
                              choices=fast_lstm.KERNELS)
    log_every: int = option(100, "Without a terminal: one progress line per this many steps (and one per epoch).",
                            minimum=1)
    quiet: bool = option(False, "No progress output (tests, compare).", flag=False)

    @classmethod
    def of(cls, **settings):
        """TrainOptions from flat settings, the network's among them: ``TrainOptions.of(cell="gru", epochs=2)``."""
        network = {f.name for f in dataclasses.fields(ModelConfig)}
        model = ModelConfig(**{k: v for k, v in settings.items() if k in network})
        return cls(model=model, **{k: v for k, v in settings.items() if k not in network})

    def __post_init__(self):
        if not isinstance(self.model, ModelConfig):
            raise PoetryError(f"TrainOptions.model must be a ModelConfig, got {self.model!r}")
        validate(self)
        if self.train_only_new and not (self.init_from and self.model.prompt_bag):
            raise PoetryError("--train_only_new needs --init_from and an option that adds weights (--prompt_bag)")
        if self.corpus == "lyrics":
            if self.strategy != "default":
                raise PoetryError("--corpus lyrics trains on one device (the state is carried from batch to batch); "
                                  "use --strategy default")
            if self.model.condition != "none":
                raise PoetryError(f"--condition {self.model.condition} needs poems (titles, keywords); a lyrics stream "
                                  "has neither")

    def resolved(self):
        """These options with ``lstm_kernel`` and ``mixed_precision`` decided for this machine (what the run records)."""
        return dataclasses.replace(self, lstm_kernel=self.lstm_kernel or fast_lstm.default_kernel(),
                                   mixed_precision=self.mixed_precision or distribution.default_precision())

    def model_config(self, vocab_size):
        return dataclasses.replace(self.model, vocab_size=vocab_size)

    def settings(self):
        """The training settings as a flat dict (the network's are in the model config), for config.json."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("model", "quiet")}
