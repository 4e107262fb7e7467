"""A model as a SavedModel for TensorFlow Serving, and as the compact folder the default ships in.

The SavedModel holds the network's weights, the vocabulary as lookup tables
and the per-form masks, so it needs neither poetry_rnn nor vocab.txt to run.
Its signature ``generate`` (also ``serving_default``) takes

    begin        string (B,)  begin characters, one poem per element ("" = none)
    form         string ()    free | wujue | qijue | wulv | qilv
    temperature  float32 ()   0 = greedy
    seed         int64 ()     same seed, same poems

and returns ``poems``, string (B,): each poem's content up to its end. It runs
the same sampler as ``write`` (``sampler.Decoder``'s graph) over a tuple of
the same processors: ``Form`` (each form's steps from ``constraints.plan``
for a request with no begin; in the graph, ``Form.force`` gives each begin
character its own mask row), ``NoRepeat`` (``write``'s two-use limit per
character of regular forms; ``NoRepeat.force`` counts begin characters
first), ``EndAfterSentence`` (a free poem ends after 。？！), ``Temperature``
and ``GumbelNoise``. A begin character the step
could not take anyway (not in the vocabulary, not a Han character where a
form needs one, past the first line) fails the request with an
InvalidArgumentError naming it. Rhyme, tones, keywords, top-p, drafts, the
pulls and the reuse penalty are not part of the signature; each call's
poems are written at once, as one round.
"""

import os
import shutil
import sys

import numpy as np
import tensorflow as tf

from poetry_rnn.infra import fields, files
from poetry_rnn.generation import constraints, noise, processors, sampler
from poetry_rnn.verse import forms, poem_request
from poetry_rnn.model import store
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError

SIGNATURE = "generate"
DEFAULT_FREE_MAX_LEN = fields.defaults(poem_request.PoemShape)["max_len"]
SERVING_PROCESSORS = (processors.Form, processors.NoRepeat, processors.EndAfterSentence, processors.Temperature,
                      processors.GumbelNoise)


def form_tables(vocab, free_max_len=DEFAULT_FREE_MAX_LEN, model_config=None):
    """Each form's steps for a request with no begin, over one shared mask table.

    Returns (mask_table (M, V) bool, step_rows (F, T) int32, lengths (F,),
    content_starts (F,), no_repeat (F, T) bool), the forms in
    ``forms.FORM_NAMES`` order: one ``constraints.plan`` for one request per
    form, whose rows are already distinct, whose steps past a form's length
    point at row 0 (EOS only), and whose free steps of a regular form are
    under the two-use limit.
    """
    requests = [poem_request.PoemRequest(form=name, max_len=free_max_len) for name in forms.FORM_NAMES]
    plan = constraints.plan(requests, vocab, model_config)
    return plan.mask_table, plan.step_masks, plan.lengths, plan.content_start, plan.no_repeat


