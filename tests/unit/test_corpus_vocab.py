import pytest

from poetry_rnn.corpus import reading
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.vocab import Vocab


def test_parse_line_splits_on_first_ascii_or_fullwidth_colon():
    assert reading.parse_line("静夜思:床前明月光，疑是地上霜。")[0] == reading.CorpusPoem("静夜思", "床前明月光，疑是地上霜。")
    assert reading.parse_line("静夜思：床前明月光。")[0].title == "静夜思"
    assert reading.parse_line(":无题之诗。")[0] == reading.CorpusPoem("", "无题之诗。")


@pytest.mark.parametrize(
    "line, reason",
    [("no colon here", "no colon"), ("title:   ", "empty content"), ("t:" + "字" * 201, "content over 200 characters"), ("t:a:b", "colon in content")],
)
def test_malformed_lines_are_skipped_with_a_reason(line, reason):
    assert reading.parse_line(line) == (None, reason)


def test_read_poems_counts_skips(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a:春眠不觉晓。\nbad line\nb:\n\nc:" + "字" * 300 + "\n", encoding="utf-8")
    poems, stats = reading.read_poems(path)
    assert [p.title for p in poems] == ["a"]
    assert stats.skipped == {"no colon": 1, "empty content": 1, "content over 200 characters": 1}
    assert "kept 1 poems" in stats.summary()


def test_non_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes("a:春眠不觉晓。\n".encode() + "b:处处闻啼鸟。\n".encode("gbk"))
    with pytest.raises(PoetryError, match=r"p\.txt:2: not valid UTF-8"):
        reading.read_poems(path)


def test_missing_and_empty_files_are_errors(tmp_path):
    with pytest.raises(PoetryError, match="not found"):
        reading.read_poems(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(PoetryError, match="no usable poems"):
        reading.read_poems(tmp_path / "empty.txt")


def test_vocab_reserved_ids_frequency_order_and_min_count():
    v = Vocab.build(["春春春花花月", "春花秋"], min_count=2)
    assert v.tokens[: len(vocab_lib.RESERVED)] == list(vocab_lib.RESERVED)
    assert v.chars == ["春", "花"]  # 月 and 秋 seen once -> UNK
    assert v.encode("春秋") == [5, vocab_lib.UNK]
    assert v.decode([5, 6, vocab_lib.EOS, 5]) == "春花"


def test_vocab_round_trips_through_its_file(tmp_path):
    v = Vocab.build(["白日依山尽 黄河入海流"], min_count=1)
    v.save(tmp_path / "vocab.txt")
    loaded = Vocab.load(tmp_path / "vocab.txt")
    assert loaded == v and loaded.fingerprint == v.fingerprint
    assert " " in loaded  # a space is an ordinary token (lyrics streams)


def test_truncated_vocab_file_is_an_error(tmp_path):
    (tmp_path / "vocab.txt").write_text("<pad>\n<unk>")
    with pytest.raises(PoetryError):
        Vocab.load(tmp_path / "vocab.txt")
