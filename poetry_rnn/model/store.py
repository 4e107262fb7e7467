"""A model directory holds everything needed to use a trained model again.

    model_dir/
      config.json     format version, model hyper-parameters, training settings
      vocab.txt       one token per line, line number = id
      ckpt/           tf.train.CheckpointManager checkpoints (model, optimizer, step)
      logs/           TensorBoard event files (train/, valid/)
      weights.npz     optional compact float16 weights (the shipped default model)
      ci/             optional: a model directory of its own that writes ci (``poet.Poet.poet_for``)

``load`` gives every entry point a ready model from a path: it builds the
network from config.json and restores the newest checkpoint, or weights.npz
when there are no checkpoints (a shipped model carries no optimizer state).
"""

import contextlib
import dataclasses
import glob
import json
import os
import re
import shutil
import zipfile

import numpy as np
import tensorflow as tf

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model import training_poems
from poetry_rnn.model.network import FORMAT_VERSION, ModelConfig, PoetryModel, precision, variable_shapes
from poetry_rnn.model.vocab import Vocab

CONFIG = "config.json"
VOCAB = "vocab.txt"
CHECKPOINTS = "ckpt"
LOGS = "logs"
WEIGHTS = "weights.npz"
CI_COMPANION = "ci"
CONFIG_KEYS = {"format_version", "model", "train", "vocab_fingerprint"}

