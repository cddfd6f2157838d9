"""Which words may close a line of verse: where a phrase can end.

A line ends where a reader can pause.  Two kinds of word never give that pause:

- **closed-class words that open a phrase** and cannot close one: articles, possessive
  determiners, most prepositions, coordinating and subordinating conjunctions, and a
  pronoun fused with its verb ("they're").  "the sky was a | ..." is a line a reader
  throws away.  Object pronouns ("me", "thee"), "be", "so", "that", "yet" and the like do
  close phrases and stay ("Bear me to thee").
- **fragments**: a word English has mainly as a piece of another language's phrase
  ("mer", "pas", "bis", "als"), known from wordfreq as far more frequent in a neighbouring
  language than in English (by ``FOREIGN_MARGIN`` zipf) while rare in English (below
  ``FRAGMENT_ZIPF``).  The rule is general, so it also drops a few English words that
  happen to be common abroad ("dove", "hay"); it applies only at line ends, and a form
  that cannot be met without them falls back to the whole lexicon (formspec.FormPlan).

Only the decoder uses this (formspec.FormPlan's line-final words); ``check_form`` does not,
because a writer's own line may end where the writer likes.  The ``;enjamb`` form option
turns it off for writers who break lines mid-phrase on purpose.
"""

from __future__ import annotations

import numpy as np

from constraints.cache import BoundedCache

ARTICLES = ("a", "an", "the")
POSSESSIVES = ("my", "your", "our", "their", "its", "his", "thy")
# Prepositions that can also close a phrase as adverbs ("come in", "pass through") stay.
PREPOSITIONS = ("of", "to", "into", "onto", "unto", "from", "with", "than", "at", "for", "amid",
                "among", "amongst", "between", "toward", "towards", "via", "per", "o'er", "'gainst",
                "during")
CONJUNCTIONS = ("and", "or", "but", "nor", "if", "because", "whether", "unless", "whereas", "although",
                "lest", "whilst", "as", "which", "whose")
FUSED = ("i'm", "you're", "we're", "they're", "he's", "she's", "it's", "'tis", "'twas", "there's",
         "i'd", "you'd", "we'd", "they'd", "i'll", "you'll", "we'll", "they'll", "i've", "you've",
         "we've", "they've", "let's")
DEGREE = ("every", "very")

CLOSED = frozenset(ARTICLES + POSSESSIVES + PREPOSITIONS + CONJUNCTIONS + FUSED + DEGREE)

NEIGHBOURS = ("fr", "de", "es", "it", "pt", "nl")
FOREIGN_MARGIN = 1.5  # zipf: ~30x more frequent abroad
FRAGMENT_ZIPF = 4.0  # below this, English knows the word mainly through borrowings


def is_fragment(word: str) -> bool:
    from wordfreq import zipf_frequency  # here, not at import: a third of a second of every start

    en = zipf_frequency(word, "en")
    if en >= FRAGMENT_ZIPF:
        return False
    return max(zipf_frequency(word, lang) for lang in NEIGHBOURS) - en >= FOREIGN_MARGIN


def may_end_line(word: str) -> bool:
    """Whether a line of verse may close on ``word`` (lower case)."""
    return word not in CLOSED and not is_fragment(word)


_ENDERS: BoundedCache[np.ndarray] = BoundedCache(8)


def line_enders(words: tuple[str, ...], key) -> np.ndarray:
    """Boolean mask over ``words`` (a WordTable's sorted words): those a line may close on,
    kept per table ``key``."""
    return _ENDERS.get_or_make(key, lambda: np.fromiter((may_end_line(w) for w in words), bool, len(words)))


__all__ = ["CLOSED", "is_fragment", "may_end_line", "line_enders"]
