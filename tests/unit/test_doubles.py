"""Which characters Tang poets double (萧萧), counted from real lines, the pull on the others (源源), and the pull
against saying a character twice in one couplet."""

import os

import numpy as np
import tensorflow as tf

from poetry_rnn.corpus import doubles, reading
from poetry_rnn.generation import processors
from poetry_rnn.verse import forms
from poetry_rnn.model import vocab as vocab_lib
from conftest import REPO
from test_prepare import entry, prepared_table


def poem(content):
    return reading.CorpusPoem(title="", content=content)


def test_doubles_are_counted_inside_lines_and_only_for_han_characters():
    doubled, uses = doubles.double_counts([poem("萧萧木叶下，下山aa去。"), poem("悠悠悠，山山。")])
    assert doubled == {"萧": 1, "悠": 2, "山": 1}  # 下，下 spans a line end; aa is not Han
    assert uses["下"] == 2 and uses["悠"] == 3 and "a" not in uses


def test_rare_doubles_are_the_han_characters_doubled_fewer_than_common_double_times(tmp_path):
    table = tmp_path / "doubles.tsv"
    lines = ["萧萧木叶下"] * doubles.COMMON_DOUBLE + ["源源水长流"] * (doubles.COMMON_DOUBLE - 1)
    assert doubles.write_table(str(table), [poem("，".join(lines) + "。")]) == 2
    vocab = vocab_lib.Vocab(vocab_lib.RESERVED + ("萧", "源", "木", "，", "ℤ"))
    rare = doubles.rare_vector(tuple(vocab.tokens), str(table))
    assert [vocab.tokens[i] for i in np.flatnonzero(rare)] == ["源", "木"]  # 木: never doubled; ，ℤ: not Han


def test_the_shipped_table_is_the_training_split_s_and_keeps_the_poets_doubles(tmp_path):
    from poetry_rnn.training import tables

    path = tmp_path / "doubles.tsv"
    tables.write_training_tables(os.path.join(REPO, "data", "poems.txt"), double_table=str(path))
    with open(doubles.TABLE, encoding="utf-8") as shipped:
        assert path.read_text(encoding="utf-8") == shipped.read()
    rare = dict(zip("悠萧依年源多西", doubles.rare_vector(tuple("悠萧依年源多西"))))
    assert rare == {"悠": False, "萧": False, "依": False, "年": False, "源": True, "多": True, "西": True}


def test_prepare_writes_the_table_from_its_training_split_only(tmp_path):
    filler = [chr(0x6C00 + i) for i in range(60)]  # distinct Han characters, so no two poems are the same
    train, counts = prepared_table(tmp_path, "--double_table", [entry("咏梅", [f"梅花{c}{c}尽，春风入户来。"]) for c in filler])
    assert set(counts) == {p.content[2] for p in train} and all(n == ["1", "2"] for n in counts.values())


def test_the_doubling_pull_lowers_the_previous_character_where_it_is_rare_and_only_in_a_poem():
    rare = np.zeros(6, bool)
    rare[5] = True  # token 5 is seldom doubled, token 4 often
    doubling = processors.Doubling(rare_double=tf.constant(rare), penalty=tf.constant([2.0, 2.0, 0.0, 2.0]))
    step = processors.Step(tf.constant(3), tf.constant([5, 4, 5, 5]), tf.constant([True, True, True, False]), None)
    scores = doubling.apply(tf.zeros([4, 6]), (), step).numpy()
    assert scores[0].tolist() == [0, 0, 0, 0, 0, -2.0]
    assert not scores[1:].any()  # a common double; a stream (penalty 0); a prompt step before the content