def _default_model_dir():
    """The shipped model: inside the installed package (a wheel, ``pip install .``), else the checkout's."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(package, "default_model")
    return installed if os.path.isdir(installed) else os.path.join(os.path.dirname(package), "checkpoints", "default")


DEFAULT_MODEL_DIR = _default_model_dir()


@dataclasses.dataclass
class Loaded:
    model: PoetryModel
    vocab: Vocab
    config: ModelConfig
    train: dict
    path: str


def exists(model_dir):
    return os.path.exists(os.path.join(model_dir, CONFIG))


def save_config(model_dir, config, vocab, train_settings):
    """Write vocab.txt and config.json (each atomically)."""
    os.makedirs(model_dir, exist_ok=True)
    vocab.save(os.path.join(model_dir, VOCAB))
    data = {
        "format_version": FORMAT_VERSION,
        "model": config.to_dict(),
        "train": train_settings,
        "vocab_fingerprint": vocab.fingerprint,
    }
    files.write_text(os.path.join(model_dir, CONFIG), json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def read_config(model_dir):
    """(ModelConfig, train settings, Vocab) from a model directory, fully checked."""
    path = os.path.join(model_dir, CONFIG)
    if not os.path.isdir(model_dir):
        raise PoetryError(f"model directory not found: {model_dir}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise PoetryError(f"{model_dir} is not a model directory (no {CONFIG}); train one with python -m poetry_rnn.train") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PoetryError(f"{path} is not valid JSON: {error}") from None
    except OSError as error:
        raise PoetryError(f"cannot read {path}: {error.strerror or error}") from None
    if not isinstance(data, dict):
        raise PoetryError(f"{path} is not a config object")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PoetryError(f"{path} has no valid format_version (got {version!r})")
    if version > FORMAT_VERSION:
        raise PoetryError(f"{path} has format version {version}; this poetry_rnn reads up to {FORMAT_VERSION}, upgrade it")
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise PoetryError(f"{path}: unknown fields {', '.join(unknown)}")
    for key in ("model", "train"):
        if not isinstance(data.get(key, {}), dict):
            raise PoetryError(f"{path}: {key!r} must be an object, not {type(data[key]).__name__}")
    config = ModelConfig.from_dict(data.get("model", {}), source=path)
    vocab = Vocab.load(os.path.join(model_dir, VOCAB))
    if vocab.fingerprint != data.get("vocab_fingerprint") or len(vocab) != config.vocab_size:
        raise PoetryError(f"{model_dir}: {VOCAB} does not match {CONFIG} (the vocabulary file was changed)")
    return config, data.get("train", {}), vocab


def checkpoint_dir(model_dir):
    return os.path.join(model_dir, CHECKPOINTS)


def latest_checkpoint(model_dir):
    """The newest checkpoint prefix in ``model_dir/ckpt``, or None if there is none.

    TensorFlow treats a damaged ``checkpoint`` state file (or one naming a
    checkpoint whose files are gone) as "no checkpoint": ``write`` would then
    say there are no weights and ``train`` would silently start again from
    step 0. Here that is a one-line error instead. With no state file at all
    it is None: a run killed during its first save leaves only unreferenced
    pieces behind, and the next run overwrites them.
    """
    folder = checkpoint_dir(model_dir)
    state = os.path.join(folder, "checkpoint")
    if not os.path.exists(state):
        return None
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("CRITICAL")  # TF logs its own warnings about a bad state file
    try:
        latest = tf.train.latest_checkpoint(folder)
    except (ValueError, tf.errors.OpError):  # an empty or unparsable state file
        latest = None
    finally:
        logger.setLevel(level)
    if latest is None:
        found = sorted(glob.glob(os.path.join(glob.escape(folder), "*.index")))
        names = ", ".join(os.path.basename(f)[: -len(".index")] for f in found) or "no checkpoints"
        raise PoetryError(
            f"{state} is damaged or names a checkpoint that is gone (the folder holds {names}); "
            f"repair or delete that file, or move {folder} away"
        )
    return latest


def remove_interrupted_saves(model_dir):
    """Delete what a save cut short by kill -9 left in ``model_dir/ckpt``; return the names.

    TensorFlow writes a checkpoint's shards under ``ckpt-N_temp/`` and
    removes that folder when the save completes; a killed save leaves it
    (as much as a whole checkpoint), and a later save of step N cannot
    remove it because it is not empty. ``checkpoint.tmp*`` is a state file
    that never got renamed. Neither is ever read. (A partial ``ckpt-N.index``
    or ``.data`` of a step the state file does not name stays: the resumed
    run writes step N again over it.) Only the chief trainer calls this.
    """
    folder = checkpoint_dir(model_dir)
    removed = []
    pattern = os.path.join(glob.escape(folder), "{}")
    for path in sorted(glob.glob(pattern.format("ckpt-*_temp")) + glob.glob(pattern.format("checkpoint.tmp*"))):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
        removed.append(os.path.basename(path))
    return removed


def error_reason(error):
    """The readable part of a TensorFlow or OS error, for a one-line message.

    ``{{function_node ...}} /path/ckpt-4_temp/part-...tempstate123; File too large
    [Op:SaveV2]`` becomes ``File too large``.
    """
    text = (str(error).strip().splitlines() or [""])[0]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    text = text.rsplit("; ", 1)[-1].strip()
    return text[:200] or type(error).__name__


def restore_checkpoint(checkpoint, path):
    """Restore ``path`` into ``checkpoint``; a damaged file is a one-line error."""
    try:
        return checkpoint.read(path)
    except Exception as error:  # OpError, ValueError, IndexError (a truncated .data file), ...
        raise PoetryError(f"cannot read checkpoint {path}: {error_reason(error)}") from None


def load(model_dir, policy="float32"):
    """A ready-to-use model from ``model_dir``: config, vocabulary, weights, computing under Keras dtype ``policy``.

    Everything that says how much memory the model takes (config.json's
    sizes, weights.npz's array headers) is checked before the model is built
    or any array decompressed.
    """
    config, train_settings, vocab = read_config(model_dir)
    latest = latest_checkpoint(model_dir)
    weights = os.path.join(model_dir, WEIGHTS)
    if not latest:
        if not os.path.exists(weights):
            raise PoetryError(f"{model_dir} has no trained weights (no checkpoint in {CHECKPOINTS}/ and no {WEIGHTS})")
        members = check_weights(weights, config)
    # Computing in float32 whatever it trained in, or in ``policy``; a checkpoint's float32
    # variables restore only into float32 ones, so that model is recast below.
    with precision("float32" if latest else policy):
        model = PoetryModel(config, initialize=False)
    if latest:
        # The model's weights only: the optimizer's slots stay in the checkpoint, unread.
        restore_checkpoint(tf.train.Checkpoint(model=model), latest).expect_partial()
    else:
        load_weights(model, weights, members)
    bad = [v.path for v in model.weights if not np.all(np.isfinite(v.numpy()))]
    if bad:
        hint = "; use an earlier checkpoint" if latest else ""
        raise PoetryError(f"the weights in {latest or weights} hold NaN or infinite values ({bad[0]}){hint}")
    if model.dtype_policy.name != policy:
        model = model.recast(policy)
    return Loaded(model, vocab, config, train_settings, model_dir)


def save_weights(model, path, dtype=np.float16):
    """Compact weights for shipping: one array per variable path, cast to ``dtype``."""
    with files.atomic_write(path, "wb") as handle:
        np.savez_compressed(handle, **{v.path: np.asarray(v.numpy(), dtype) for v in model.weights})


def array_headers(path):
    """{member name: (shape, dtype)} of the arrays in an .npz, from their .npy headers alone.

    Only the first bytes of each member are decompressed: a 5 MB file whose
    member would expand to gigabytes costs nothing to look at.
    """
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        raise ValueError(f"{info.filename}: .npy format {version} is not one this package writes")
                    shape, _, dtype = read_header(member)
                headers[info.filename.removesuffix(".npy")] = (shape, dtype)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise PoetryError(f"cannot read weights {path}: {error.strerror if isinstance(error, OSError) and error.strerror else error}") from None
    return headers


def check_weights(path, config):
    """{variable key: .npz member} for ``config``'s model; PoetryError unless every array fits it exactly.

    An array of the wrong shape, a missing or an extra one, or one that is not
    floating point, is refused from its header, before anything is decompressed.
    """
    headers = array_headers(path)
    expected = variable_shapes(config)
    members = {}
    for name, (shape, dtype) in headers.items():
        key = name.split("/", 1)[-1]
        if key not in expected or key in members:
            raise PoetryError(f"weights {path} do not fit this model ({name!r} is none of its variables)")
        if shape != expected[key] or dtype.kind != "f":
            raise PoetryError(
                f"weights {path} do not fit this model (variable {key}: the file holds {dtype} {shape}, "
                f"{CONFIG} needs {expected[key]})"
            )
        members[key] = name
    missing = sorted(set(expected) - set(members))
    if missing:
        raise PoetryError(f"weights {path} do not fit this model (variable {missing[0]} is missing)")
    return members


def weight_name(variable):
    """``variable.path`` less the model's own name (which Keras numbers per process): ``lstm_0/lstm_cell/kernel``."""
    return variable.path.split("/", 1)[1]


def load_weights(model, path, members):
    """Load the checked arrays ``members`` (from :func:`check_weights`) into ``model``, cast to its variables' dtype."""
    try:
        with np.load(path) as stored:
            for variable in model.weights:
                variable.assign(stored[members[weight_name(variable)]].astype(variable.dtype))
    except Exception as error:  # zipfile, zlib and OS errors all mean "damaged"
        raise PoetryError(f"cannot read weights {path}: {error}") from None


def save_compact(loaded, out_dir):
    """Write a shippable copy of a loaded model: config, vocabulary, float16 weights, its training poems' fingerprints.

    No optimizer state, checkpoints or logs: what ``load`` needs and nothing
    more (the shipped default model is ~17 MB this way, a checkpoint with
    Adam's moments ~105 MB).
    """
    save_config(out_dir, loaded.config, loaded.vocab, shippable_settings(loaded.train))
    save_weights(loaded.model, os.path.join(out_dir, WEIGHTS))
    known = training_poems.load(loaded.path)
    if known is not None:
        known.save(out_dir)


def shippable_settings(train):
    """The training settings with no path of the machine that trained them: an absolute
    ``init_from`` (``/home/me/runs/stage2``) keeps only its last part (``stage2``), which the model card explains."""
    train = dict(train)
    if os.path.isabs(train.get("init_from") or ""):
        train["init_from"] = os.path.basename(os.path.normpath(train["init_from"]))
    return train
