"""poetry_rnn: character-level RNN poets (SimpleRNN, LSTM, GRU) in TensorFlow/Keras.

One module per stage: ``prepare`` (corpus JSON -> poems.txt), ``train``
(poems.txt -> model directory), ``write`` (model directory -> poems),
``evaluate`` and ``export``. See the README for the tour.
"""

__version__ = "0.1.0"
