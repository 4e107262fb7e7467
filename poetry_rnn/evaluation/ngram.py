"""An interpolated Kneser-Ney character n-gram model: the yardstick for the RNN.

The README reports how much lower the RNN's perplexity is than this model's,
so both count the same units. A poem is the token sequence BOS, its content
characters (punctuation included), EOS; the model predicts every content
character and EOS from up to ``order - 1`` previous tokens, and BOS itself is
never predicted. There is one BOS and no padding: near the start the context
is simply shorter (it begins with BOS), which carries the same information as
padding with ``order - 1`` BOS and keeps the counts honest (see below).

Smoothing is the interpolated Kneser-Ney of Chen & Goodman (1998) with one
absolute discount per order, ``D = n1 / (n1 + 2 n2)``, where ``n1``/``n2``
count the n-grams of that order whose (adjusted) count is 1/2::

    P_k(w | h) = (max(a_k(hw) - D_k, 0) + D_k * T_k(h) * P_{k-1}(w | h')) / A_k(h)

with ``h'`` = ``h`` without its first token, ``A_k(h) = sum_w a_k(hw)`` and
``T_k(h)`` = number of distinct ``w`` with ``a_k(hw) > 0``. When ``h`` was
never seen, ``P_k(w | h) = P_{k-1}(w | h')``. At the bottom,
``P_0(w) = 1 / |V|``, uniform over the known characters, EOS and UNK, so
every token of the vocabulary has a probability above zero and the
probabilities over it sum to one for any context.

Adjusted counts (as in KenLM): ``a_k`` is the plain count for the highest
order and for n-grams beginning with BOS (nothing can precede BOS, so they
have no left contexts to count), otherwise the number of distinct tokens
seen just before the n-gram (the continuation count, Kneser-Ney's point: a
character that only ever follows one other gets little weight as a
back-off guess).

Unknown characters work as in the RNN's vocabulary (``vocab.Vocab.build``):
training characters seen fewer than ``min_count`` times are replaced by UNK
before counting, so UNK is learned like any character, and at scoring time
every character outside the vocabulary is scored as UNK. ``score`` reports
how many tokens that was. Pass ``vocab`` (e.g. ``Vocab.chars``) to use
exactly the RNN's vocabulary instead.
"""

import collections
import dataclasses
import math
import operator
from collections.abc import Iterable

from poetry_rnn.infra.errors import PoetryError

# One-character markers, so that an n-gram is a plain string slice (fast to
# make, small to keep as a dict key). Their code points echo vocab's ids.
UNK, BOS, EOS = "\x01", "\x02", "\x03"
_MARKERS = frozenset((UNK, BOS, EOS))
# Used when an order has no singletons (tiny corpora only): D = 0 would leave
# no mass for the lower orders, and so none for unseen characters.
_DEFAULT_DISCOUNT = 0.5
_DROP_FIRST = operator.itemgetter(slice(1, None))
_DROP_LAST = operator.itemgetter(slice(None, -1))


@dataclasses.dataclass(frozen=True)
class NgramScore:
    """Negative log-likelihood (natural log) of some poems under the model.

    ``tokens`` counts the predicted tokens (content characters and one EOS
    per poem); ``unknown`` how many of them were outside the vocabulary and
    scored as UNK.
    """

    total_nll: float
    tokens: int
    unknown: int

    @property
    def perplexity(self):
        return math.exp(self.total_nll / self.tokens)


