"""Tests for poetry_rnn.prepare and poetry_rnn.corpus.cleaning: cleaning rules, sources, errors, atomic output.

Every fixture poem is invented for these tests (traditional characters where
conversion matters); nothing is copied from the real corpus. The one test on
the real corpus reads it in place and is skipped when it is absent.
"""

import contextlib
import hashlib
import http.server
import io
import json
import pathlib
import threading
import zipfile

import pytest
from conftest import SHARED_CORPUS, run_module

from poetry_rnn.corpus import cleaning, reading, split
from poetry_rnn.infra import fetch, files
from poetry_rnn.verse import forms, prosody
from poetry_rnn.corpus import prepare
from poetry_rnn.infra.errors import PoetryError

CORPUS = pathlib.Path(SHARED_CORPUS)

# Invented verse: a 五绝 in traditional characters and its simplified form.
JUE = ["東風來萬里，", "無雲過山時。", "江上爲誰去，", "花開鳥自飛。"]
JUE_SIMPLE = "东风来万里，无云过山时。江上为谁去，花开鸟自飞。"
# An invented 七绝 (simplified already, conversion leaves it alone).
QIJUE = ["春山一夜雨声多，", "白水青林过小河。", "独坐高楼看落日，", "清风明月共谁歌。"]


def entry(title, paragraphs, **extra):
    return {"author": "无名", "title": title, "paragraphs": paragraphs, "id": "x", **extra}


def write_json(folder, number, entries):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"poet.tang.{number}.json"
    path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return path


def prepared_table(tmp_path, flag, entries):
    """``prepare`` run on ``entries`` with a table ``flag`` (e.g. --line_end_table): (the training split of the
    prepared poems, {first column: the other columns} of the table it wrote)."""
    write_json(tmp_path / "corpus", 0, entries)
    out, table = tmp_path / "poems.txt", tmp_path / "table.tsv"
    result = run_module("prepare", "--source", str(tmp_path / "corpus"), "--out", str(out), flag, str(table))
    assert result.returncode == 0, result.stderr
    train, _ = split.split_train_valid(reading.read_poems(str(out))[0], 0.02)
    with open(table, encoding="utf-8") as handle:
        return train, {line.split("\t")[0]: line.rstrip("\n").split("\t")[1:] for line in handle if line[0] != "#"}


def read_lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def clean(paragraphs, title="题", **kwargs):
    return cleaning.clean_poem(title, paragraphs, **kwargs)


# --- clean_poem: conversion and each rule -------------------------------------


def test_converts_to_simplified_and_cleans_the_title():
    poem = clean(JUE, title="東風 二首：其一\t")
    assert poem.content == JUE_SIMPLE
    assert poem.title == "东风二首其一"
    assert poem.dropped is None
    assert poem.changes == {"title"}


@pytest.mark.parametrize(
    "note",
    ["（一作「雨」）", "(一作雨)", "【校記】", "〔原注〕", "〖1〗", "（見《某集》卷〖三〗〔注〕）"],
)
def test_editorial_notes_are_removed_with_their_text(note):
    poem = clean(["東風來萬里" + note + "，", "無雲過山時。"])
    assert poem.content == "东风来万里，无云过山时。"
    assert "notes" in poem.changes


def test_han_means_what_prosody_means_so_the_ideographic_zero_is_kept():
    # One definition of a Han character (prosody.is_han): 〇 (U+3007) is one, ○ (U+25CB, a circle) is not.
    assert prosody.is_han("〇") and not prosody.is_han("○")
    assert clean(["東風〇萬里，", "無雲過山時。"]).dropped is None
    assert clean(["東風○萬里，", "無雲過山時。"]).dropped == "non_han"


def test_a_note_spanning_paragraphs_is_removed():
    poem = clean(["東風來萬里，無雲過山時。（此詩", "又見某集。）"])
    assert poem.content == "东风来万里，无云过山时。"


def test_square_brackets_keep_supplied_characters_and_drop_footnote_marks():
    poem = clean(["東風[來]萬里[一]，", "無雲過山時［二］。"])
    assert poem.content == "东风来万里，无云过山时。"
    assert {"supplied", "footnote_marks"} <= poem.changes


