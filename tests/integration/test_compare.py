"""compare: a grid of tiny runs on a synthetic stream, its table, chart and samples."""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import pytest  # noqa: E402

from poetry_rnn.evaluation import compare
from poetry_rnn.training import trainer  # noqa: E402
from poetry_rnn.infra.errors import PoetryError  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402
from conftest import run_module  # noqa: E402
from test_lyrics import write_stream  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    data = write_stream(folder / "lyrics.txt")
    options = trainer.TrainOptions.of(corpus="lyrics", epochs=2, units=16, embed_dim=8, layers=1, batch_size=4,
                                      num_steps=10, min_count=1, learning_rate=1e-2, samples=0)
    # "nope" is not a cell: that configuration fails, and the two others must not.
    grid = compare.CompareOptions(data=data, out=str(folder / "out"), cells=["rnn", "nope", "gru"], inputs=["onehot"],
                                  prefix="春花", samples=2, sample_length=12)
    result = compare.compare(grid, options, log=lambda *a: None)
    return folder, data, result


def test_the_table_has_every_configuration_and_the_failure(report):
    _, _, result = report
    rows = [line for line in result.table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) == 3
    by_cell = {row.split("|")[1].strip(): row for row in rows}
    assert by_cell["rnn"].rstrip(" |").endswith("ok") and by_cell["gru"].rstrip(" |").endswith("ok")
    assert "failed: OptionError: --cell must be one of rnn, lstm, gru, got 'nope'" in by_cell["nope"]  # a PoetryError
    ok = [run for run in result.runs if run.ok]
    assert [run.name for run in ok] == ["rnn-onehot", "gru-onehot"]
    for run in ok:
        assert run.parameters > 0 and run.train_loss > 0 and run.valid_perplexity > 1 and run.tokens_per_second > 0
        assert len(run.history.train_loss) == 2
        assert run.best_valid_perplexity == min(run.history.valid_perplexity) and run.best_valid_epoch in (1, 2)
    readme = open(result.readme, encoding="utf-8").read()
    assert result.table in readme and "![loss curves](loss.png)" in readme
    results = json.load(open(result.results, encoding="utf-8"))
    assert [r["error"] is None for r in results["runs"]] == [True, False, True]


def test_the_chart_is_a_png_with_one_curve_per_finished_run(report):
    _, _, result = report
    with open(result.chart, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(result.chart)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert result.plot_labels == ["rnn-onehot", "gru-onehot"]


def test_runs_leave_tensorboard_logs_and_samples_from_the_same_prefix(report):
    _, _, result = report
    for run in result.runs:
        if not run.ok:
            continue
        assert run.model_dir.startswith(os.path.join(os.path.dirname(result.readme), "logs"))
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(run.model_dir, "logs", "train")))
        sampled = f"T={SamplingOptions().temperature:g}"
        assert [label for label, _ in run.samples] == ["greedy", sampled, sampled]
        assert all(text.startswith("春花") and len(text) == 2 + 12 for _, text in run.samples)


def test_an_earlier_run_is_not_silently_resumed(report):
    folder, data, _ = report
    with pytest.raises(PoetryError, match="earlier run.*--overwrite"):
        compare.compare(compare.CompareOptions(data=data, out=str(folder / "out"), cells=["rnn"], inputs=["onehot"]),
                        log=lambda *a: None)


def test_the_command_line_takes_space_separated_lists():
    result = run_module("compare", "--cells", "rnn", "bogus", "--inputs", "onehot")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --cells must be one of rnn, lstm, gru, got 'bogus'"


def test_errors_are_described_on_one_line():
    assert compare.describe(PoetryError("bad\nmore")) == "PoetryError: bad"
    assert compare.describe(KeyError("in user code:\n\n    File x, line 3\n\n    KeyError: 'h'")) == "KeyError: KeyError: 'h'"
