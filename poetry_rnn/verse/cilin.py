"""词林正韵, the rhyme book of ci: which of its 19 部 (groups) a character rhymes in.

Ci rhyme by 词林正韵 (戈载, 1821), not by 平水韵: it merges the 106 groups of
verse into 19 部, groups 1 to 14 each with a 平声 part and a 仄声 part (上
and 去), groups 15 to 19 入声 alone. A ci's rhyming line ends share one 部,
and a 平 rhyme may answer a 仄 rhyme of the same 部 (西江月 ends each stanza
so), so "these line ends rhyme" here is "their characters share a 部",
whatever the tone; the tone of each position is a separate question
(``prosody.char_tones``, which ``cipai`` asks).

The book is package data, ``data/cilin_zhengyun.tsv``: the character lists
of ``Cilin_Rhyme.json`` from github.com/charlesix59/chinese_word_rhyme (MIT,
``data/LICENSE-chinese_word_rhyme.txt``), simplified characters, one row per
(character, 部, tone), rebuilt by ``corpus.cipai_table.write_rhyme_book``.
A character can sit in several 部 (行 in 第二部 and 第十一部); one the book
does not list (about 1 line end in 100 in the Song ci: 他, 忧, 拍) says
nothing about a rhyme, for or against.
"""

import functools
import os

from poetry_rnn.verse import prosody

TABLE = os.path.join(prosody.DATA, "cilin_zhengyun.tsv")
GROUPS = tuple(f"第{n}部" for n in "一 二 三 四 五 六 七 八 九 十 十一 十二 十三 十四 十五 十六 十七 十八 十九".split())
TONES = ("平", "仄", "入")  # the book's three parts: 平声, 仄声 (上去), 入声


@functools.lru_cache(maxsize=None)
def read_book(path=TABLE):
    """{character: frozenset of (部 index, tone)} from the TSV (default: the package's)."""
    index = {name: i for i, name in enumerate(GROUPS)}
    book = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                char, group, tone = line.rstrip("\n").split("\t")
                book[char] = book.get(char, frozenset()) | {(index[group], tone)}
    return book


def groups_of(c, path=TABLE):
    """The 部 (indices into GROUPS) ``c`` rhymes in, any tone; empty for a character the book lacks."""
    return frozenset(group for group, _ in read_book(path).get(c, ()))
