"""What ``train``'s loop trains on: poems from a poems.txt, or the d2l char-RNN lessons on one text stream.

``PoemLesson``: bucketed batches of poems, the hash-based validation split,
sample poems for TensorBoard.

``StreamLesson`` (``train --corpus lyrics``, Jay Chou's lyrics): the text
(non-empty lines joined with a space; only its first ``max_chars``
characters if set) is one index stream, and its last
``stream_valid_fraction`` is held out. ``random`` sampling starts every
batch from zero states; ``consecutive`` sampling feeds each batch's final
states to the next with the gradient stopped between them (truncated BPTT),
and starts from zeros at each epoch. The loss is the plain token mean (no
padding in a stream). One device only: the carried state makes this a
sequential loop. Resuming works by epoch: a run stopped inside an epoch
rebuilds that epoch's batches from (seed, epoch) and goes on at the next
batch, with zero states (consecutive sampling loses its carry there).

Both give the loop the same things: ``vocab`` (the data's own, until
``use_vocab`` gives the one a resumed run must keep), ``initialize(model)``,
``describe()`` for the model's log line, ``record_training_poems(model_dir)``
(``model.training_poems``), ``build_steps(run, strategy)``,
``epoch_steps(epoch, skip)``, ``validate()`` and ``sample(epoch)``.
"""


import numpy as np

from poetry_rnn.corpus import split
from poetry_rnn.corpus import reading
from poetry_rnn.training import dataset, distribution, steps as steps_lib
from poetry_rnn.generation import drafts, sampler
from poetry_rnn.model import loss as loss_lib
from poetry_rnn.verse import poem_request
from poetry_rnn.model import training_poems, vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.options import SamplingOptions
from poetry_rnn.model.vocab import Vocab

SAMPLE_BEGINS = "日红山夜"  # the poems' sample begins
SAMPLE_MAX_LEN = 80
SAMPLE_PREFIXES = ("分开", "不分开", "战争中部队", "想要")  # the lessons' prefixes
SAMPLE_LENGTH = 50  # characters after each prefix, as d2l predicts


class PoemLesson:
    """Poems from a poems.txt: bucketed batches, the hash-based validation split, sample poems."""

    def __init__(self, data, options, log):
        self.options, self.log = options, log
        self.poems, stats = reading.read_poems(data, options.max_len)
        log(f"{data}: {stats.summary()}")
        self.vocab = Vocab.build(poems_text(self.poems, options.model.condition), options.min_count)

    def use_vocab(self, vocab):
        """Split and encode the poems with ``vocab`` (the data's own, or a resumed run's)."""
        self.vocab, reading = vocab, self.options.model.prompt_reading
        self.train_poems, held_out = split.split_train_valid(self.poems, self.options.valid_fraction)
        valid_poems, test_poems = split.split_held_out(held_out)
        self.log(f"vocabulary {len(vocab)} tokens; {len(self.train_poems)} training, {len(valid_poems)} validation "
                 f"and {len(test_poems)} test poems (held out, for evaluate)")
        self.train_seqs = dataset.encode_poems(self.train_poems, vocab, **reading)
        self.valid_seqs = dataset.encode_poems(valid_poems, vocab, **reading)

    def initialize(self, model):
        """Poems start from the layers' own initialisers."""

    def describe(self):
        return ""

    def record_training_poems(self, model_dir):
        """Keep the training poems' fingerprints in the model folder, so drafts that copy one are ranked away."""
        training_poems.record(model_dir, (p.content for p in self.train_poems), self.options.init_from)

    def build_steps(self, run, strategy):
        self.train_step, self.eval_step = steps_lib.make_steps(run.model, run.optimizer, strategy, steps_lib.POEMS)
        self.strategy, self.model, self.chief = strategy, run.model, run.chief

    def epoch_sequences(self, epoch):
        """The training poems as this epoch shows them: a keywords model gets fresh prompts each epoch."""
        if self.options.model.condition != "keywords":
            return self.train_seqs
        rng = np.random.default_rng([self.options.seed, epoch])  # a resumed epoch draws the same prompts
        return dataset.encode_poems(self.train_poems, self.vocab, rng=rng, **self.options.model.prompt_reading)

    def epoch_steps(self, epoch, skip):
        options = self.options
        sequences = self.epoch_sequences(epoch)
        batches = dataset.poem_dataset(sequences, options.batch_size, dataset.shuffle_seed(options.seed, epoch), skip)
        steps = (self.train_step(batch)[0] for batch in distribution.distribute(self.strategy, batches.dataset))
        return batches.batches_per_epoch, steps

    def validate(self):
        if not self.valid_seqs:
            return float("nan")
        return loss_lib.perplexity(*steps_lib.poem_totals(self.eval_step, self.strategy, self.valid_seqs, self.options.batch_size))

    def sample(self, epoch):
        if not (self.options.samples and self.chief):
            return None
        return sample_poems(self.model, self.vocab, self.options)


def poems_text(poems, condition):
    for poem in poems:
        yield poem.content
        if condition != "none":
            yield poem.title