class ServingModule(tf.Module):
    """What the SavedModel holds: model, lookup tables, per-form masks and the ``generate`` function."""

    def __init__(self, model, vocab, free_max_len=DEFAULT_FREE_MAX_LEN):
        super().__init__(name="poet")
        self.model = model
        self.decoder = sampler.Decoder(model, SERVING_PROCESSORS)
        mask_table, step_rows, lengths, starts, no_repeat = form_tables(vocab, free_max_len, model.config)
        self.vocab_size = len(vocab)
        self.mask_table = tf.constant(mask_table)
        self.step_rows = tf.constant(step_rows)
        self.lengths = tf.constant(lengths)
        self.content_starts = tf.constant(starts)
        self.no_repeat = tf.constant(no_repeat)
        self.closes = tf.constant(np.isin(vocab.tokens, list(forms.COUPLET_END)))  # EndAfterSentence's marks
        self.char_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocab.chars, tf.string),
                tf.constant(np.arange(len(vocab_lib.RESERVED), len(vocab)), tf.int32),
            ),
            default_value=vocab_lib.UNK,
        )
        self.form_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(forms.FORM_NAMES), tf.range(len(forms.FORM_NAMES))),
            default_value=-1,
        )
        # Token id -> text: reserved tokens print as nothing, UNK as □ (as Vocab.decode).
        texts = ["", "□", "", "", ""] + list(vocab.chars)
        self.texts = tf.constant(texts, tf.string)

    @tf.function(
        autograph=False,  # explicit graph ops only; see sampler.Decoder
        input_signature=[
            tf.TensorSpec([None], tf.string, name="begin"),
            tf.TensorSpec([], tf.string, name="form"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ]
    )
    def generate(self, begin, form, temperature, seed):
        form_id = self.form_ids.lookup(form)
        checks = [
            tf.debugging.assert_non_negative(form_id, message=f"unknown form; choose one of {', '.join(forms.FORM_NAMES)}"),
            tf.debugging.Assert(tf.math.is_finite(temperature) & (temperature >= 0),
                                ["temperature must be a finite number >= 0, got", temperature]),
        ]
        with tf.control_dependencies(checks):
            form_id = tf.identity(form_id)
        length, start = self.lengths[form_id], self.content_starts[form_id]
        rows = self.step_rows[form_id, :length]  # (T,)
        batch = tf.shape(begin)[0]

        # Begin characters: position start + i of poem b gets its own one-hot mask row.
        chars = tf.strings.unicode_split(begin, "UTF-8")
        ids = self.char_ids.lookup(chars.flat_values)  # (N,)
        poem = tf.cast(chars.value_rowids(), tf.int32)
        position = start + tf.cast(tf.ragged.range(chars.row_lengths()).flat_values, tf.int32)
        inside = position < length - 1  # the last step is the end of the poem
        at = tf.minimum(position, length - 1)
        fits = inside & tf.gather_nd(self.mask_table, tf.stack([tf.gather(rows, at), ids], axis=1))
        checks = [tf.debugging.Assert(
            tf.reduce_all(fits),
            ["begin character(s) not allowed at their place in this form (not in the vocabulary, "
             "not a Han character, or longer than the first line):", tf.boolean_mask(chars.flat_values, ~fits)],
        )]
        with tf.control_dependencies(checks):
            ids = tf.identity(ids)
        step_masks = tf.tile(rows[None, :], [batch, 1])
        no_repeat = tf.tile(self.no_repeat[form_id, :length][None, :], [batch, 1])
        counts = tf.zeros([batch, self.vocab_size], tf.int8)
        mask_table, step_masks = processors.Form.force(self.mask_table, step_masks, poem, at, ids)
        no_repeat, counts = processors.NoRepeat.force(no_repeat, counts, poem, at, ids)
        loop = {"lengths": tf.fill([batch], length), "content_start": tf.fill([batch], start),
                "start": tf.fill([batch], vocab_lib.BOS)}
        arrays = ({"mask_table": mask_table, "step_masks": step_masks},
                  {"no_repeat": no_repeat, "fixed_counts": counts},
                  {"free": tf.fill([batch], tf.equal(form, forms.FREE)), "closes": self.closes},
                  {"temperature": tf.fill([batch], temperature)},
                  # poem b of the request, as write keys it
                  {"keys": noise.row_key(seed, tf.range(batch, dtype=tf.int64), 0), "greedy": tf.fill([batch], temperature <= 0)})
        tokens = self.decoder.decode_graph(loop, arrays)[0]
        content = tokens[:, start:]
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(content, vocab_lib.EOS), tf.int32), axis=1), 0)
        text = tf.where(before_end, tf.gather(self.texts, content), "")
        return {"poems": tf.strings.reduce_join(text, axis=1)}


def export_compact(model_dir, out):
    """Write config, vocabulary and float16 weights of ``model_dir`` to ``out`` (the shipped form).

    The folder is built beside ``out`` and swapped in whole, so an
    interrupted export never leaves a mix of old and new files; the next
    export first puts back (or clears away) what an interrupted one left.
    """
    recovered = files.finish_interrupted_swap(out)
    if recovered:
        print(recovered, file=sys.stderr)
    loaded = store.load(model_dir)
    with files.staging_folder(out) as staging:
        store.save_compact(loaded, staging)
        for name in os.listdir(out) if os.path.isdir(out) else []:
            if name not in os.listdir(staging):  # keep the model card and anything else beside the model
                source = os.path.join(out, name)
                (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source, os.path.join(staging, name))
        files.swap_folder(staging, out)
    return out


def export(model_dir, out, free_max_len=DEFAULT_FREE_MAX_LEN):
    """Write ``model_dir``'s model as a SavedModel with the ``generate`` signature to ``out``.

    It is written into a staging folder beside ``out`` and renamed into place,
    so TensorFlow Serving, watching the parent folder, never sees half a version.
    """
    if os.path.exists(out) and os.listdir(out):
        raise PoetryError(f"{out} already exists and is not empty; TensorFlow Serving wants a new version folder")
    if free_max_len < 1:
        raise PoetryError(f"--free_max_len must be positive, got {free_max_len}")
    loaded = store.load(model_dir)  # float32, whatever the model trained in
    module = ServingModule(loaded.model, loaded.vocab, free_max_len)
    function = module.generate.get_concrete_function()
    with files.staging_folder(out) as staging:
        tf.saved_model.save(module, staging, signatures={SIGNATURE: function, "serving_default": function})
        os.replace(staging, out)  # onto nothing, or an empty folder
    return out
