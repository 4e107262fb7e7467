"""Reading each tune's pattern off the Song ci: ``data/cipai.json``, and the rhyme book it rhymes by.

The corpus gives each ci only its tune's name, and no rhyme book of ours
says tune by tune where the rhymes fall or which positions are 平 or 仄.
So for every tune with at least MIN_CI ci in the training part of
``data/ci.txt`` (the held-out ci, by ``corpus.split``'s hash, are never
read here, so they can judge the table), the pattern is read off the ci:

1. **Variant.** The tune's ci grouped by their sequence of line lengths
   (lines are the pieces between ，。？！); the commonest sequence is the
   pattern's, ties to the shorter then smaller sequence. Each line's mark is
   the commonest mark there. A tune whose common variant has fewer than
   MIN_VARIANT_CI ci is left out (its ci break their lines too many ways:
   洞仙歌, 品令).
2. **Rhymes.** For every two line ends, the share of the variant's ci whose
   two end characters share a 部 of 词林正韵 (``verse.cilin``; counted over
   the ci where the book lists both). Two line ends rhyme together when
   that share is at least RHYME_SHARE; the rhyme sets are the connected
   groups of such pairs. Real rhyme pairs mostly share a 部 in 85-97 % of
   ci, the others in 8-20 % (chance, with 19 部 of unequal size), so any
   threshold between would do; a half is the plain reading of "most ci
   rhyme here", and decides the few optional short rhymes that fall between
   (水龙吟's 55 % is in, 满庭芳's 41 % out).
3. **Tones.** At each position, the ci whose character has one tone class
   under 平水韵 vote (``cipai.char_tone``); the position is 平 or 仄 when at
   least TONE_AGREEMENT of the votes agree, else 中 (可平可仄). At 80 % the
   positions a 词谱 fixes come out fixed and its free ones mostly free:
   浣溪沙's second line is 中平中仄仄平平, the 词谱's ⊙平⊙仄仄平平; a
   higher bar would free positions that only the odd 拗 line breaks.
4. **Shares.** ``cipai.check`` on the tune's training ci gives how many
   follow the variant, the rhymes, the tones and all three.

``write_rhyme_book`` turns ``Cilin_Rhyme.json`` into the package's
``data/cilin_zhengyun.tsv``. Both files are package data, built with

    python -m poetry_rnn.prepare --ci ../shared/corpus/song_ci --out data/ci.txt \
        --cipai_table poetry_rnn/data/cipai.json
    python -c "from poetry_rnn.corpus import cipai_table; \
        cipai_table.write_rhyme_book('../shared/corpus/cilin_zhengyun/Cilin_Rhyme.json')"
"""

import collections
import dataclasses
import itertools
import json

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import cilin, cipai, forms, prosody

MIN_CI = 30  # training ci a tune needs for a pattern
MIN_VARIANT_CI = 10  # of those, written in the common variant: fewer say too little about each position
RHYME_SHARE = 0.5  # share of ci whose two line ends share a 部, for the two to rhyme together
TONE_AGREEMENT = 0.8  # share of the votes at a position that make it 平 or 仄 rather than 中
SHARE_DIGITS = 3
BOOK_SOURCE = ("Cilin_Rhyme.json of github.com/charlesix59/chinese_word_rhyme, MIT licence, "
               "Copyright (c) 2023 Charles 闵 (data/LICENSE-chinese_word_rhyme.txt)")


def write_rhyme_book(json_path, out=cilin.TABLE):
    """``Cilin_Rhyme.json`` ({部: {平声|仄声|入声: [characters]}}) as the TSV ``verse.cilin`` reads.

    Rows in the book's order, one per (character, 部, tone); entries that
    are not one Han character (the file holds stray brackets) are left out.
    Returns the number of rows.
    """
    with open(json_path, encoding="utf-8") as handle:
        book = json.load(handle)
    if list(book) != list(cilin.GROUPS):
        raise PoetryError(f"{json_path}: expected the 19 部 {cilin.GROUPS[0]}…{cilin.GROUPS[-1]}, found {list(book)}")
    rows = []
    for group, parts in book.items():
        for part, chars in parts.items():
            tone = part.removesuffix("声")
            rows.extend(f"{c}\t{group}\t{tone}" for c in dict.fromkeys(chars) if prosody.is_han(c))
    header = [f"# 词林正韵 (19 部): character, 部, tone ({' '.join(cilin.TONES)}), one row per (character, 部, tone).",
              f"# Source: {BOOK_SOURCE}.",
              "# Built by poetry_rnn.corpus.cipai_table.write_rhyme_book; non-Han entries dropped."]
    files.write_text(out, "\n".join(header + rows) + "\n")
    return len(rows)


def _common_variant(ci):
    """(line lengths, [(texts, marks)] of the ci written so) for the commonest lengths among ``ci``."""
    shapes = collections.defaultdict(list)
    for poem in ci:
        texts, marks = cipai.split_ci(poem.content)
        shapes[tuple(map(len, texts))].append((texts, marks))
    lengths = min(shapes, key=lambda key: (-len(shapes[key]), len(key), key))
    return lengths, shapes[lengths]


def _punctuation(members, n_lines):
    """The commonest mark after each line (ties in the order ，。？！)."""
    marks = []
    for i in range(n_lines):
        votes = collections.Counter(m[i] for _, m in members if m[i])
        marks.append(max(forms.PUNCTUATION, key=lambda mark: votes[mark]))  # max keeps the first of a tie
    return "".join(marks)