class KneserNey:
    """Interpolated Kneser-Ney character model; ``fit`` on poems, then ``score``."""

    def __init__(self, order=5, min_count=2, vocab=None):
        if order < 1:
            raise PoetryError(f"n-gram order must be at least 1, got {order}")
        self.order = order
        self.min_count = min_count
        # Kept apart from self.vocab so that fitting again rebuilds the latter.
        self._given_vocab = None if vocab is None else frozenset(vocab)
        if self._given_vocab is not None and not self._given_vocab.isdisjoint(_MARKERS):
            raise PoetryError("vocabulary contains a control character used as a marker")
        self.vocab = self._given_vocab

    def fit(self, poems: Iterable[str]):
        """Count the n-grams of ``poems`` (content strings); returns ``self``."""
        poems = list(poems)
        self.vocab = self._given_vocab
        if self.vocab is None:
            chars = collections.Counter()
            for poem in poems:
                chars.update(poem)
            self.vocab = frozenset(c for c, n in chars.items() if n >= self.min_count)
        sequences = [self._encode(poem) for poem in poems]
        n = self.order
        # counts[k]: adjusted count of each k-gram (k = 1..order), see module doc.
        counts = [None] * (n + 1)
        first = 1 if n == 1 else 0  # a unigram model must not count BOS itself
        counts[n] = collections.Counter(s[i : i + n] for s in sequences for i in range(first, len(s) - n + 1))
        for k in range(n - 1, 0, -1):
            counts[k] = collections.Counter(map(_DROP_FIRST, counts[k + 1]))
            if k >= 2:
                counts[k].update(s[:k] for s in sequences if len(s) >= k)
        self._counts = counts
        self._discounts = [None] + [_discount(counts[k].values()) for k in range(1, n + 1)]
        # T_k(h) and A_k(h) per context. Most high-order n-grams have count 1,
        # so A starts as T (counted in C) and only larger counts are added.
        self._types, self._totals = [None], [None]
        for k in range(1, n + 1):
            types = collections.Counter(map(_DROP_LAST, counts[k]))
            totals = types.copy()
            for gram, count in counts[k].items():
                if count > 1:
                    totals[gram[:-1]] += count - 1
            self._types.append(types)
            self._totals.append(totals)
        # Known characters, EOS, UNK: what P_0 is uniform over.
        self._uniform = 1.0 / (len(self.vocab) + 2)
        return self

    def logprob(self, context, token):
        """Natural log of P(token | context).

        ``context`` is a string or a sequence of tokens (characters, or BOS
        for the start of a poem; without BOS it is taken from mid-poem); only
        the tokens after its last BOS and at most ``order - 1`` of them
        count. ``token`` is a character or EOS; a character outside the
        vocabulary (or UNK) gets the probability of UNK.
        """
        context = "".join(context)
        if token == BOS:
            raise PoetryError("BOS is never predicted")
        start = context.rfind(BOS)
        if start > 0:
            context = context[start:]
        context = "".join(c if c in self.vocab or c in (BOS, EOS) else UNK for c in context)
        token = token if token in self.vocab or token == EOS else UNK
        return math.log(self._prob(context[-(self.order - 1) :] if self.order > 1 else "", token))

    def score(self, poems: Iterable[str]) -> NgramScore:
        """Total NLL of ``poems`` (content strings), each as BOS content EOS."""
        total, tokens, unknown = 0.0, 0, 0
        reach = self.order - 1
        for poem in poems:
            s = self._encode(poem)
            unknown += s.count(UNK)
            for i in range(1, len(s)):
                total -= math.log(self._prob(s[max(0, i - reach) : i], s[i]))
            tokens += len(s) - 1
        return NgramScore(total, tokens, unknown)

    def mean_logprob(self, poem):
        """Mean natural log-probability per predicted token of one poem (as ``score``)."""
        score = self.score([poem])
        return -score.total_nll / score.tokens

    def _prob(self, context, token):
        """P(token | context) for an encoded context of at most order - 1 tokens."""
        p = self._uniform
        for k in range(1, len(context) + 2):
            h = context[len(context) - k + 1 :]
            total = self._totals[k].get(h)
            if total is None:
                # Every longer context ends with this one, so none was seen either.
                break
            discount = self._discounts[k]
            count = self._counts[k].get(h + token, 0)
            p = (max(count - discount, 0.0) + discount * self._types[k][h] * p) / total
        return p

    def _encode(self, poem):
        """BOS + content + EOS, characters outside the vocabulary as UNK."""
        if not _MARKERS.isdisjoint(poem):
            raise PoetryError("a poem contains a control character used as a marker")
        vocab = self.vocab
        return BOS + "".join(c if c in vocab else UNK for c in poem) + EOS


def _discount(counts):
    """D = n1 / (n1 + 2 n2) from one order's adjusted counts."""
    n1 = n2 = 0
    for count in counts:
        if count == 1:
            n1 += 1
        elif count == 2:
            n2 += 1
    return n1 / (n1 + 2 * n2) if n1 else _DEFAULT_DISCOUNT
