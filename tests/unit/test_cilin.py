"""verse.cilin, the 词林正韵 rhyme book: the shipped table, what it says of characters, and its rebuild."""

import json
import os

import pytest
from conftest import SHARED_CORPUS

from poetry_rnn.corpus import cipai_table
from poetry_rnn.verse import cilin, cipai

SOURCE = os.path.join(SHARED_CORPUS, "cilin_zhengyun", "Cilin_Rhyme.json")


def test_the_book_places_characters_in_their_bu_with_their_tone():
    book = cilin.read_book()
    assert book["东"] == {(0, "平")}
    assert book["月"] == {(17, "入")} and cilin.GROUPS[17] == "第十八部"
    assert book["行"] == {(1, "平"), (10, "平"), (10, "仄")}  # two 部, two tones in the second
    assert cilin.groups_of("行") == {1, 10}
    assert cilin.groups_of("他") == frozenset()  # not in the book


def test_groups_one_to_fourteen_have_both_tones_and_the_ru_groups_stand_alone():
    tones = {}
    for entries in cilin.read_book().values():
        for group, tone in entries:
            tones.setdefault(group, set()).add(tone)
    assert [tones[g] for g in range(14)] == [{"平", "仄"}] * 14
    assert [tones[g] for g in range(14, 19)] == [{"入"}] * 5
    assert len(cilin.read_book()) > 5_000


def test_shared_groups_skip_characters_the_book_lacks():
    assert cipai.shared_groups("东风红") == {0}
    assert cipai.shared_groups("东风他") == {0}  # 他 says nothing
    assert cipai.shared_groups("东月") == frozenset()  # 第一部 and 第十八部 never rhyme
    assert cipai.shared_groups("他") == frozenset(range(19))
    assert cipai.shared_groups("行东") == frozenset()


def test_the_rhyme_book_is_rebuilt_from_a_small_json(tmp_path):
    book = {name: {"平声": [], "仄声": []} for name in cilin.GROUPS[:14]}
    book.update({name: {"入声": []} for name in cilin.GROUPS[14:]})
    book["第一部"]["平声"] = ["东", "[", "东", "同"]
    book["第十八部"]["入声"] = ["月"]
    source = tmp_path / "book.json"
    source.write_text(json.dumps(book, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "book.tsv"
    assert cipai_table.write_rhyme_book(str(source), str(out)) == 3  # the bracket and the repeat dropped
    assert cilin.read_book(str(out)) == {"东": {(0, "平")}, "同": {(0, "平")}, "月": {(17, "入")}}


@pytest.mark.skipif(not os.path.isfile(SOURCE), reason=f"no corpus at {SHARED_CORPUS} (set $POETRY_RNN_CORPUS)")
def test_the_shipped_book_is_rebuilt_byte_for_byte(tmp_path):
    out = tmp_path / "cilin.tsv"
    cipai_table.write_rhyme_book(SOURCE, str(out))
    with open(cilin.TABLE, "rb") as shipped:
        assert out.read_bytes() == shipped.read()