def test_the_couplet_repeat_pull_lowers_what_this_couplet_said_but_a_double_and_forgets_it_at_a_full_stop():
    han, end = np.array([False, True, True, True, False]), np.array([False, False, False, False, True])  # 4: 。
    pull = processors.CoupletRepeat(han=tf.constant(han), couplet_end=tf.constant(end),
                                    penalty=tf.constant([2.0, 2.0, 0.0]))
    (said,) = pull.initial_state(3)
    steps = [processors.Step(tf.constant(t), tf.constant([0, 0, 0]), tf.constant([True, False, True]),
                             tf.constant([False] * 3)) for t in range(3)]
    (said,) = pull.update((said,), steps[0]._replace(token=tf.constant([1, 1, 1])))  # row 1: a prompt, not content
    (said,) = pull.update((said,), steps[1]._replace(token=tf.constant([2, 2, 2])))
    scores = pull.apply(tf.zeros([3, 5]), (said,), steps[2]._replace(prev=tf.constant([2, 2, 2]))).numpy()
    assert scores.tolist() == [[0, -2.0, 0, 0, 0], [0, 0, 0, 0, 0], [0] * 5]  # 2 doubles; row 2's penalty is 0
    (said,) = pull.update((said,), steps[2]._replace(token=tf.constant([4, 4, 4])))  # 。
    assert not said.numpy().any()


def test_a_couplet_repeats_a_character_said_twice_in_it_but_not_a_double():
    assert forms.couplet_repeats("满庭歌吹满山春，萧萧落叶下江中。今年花似去年好，") == [True, True]
    assert forms.couplet_repeats("萧萧落叶下江中，歌吹庭前月色新。叶落，花飞。") == [False, False]


def test_the_line_end_repeat_pull_lowers_what_earlier_lines_ended_on_only_where_a_line_ends():
    han = np.array([False, True, True, True, False])  # 4: ，
    last = np.zeros((3, 8), bool)
    last[0, [2, 5]] = True  # row 0: a regular poem whose lines end at steps 2 and 5
    pull = processors.LineEndRepeat(line_last=tf.constant(last), line_chars=tf.constant([0, 2, 2], tf.int32),
                                    han=tf.constant(han), penalty=tf.constant([2.0, 2.0, 0.0]))
    state = pull.initial_state(3)
    step = lambda t, token: processors.Step(tf.constant(t), tf.constant([0] * 3), tf.constant([True] * 3),  # noqa
                                            tf.constant([False] * 3), token=tf.constant(token))
    # Row 0 writes 1 1 2 at steps 0-2, ending its line on 2; rows 1 and 2 (free, lines of 2) write 1 2 ，.
    for t, token in enumerate(([1, 1, 1], [1, 2, 2], [2, 4, 4])):
        scores = pull.apply(tf.zeros([3, 5]), state, step(t, token)).numpy()
        assert not scores.any()  # nothing has ended a line yet
        state = pull.update(state, step(t, token))
    assert state[0].numpy().tolist() == [[False, False, True, False, False], [False, False, True, False, False],
                                         [False] * 5]  # row 2: its penalty is 0
    assert state[1].numpy().tolist() == [3, 0, 0]  # Han characters since the last mark
    mid_line = pull.apply(tf.zeros([3, 5]), state, step(3, [3, 3, 3])).numpy()
    assert not mid_line.any()  # step 3 ends no line of any row
    state = pull.update(state, step(3, [3, 3, 3]))
    scores = pull.apply(tf.zeros([3, 5]), state, step(4, [0] * 3)).numpy()
    assert scores.tolist() == [[0] * 5, [0, 0, -2.0, 0, 0], [0] * 5]  # row 1's line ends at its second character
    state = pull.update(state, step(4, [3, 3, 3]))
    scores = pull.apply(tf.zeros([3, 5]), state, step(5, [0] * 3)).numpy()
    assert scores.tolist() == [[0, 0, -2.0, 0, 0], [0] * 5, [0] * 5]  # row 0's second line ends here


def test_a_poem_repeats_a_line_end_when_two_lines_end_on_one_character():
    assert forms.line_end_repeats("云飞远岫明时雨，池压新冰暖后泉。借问晚来留不得，月明犹在竹间泉。")
    assert not forms.line_end_repeats("云飞远岫明时雨，池压新冰暖后泉。借问晚来留不得，月明犹在竹间眠。")
    assert not forms.line_end_repeats("泉泉，") and not forms.line_end_repeats("")
