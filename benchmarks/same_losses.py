"""Same seed, same losses: tiny runs on synthetic data whose every number can be compared across commits.

    PYTHONPATH=. python benchmarks/same_losses.py > after.txt     # in a checkout, at each commit

Four runs (LSTM and GRU poems, with cosine and dropout; LSTM and one-hot RNN
lyrics, consecutive and random sampling, the book's SGD and init) print each
epoch's train loss and validation perplexity in full precision, and two
poems. A refactoring that changes no behaviour prints the same bytes (for poems
across a change of the Python API, ``same_poems.py`` compares what ``write`` prints).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from conftest import synthetic_poems, write_poems  # noqa: E402
from poetry_rnn.generation import drafts, sampler
from poetry_rnn.options import SamplingOptions
from poetry_rnn.model import store
from poetry_rnn.verse import poem_request
from poetry_rnn.training import trainer  # noqa: E402

TINY = dict(units=16, embed_dim=8, layers=2, batch_size=32, epochs=3, samples=0, quiet=True, seed=7, learning_rate=1e-2)
RUNS = {
    "lstm-poems": dict(corpus="poems", cell="lstm"),
    "gru-poems-cosine": dict(corpus="poems", cell="gru", lr_schedule="cosine", dropout=0.1),
    "lstm-lyrics-consecutive": dict(corpus="lyrics", cell="lstm", sampling="consecutive", num_steps=10, batch_size=8),
    "rnn-lyrics-random-onehot": dict(corpus="lyrics", cell="rnn", input="onehot", num_steps=10, batch_size=8, init="normal",
                                     optimizer="sgd", learning_rate=1.0, clip_norm=1.0),
}


def main():
    make = getattr(trainer.TrainOptions, "of", trainer.TrainOptions)
    with tempfile.TemporaryDirectory() as folder:
        data = {"poems": write_poems(os.path.join(folder, "poems.txt"), synthetic_poems(150)),
                "lyrics": os.path.join(folder, "lyrics.txt")}
        with open(data["lyrics"], "w", encoding="utf-8") as handle:
            handle.write("\n".join(content for _, content in synthetic_poems(60, seed=3)))
        for name, settings in RUNS.items():
            model_dir = os.path.join(folder, name)
            history = trainer.fit(data[settings["corpus"]], model_dir, make(**{**TINY, **settings}))
            print(name, "steps", history.step)
            print("  train_loss", [repr(x) for x in history.train_loss])
            print("  valid_ppl ", [repr(x) for x in history.valid_perplexity])
            if settings["corpus"] == "poems":
                loaded = store.load(model_dir)
                requests = [poem_request.PoemRequest(begin="春", max_len=40)] * 2
                print("  poems", [p.content for p in drafts.generate(sampler.Decoder(loaded.model), loaded.vocab, requests, SamplingOptions.plain(temperature=0.8, seed=1))])


if __name__ == "__main__":
    main()
