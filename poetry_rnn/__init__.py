"""poetry_rnn: character-level RNN poets (SimpleRNN, LSTM, GRU) in TensorFlow/Keras.

One module per stage: ``prepare`` (corpus JSON -> poems.txt), ``train``
(poems.txt -> model directory), ``write`` (model directory -> poems),
``evaluate`` and ``export``. See the README for the tour.
"""

import os

__version__ = "0.1.0"


def _import_tensorflow_quietly():
    """Import TensorFlow with its start-up chatter kept off stderr.

    TensorFlow's native code prints oneDNN and missing-CUDA notices while it
    loads and while it first lists devices, before any log level applies; on
    a CPU machine they are noise around our one-line errors. Set
    TF_CPP_MIN_LOG_LEVEL=0 (or 1, 2) to see them. Real import errors still raise.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    # 3: also TensorFlow's run-time notices (e.g. "oneDNN supports DT_BOOL only
    # on platforms with AVX-512", printed at error level while writing poems).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