def test_an_unclosed_note_runs_to_the_end():
    poem = clean(JUE + ["（見《某書》卷三"])
    assert poem.content == JUE_SIMPLE
    assert "unclosed_note" in poem.changes


def test_a_stray_closing_bracket_drops_the_poem():
    assert clean(["東風來萬里）", "無雲過山時。"]).dropped == "unmatched_bracket"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("東風來萬里；無雲過山時", "东风来万里。无云过山时"),
        ("東風來萬里：無雲過山時", "东风来万里，无云过山时"),
        ("東風、萬里", "东风，万里"),
        ("東風,萬里.無雲;過山:時?花!", "东风，万里。无云。过山，时？花！"),
        ("東風﹐萬里．無雲﹔過山﹕時﹖花﹗", "东风，万里。无云。过山，时？花！"),
    ],
)
def test_other_punctuation_maps_onto_the_four_kept_marks(raw, expected):
    poem = clean([raw])
    assert poem.content == expected
    assert "punctuation" in poem.changes


def test_quote_and_title_marks_and_spaces_are_dropped_keeping_the_words():
    poem = clean(["「東風」來《萬里》，", "『無雲』 過〈山〉時“花”。"])
    assert poem.content == "东风来万里，无云过山时花。"
    assert "marks" in poem.changes


def test_leading_and_doubled_punctuation_is_tidied_keeping_the_first_mark():
    poem = clean(["（注）。東風來萬里！。", "無雲過山時？（一作X）。"])
    assert poem.content == "东风来万里！无云过山时？"
    assert "stray_punctuation" in poem.changes


@pytest.mark.parametrize(
    "paragraphs, rule",
    [
        ([], "empty"),
        (["", "（只有注）"], "empty"),
        (["東風來萬里，", "無□過山時。"], "non_han"),
        (["東風○萬里，"], "non_han"),
        (["東風{艹/尔}萬里，"], "non_han"),
        (["東風⿰木養萬里，"], "non_han"),
        (["東風來萬里……"], "non_han"),
        (["東風\ue829萬里，"], "non_han"),
        (["東風來萬里 ok，"], "latin_digit"),
        (["東風來3里，"], "latin_digit"),
        (["東風來３里，"], "latin_digit"),
    ],
)
def test_drop_rules(paragraphs, rule):
    assert clean(paragraphs).dropped == rule


def test_max_len_counts_content_characters_including_punctuation():
    assert clean(JUE, max_len=len(JUE_SIMPLE)).dropped is None
    assert clean(JUE, max_len=len(JUE_SIMPLE) - 1).dropped == "too_long"


def test_forms_only_keeps_regular_shapes():
    assert forms.classify(JUE_SIMPLE) == "wujue"
    assert clean(JUE, forms_only=True).dropped is None
    assert clean(QIJUE, forms_only=True).dropped is None
    assert clean(["東風來萬里，", "無雲過山時。"], forms_only=True).dropped == "not_regular"
    assert clean(["東風來萬里，", "無雲過山時。"]).dropped is None


# --- prepare_poems on small folders --------------------------------------------


@pytest.fixture
def corpus(tmp_path):
    """A folder of two files whose numeric order differs from their name order."""
    folder = tmp_path / "tang"
    write_json(
        folder,
        1000,
        [
            entry("後一", ["東風來萬里，", "無雲過山時。"]),  # duplicate of the one in file 200
            entry("空", ["（無詩）"]),
            entry("壞", ["東風□萬里，"]),
            {"author": "無名", "title": "缺"},  # no paragraphs
            entry("長", ["東風來萬里，" * 40]),
        ],
    )
    write_json(
        folder,
        200,
        [
            entry("先：一", JUE),
            entry("先二", ["東風來萬里，", "無雲過山時。"]),
            entry("拉丁", ["東風 abc，"]),
            entry("段", "not a list"),
            "not a poem",
        ],
    )
    return folder