def _rhyme_letters(members, n_lines):
    """One letter per line: its rhyme set (A, B, … by first line), or NO_RHYME (see the module doc, step 2)."""
    ends = [[cilin.groups_of(text[-1:]) for text in texts] for texts, _ in members]
    parent = list(range(n_lines))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(n_lines), 2):
        known = [groups[i] & groups[j] for groups in ends if groups[i] and groups[j]]
        if known and sum(map(bool, known)) >= RHYME_SHARE * len(known):
            parent[root(j)] = root(i)
    sizes = collections.Counter(root(i) for i in range(n_lines))
    letters = {}
    for i in range(n_lines):
        if sizes[root(i)] > 1 and root(i) not in letters:
            letters[root(i)] = chr(ord("A") + len(letters))
    return "".join(letters.get(root(i), cipai.NO_RHYME) for i in range(n_lines))


def _tone_lines(members, lengths):
    """One string of 平/仄/中 per line (see the module doc, step 3)."""
    lines = []
    for k, length in enumerate(lengths):
        symbols = []
        for j in range(length):
            votes = collections.Counter(cipai.char_tone(texts[k][j]) for texts, _ in members)
            votes.pop(None, None)
            total = sum(votes.values())
            symbol = prosody.EITHER
            for tone, mark in ((prosody.PING, prosody.P), (prosody.ZE, prosody.Z)):
                if total and votes[tone] >= TONE_AGREEMENT * total:
                    symbol = mark
            symbols.append(symbol)
        lines.append("".join(symbols))
    return tuple(lines)


def _share(part, whole):
    """part / whole to SHARE_DIGITS places (0 for nothing), so the table is the same bytes on every machine."""
    return round(part / whole, SHARE_DIGITS) if whole else 0.0


def tune_pattern(tune, ci, aliases=()):
    """The ``CiPattern`` read off ``ci`` (one tune's training ci, CorpusPoems), with its shares."""
    lengths, members = _common_variant(ci)
    pattern = cipai.CiPattern(tune=tune, tones=_tone_lines(members, lengths),
                              punctuation=_punctuation(members, len(lengths)),
                              rhymes=_rhyme_letters(members, len(lengths)), aliases=tuple(aliases))
    checks = [cipai.check(pattern, poem.content) for poem in ci]
    variant = sum(c.shape_ok for c in checks)
    return dataclasses.replace(pattern, ci=len(ci), variant_ci=variant, variant_share=_share(variant, len(ci)),
                               rhyme_share=_share(sum(c.rhymes_ok for c in checks), variant),
                               tone_share=_share(sum(c.tones_ok for c in checks), variant),
                               follow_share=_share(sum(c.follows for c in checks), len(ci)))


def _aliases(ci, tunes):
    """{tune: other names it is written under (酹江月 of 酹江月・念奴娇)}, commonest first.

    A name that is a tune of the table itself, or stands for two tunes, is
    no alias: a lookup by it must not be ambiguous; nor is one with a
    character the editors could not read (□).
    """
    uses = collections.Counter()
    for poem in ci:
        name = poem.title.split(cipai.ALIAS_MARK)[0]
        if cipai.ALIAS_MARK in poem.title and name not in tunes and all(map(prosody.is_han, name)):
            uses[name, cipai.tune_name(poem.title)] += 1
    meanings = collections.Counter(name for name, _ in uses)
    found = collections.defaultdict(list)
    for (name, tune), _ in sorted(uses.items(), key=lambda item: (-item[1], item[0])):
        if meanings[name] == 1 and tune in tunes:
            found[tune].append(name)
    return found


def build_table(ci):
    """The patterns of every tune with at least MIN_CI of ``ci`` (the training ci), commonest tune first."""
    by_tune = collections.defaultdict(list)
    for poem in ci:
        by_tune[cipai.tune_name(poem.title)].append(poem)
    tunes = sorted((t for t, members in by_tune.items() if len(members) >= MIN_CI),
                   key=lambda t: (-len(by_tune[t]), t))
    aliases = _aliases(ci, set(tunes))
    patterns = (tune_pattern(tune, by_tune[tune], aliases[tune]) for tune in tunes)
    return [p for p in patterns if p.variant_ci >= MIN_VARIANT_CI]


def write_table(path, ci):
    """Write the patterns of ``ci`` (the training ci of data/ci.txt) as JSON, one tune a line, atomically.

    Returns the number of tunes.
    """
    patterns = build_table(ci)
    about = {"about": "Tune patterns read off the training part of data/ci.txt (Song ci of chinese-poetry, MIT); "
                      "built by poetry_rnn.corpus.cipai_table, read by poetry_rnn.verse.cipai.",
             "min_ci": MIN_CI, "rhyme_share": RHYME_SHARE, "tone_agreement": TONE_AGREEMENT,
             "tone_scheme": cipai.TONE_SCHEME, "training_ci": len(ci)}
    head = json.dumps(about, ensure_ascii=False)[:-1]
    body = ",\n".join(json.dumps(p.to_json(), ensure_ascii=False) for p in patterns)
    files.write_text(path, f"{head},\n\"tunes\": [\n{body}\n]}}\n")
    return len(patterns)