def sample_poems(model, vocab, options):
    """A few free poems for TensorBoard, from the same decoder and sampling defaults ``write`` uses."""
    begins = [c for c in SAMPLE_BEGINS if c in vocab][: options.samples] or [""]
    requests = [poem_request.PoemRequest(begin=b, max_len=SAMPLE_MAX_LEN) for b in begins]
    poems = drafts.generate(sampler.Decoder(model), vocab, requests, SamplingOptions(seed=options.seed))
    return "\n\n".join(p.content for p in poems)


class StreamLesson:
    """A lyrics stream read from ``data``: its vocabulary, then its batches, steps and samples."""

    def __init__(self, data, options, log):
        self.data, self.options, self.log = data, options, log
        text = reading.read_stream(data)
        self.whole = len(text)
        self.text = text[: options.max_chars or None]
        self.vocab = Vocab.build([self.text], options.min_count)

    def use_vocab(self, vocab):
        """Encode and split the stream with ``vocab`` (the data's own, or a resumed run's)."""
        options, text = self.options, self.text
        self.vocab = vocab
        ids = np.array(vocab.encode(text), np.int32)
        self.train_ids, self.valid_ids = dataset.split_stream(ids, options.stream_valid_fraction)
        self.log(
            f"{self.data}: {len(text):,} characters"
            + (f" (the first {len(text):,} of {self.whole:,})" if len(text) < self.whole else "")
            + f"; vocabulary {len(vocab)} tokens (min_count {options.min_count}, {np.mean(ids == vocab_lib.UNK):.2%} UNK); "
            f"{len(self.train_ids):,} training and {len(self.valid_ids):,} held-out characters"
        )

    def initialize(self, model):
        initialize(model, self.options.init, self.options.seed)

    def describe(self):
        options = self.options
        return (f"; {options.sampling} sampling{'' if options.random_offset else ' (windows at offset 0 every epoch)'}, "
                f"batches of {options.batch_size} x {options.num_steps} characters, {options.init} initialisation")

    def record_training_poems(self, model_dir):
        """Nothing: a stream model continues lyrics, and a continuation is not a poem that could be copied whole."""

    def build_steps(self, run, strategy):
        self.train_step, self.eval_step = steps_lib.make_steps(run.model, run.optimizer, strategy, steps_lib.STREAMS)
        self.model = run.model
        self.zeros = run.model.initial_states(self.options.batch_size)
        self.decoder = sampler.Decoder(run.model) if self.options.samples else None

    def epoch_steps(self, epoch, skip):
        options = self.options
        batches = dataset.stream_epoch(self.train_ids, options.batch_size, options.num_steps, options.sampling,
                                       options.seed, epoch, options.random_offset)
        if not batches:
            raise PoetryError(
                f"the training stream ({len(self.train_ids):,} characters) is too short for one batch of "
                f"--batch_size {options.batch_size} windows of --num_steps {options.num_steps}"
            )
        results = run_stream_batches(self.train_step, batches[skip:], options.sampling, self.zeros)
        return len(batches), (metrics for metrics, _, _ in results)

    def validate(self):
        return steps_lib.stream_perplexity(self.eval_step, self.model, self.valid_ids, self.options.batch_size,
                                           self.options.num_steps)

    def sample(self, epoch):
        if self.decoder is None:
            return None
        samples = sample_streams(self.decoder, self.vocab, self.options.samples, self.options.seed)
        if (epoch + 1) % 50 == 0 or epoch + 1 == self.options.epochs:
            self.log(" - " + samples.replace("\n\n", "\n - "))  # greedy, like d2l's prediction every 50 epochs
        return samples


def initialize(model, init, seed):
    """``normal``: every weight N(0, 0.01^2) and every bias 0, as the d2l scratch RNNs start.

    With SGD at lr 100 and clip 0.01 every step has length 1.0, so where the
    weights start matters: from Keras' initialisers (orthogonal recurrent
    kernels, Glorot) the book's 250 epochs reach a perplexity about twice
    the book's; from the book's small normal weights they reproduce it.
    """
    if init == "keras":
        return
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        value = np.zeros(shape) if variable.path.endswith("bias") else rng.normal(0.0, 0.01, shape)
        variable.assign(value.astype(variable.dtype))


def run_stream_batches(train_step, batches, sampling, zeros):
    """Run ``train_step`` over ``batches``; yield (metrics as floats, initial states, final states).

    ``random`` sampling gives every batch ``zeros``; ``consecutive`` gives each
    batch the previous batch's final states (the step stops their gradient).
    """
    states = zeros
    for inputs, targets in batches:
        if sampling != "consecutive":
            states = zeros
        metrics, final = train_step((inputs, targets, states))
        yield tuple(float(m) for m in metrics), states, final
        states = final


def sample_streams(decoder, vocab, count, seed):
    """Greedy continuations of the lessons' prefixes (those the vocabulary has), as d2l prints them."""
    prefixes = [p for p in SAMPLE_PREFIXES if all(c in vocab for c in p)][: max(count, 1)]
    prefixes = prefixes or [c for c in vocab.chars if c.strip()][:1]
    greedy = SamplingOptions(temperature=0.0, best_of=1, seed=seed)
    texts = drafts.continue_streams(decoder, vocab, prefixes, SAMPLE_LENGTH, greedy)
    return "\n\n".join(t.content for t in texts)