def test_prepare_poems_keeps_files_in_numeric_order_and_counts_every_rule(corpus, tmp_path):
    out = tmp_path / "poems.txt"
    summary = prepare.prepare_poems(str(corpus), out)
    assert read_lines(out) == [f"先一:{JUE_SIMPLE}", "先二:东风来万里，无云过山时。"]
    assert (summary.files_read, summary.poems_read, summary.kept) == (2, 10, 2)
    assert summary.drops == {
        "duplicate": 1,
        "empty": 1,
        "non_han": 1,
        "malformed": 3,
        "too_long": 1,
        "latin_digit": 1,
    }
    assert summary.kept + sum(summary.drops.values()) == summary.poems_read
    assert summary.changes["notes"] == 1
    assert summary.shapes == {"wujue": 1}
    assert summary.characters == len(JUE_SIMPLE) + len("东风来万里，无云过山时。")
    assert summary.vocabulary == len(set(JUE_SIMPLE))


def test_summary_format_shows_counts_histogram_and_forms(corpus, tmp_path):
    text = prepare.prepare_poems(str(corpus), tmp_path / "poems.txt", max_len=40).format()
    assert "poems read: 10" in text
    assert "poems kept: 2" in text
    assert "duplicate content: 1" in text
    assert "五绝 wujue: 1" in text
    assert "other: 1" in text
    histogram = text.split("length histogram (content characters):\n")[1].split("\nforms")[0].splitlines()
    assert len(histogram) == 10
    assert histogram[2].split() == ["9-12", "#" * 40, "1"]  # 12 characters
    assert histogram[5].split() == ["21-24", "#" * 40, "1"]  # 24 characters


def test_output_is_byte_identical_run_after_run(corpus, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    prepare.prepare_poems(str(corpus), first)
    prepare.prepare_poems(str(corpus), second)
    assert first.read_bytes() == second.read_bytes()


def test_a_bad_json_file_is_skipped_and_named_and_the_others_kept(corpus, tmp_path):
    (corpus / "poet.tang.3000.json").write_text("[{", encoding="utf-8")
    (corpus / "poet.tang.4000.json").write_text('{"not": "a list"}', encoding="utf-8")
    (corpus / "poet.tang.5000.json").write_bytes(b'["\xff"]')
    summary = prepare.prepare_poems(str(corpus), tmp_path / "poems.txt")
    assert summary.kept == 2
    assert [name for name, _ in summary.skipped_files] == [
        "poet.tang.3000.json",
        "poet.tang.4000.json",
        "poet.tang.5000.json",
    ]
    assert "not valid JSON" in summary.skipped_files[0][1]
    assert "expected a JSON array" in summary.skipped_files[1][1]
    assert "not UTF-8" in summary.skipped_files[2][1]
    assert "skipped poet.tang.3000.json: not valid JSON" in summary.format()


def test_other_files_in_the_folder_are_ignored(corpus, tmp_path):
    (corpus / "poet.song.0.json").write_text("[{", encoding="utf-8")
    (corpus / "authors.tang.json").write_text("[]", encoding="utf-8")
    assert prepare.prepare_poems(str(corpus), tmp_path / "poems.txt").files_read == 2


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda tmp: tmp / "missing", "source not found"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no poet.tang.*.json"),
        (
            lambda tmp: (tmp / "x.zip").write_bytes(b"not a zip") and tmp / "x.zip",
            "not a folder of poet.tang.*.json or a valid zip",
        ),
    ],
)
def test_unreadable_sources_are_one_line_errors(tmp_path, make_source, message):
    with pytest.raises(PoetryError, match=message) as error:
        prepare.prepare_poems(str(make_source(tmp_path)), tmp_path / "poems.txt")
    assert "\n" not in str(error.value)


def test_nothing_kept_is_an_error_and_leaves_out_alone(tmp_path):
    write_json(tmp_path / "tang", 0, [entry("空", [])])
    out = tmp_path / "poems.txt"
    out.write_text("old\n", encoding="utf-8")
    with pytest.raises(PoetryError, match="no poems kept"):
        prepare.prepare_poems(str(tmp_path / "tang"), out)
    assert out.read_text(encoding="utf-8") == "old\n"


