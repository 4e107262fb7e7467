"""Training progress that fits where it goes: a live bar on a terminal, plain lines in a log.

Keras' ``Progbar`` redraws one line in place, which a terminal shows as a
live bar; written to a file (``train ... > log``, ``nohup``) the same frames
pile up by the thousand. So a bar only where stdout is a terminal, and
elsewhere one plain line every ``log_every`` steps (the epoch's summary line
comes from the loop, on stderr, either way).
"""

import sys

import keras


class EpochProgress:
    """Progress through one epoch's ``batches`` batches."""

    def __init__(self, batches, epoch, epochs, log_every):
        self.batches, self.epoch, self.epochs, self.log_every = batches, epoch, epochs, log_every
        live = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        self.bar = keras.utils.Progbar(batches, stateful_metrics=["loss", "tok/s"]) if live else None

    def update(self, step, batch, loss, tokens_per_second):
        """After ``step`` (counted over the run) that finished ``batch`` of this epoch."""
        if self.bar is not None:
            self.bar.update(min(batch, self.batches), [("loss", loss), ("tok/s", tokens_per_second)])
        elif step % self.log_every == 0:
            print(f"step {step}: epoch {self.epoch + 1}/{self.epochs}, batch {batch}/{self.batches}, "
                  f"loss {loss:.4f}, {tokens_per_second:,.0f} tokens/s", flush=True)