def test_an_interrupted_write_leaves_the_old_file_and_no_temp_file(corpus, tmp_path, monkeypatch):
    out = tmp_path / "poems.txt"
    out.write_text("old poems\n", encoding="utf-8")
    real_atomic_write = files.atomic_write

    class DiskFull:
        def __init__(self, handle):
            self.handle, self.writes = handle, 0

        def write(self, text):
            self.writes += 1
            if self.writes > 1:
                raise OSError(28, "No space left on device")
            return self.handle.write(text)

    @contextlib.contextmanager
    def failing_atomic_write(path, *args, **kwargs):
        with real_atomic_write(path, *args, **kwargs) as handle:
            yield DiskFull(handle)

    monkeypatch.setattr(files, "atomic_write", failing_atomic_write)
    with pytest.raises(PoetryError, match="cannot write .*No space left on device"):
        prepare.prepare_poems(str(corpus), out)
    assert out.read_text(encoding="utf-8") == "old poems\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poems.txt", "tang"]


# --- zip and URL sources -------------------------------------------------------


def zip_of(folder, top="chinese-poetry-master/全唐诗/"):
    """The bytes of a zip holding ``folder``'s files under ``top`` (like GitHub's archive)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("chinese-poetry-master/README.md", "readme")
        for path in sorted(folder.iterdir()):
            archive.write(path, top + path.name)
    return buffer.getvalue()


def test_a_zip_of_the_repository_gives_the_same_output_as_the_folder(corpus, tmp_path):
    source = tmp_path / "master.zip"
    source.write_bytes(zip_of(corpus))
    from_folder, from_zip = tmp_path / "a.txt", tmp_path / "b.txt"
    prepare.prepare_poems(str(corpus), from_folder)
    summary = prepare.prepare_poems(str(source), from_zip, sha256=hashlib.sha256(source.read_bytes()).hexdigest())
    assert summary.files_read == 2
    assert from_zip.read_bytes() == from_folder.read_bytes()


def test_a_zip_without_tang_files_or_with_a_wrong_sha256_is_an_error(corpus, tmp_path):
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.md", "readme")
    with pytest.raises(PoetryError, match="no poet.tang"):
        prepare.prepare_poems(str(empty), tmp_path / "poems.txt")
    with pytest.raises(PoetryError, match="SHA-256 is"):
        prepare.prepare_poems(str(empty), tmp_path / "poems.txt", sha256="0" * 64)
    with pytest.raises(PoetryError, match="64 hex digits"):
        prepare.prepare_poems(str(empty), tmp_path / "poems.txt", sha256="abc")


class ZipServer:
    """An http.server on 127.0.0.1 in a thread, serving fixed bytes and counting requests."""

    def __init__(self, body):
        self.body, self.requests = body, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/chinese-poetry/archive/master.zip"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(body):
        servers.append(ZipServer(body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_url_is_downloaded_once_into_the_cache(corpus, tmp_path, serve):
    body = zip_of(corpus)
    server = serve(body)
    cache, progress = tmp_path / "cache", io.StringIO()
    sha = hashlib.sha256(body).hexdigest()
    path = fetch.download(server.url, cache, sha256=sha, progress=progress)
    assert pathlib.Path(path).read_bytes() == body
    assert pathlib.Path(path).parent == cache and path.endswith("-master.zip")
    assert "downloading" in progress.getvalue() and "(100%)" in progress.getvalue()
    summary = prepare.prepare_poems(server.url, tmp_path / "a.txt", cache_dir=str(cache), sha256=sha)
    summary = prepare.prepare_poems(server.url, tmp_path / "b.txt", cache_dir=str(cache))
    assert server.requests == 1
    assert summary.kept == 2
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert [p.name for p in cache.iterdir()] == [pathlib.Path(path).name]


@pytest.mark.parametrize(
    "body, sha256, message",
    [
        (b"not a zip at all", None, "not a valid zip"),
        (b"any bytes", "0" * 64, "SHA-256 is"),
    ],
)
def test_a_bad_download_is_an_error_and_leaves_nothing_in_the_cache(tmp_path, serve, body, sha256, message):
    server = serve(body)
    cache = tmp_path / "cache"
    with pytest.raises(PoetryError, match=message):
        fetch.download(server.url, cache, sha256=sha256, progress=io.StringIO())
    assert list(cache.iterdir()) == []


def test_an_unreachable_url_is_a_one_line_error(tmp_path, serve):
    server = serve(b"")
    url = server.url
    server.close()
    with pytest.raises(PoetryError, match="cannot download") as error:
        fetch.download(url, tmp_path / "cache", progress=io.StringIO())
    assert "\n" not in str(error.value)


# --- lyrics --------------------------------------------------------------------

LYRICS = "第一行歌词 \n\n  second line, kept as is\n\u3000\n最后一行\n"


def test_lyrics_from_text_and_from_zip(tmp_path):
    text = tmp_path / "lyrics.txt"
    text.write_text(LYRICS, encoding="utf-8")
    packed = tmp_path / "lyrics.zip"
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("jaychou_lyrics.txt", LYRICS)
    expected = ["第一行歌词", "second line, kept as is", "最后一行"]
    for source in (text, packed):
        out = tmp_path / f"out-{source.suffix}.txt"
        summary = prepare.prepare_lyrics(str(source), out)
        assert read_lines(out) == expected
        assert (summary.lines, summary.characters) == (3, sum(map(len, expected)))
        assert summary.vocabulary == len(set("".join(expected)))
        assert "lyric lines: 3" in summary.format()


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda tmp: tmp / "missing.txt", "lyrics file not found"),
        (lambda tmp: (tmp / "bad.txt").write_bytes(b"\xff\xfe\xfa") and tmp / "bad.txt", "not UTF-8"),
        (lambda tmp: (tmp / "blank.txt").write_text(" \n\n") and tmp / "blank.txt", "no lyric lines"),
    ],
)
def test_lyrics_errors(tmp_path, setup, message):
    with pytest.raises(PoetryError, match=message):
        prepare.prepare_lyrics(str(setup(tmp_path)), tmp_path / "out.txt")


def test_a_lyrics_zip_must_hold_exactly_one_text_file(tmp_path):
    packed = tmp_path / "two.zip"
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("a.txt", "一")
        archive.writestr("b.txt", "二")
    with pytest.raises(PoetryError, match="one .txt file, found 2"):
        prepare.prepare_lyrics(str(packed), tmp_path / "out.txt")


# --- command line ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "/no/such/folder", "--out", "unused.txt"], "error: source not found: /no/such/folder"),
        ([], "error: give exactly one of --source"),
        (["--source", "a", "--lyrics", "b"], "error: give exactly one of --source"),
    ],
)
def test_cli_usage_errors_are_one_line_and_exit_2(tmp_path, args, message):
    result = run_module("prepare", *args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)
    assert not (tmp_path / "unused.txt").exists()


def test_cli_writes_what_it_could_then_exits_2_naming_skipped_files(corpus, tmp_path):
    (corpus / "poet.tang.3000.json").write_text("[{", encoding="utf-8")
    out = tmp_path / "poems.txt"
    result = run_module("prepare", "--source", str(corpus), "--out", str(out), timeout=60)
    assert result.returncode == 2
    assert "poems kept: 2" in result.stdout
    assert result.stderr.strip() == f"error: 1 file(s) skipped (poet.tang.3000.json); {out} was written without them"
    assert len(read_lines(out)) == 2


# --- the real corpus -------------------------------------------------------------


@pytest.mark.skipif(not (CORPUS / "quan_tang_shi").is_dir(), reason=f"no corpus at {CORPUS}")
def test_the_real_tang_corpus(tmp_path):
    out = tmp_path / "poems.txt"
    summary = prepare.prepare_poems(str(CORPUS / "quan_tang_shi"), out)
    assert summary.files_read >= 58 and not summary.skipped_files
    assert summary.kept > 40_000
    text = out.read_text(encoding="utf-8")
    assert not set("東風無雲來爲時") & set(text)
    assert text.count("\n") == summary.kept
