"""Where the structure mask may end a sentence: its model of the trained Punkt.

The checker splits with the trained English Punkt (constraints.units).  Punkt ends a
sentence at "!" and "?" always (when a space and more text follow), but a period only after
a token it does not take for an abbreviation, an initial or a number:

- an abbreviation type of the model ("mr", "u.s", "ok", ...): the period ends the sentence
  only if the next word looks like a sentence start (which depends on that word);
- one letter ("a.", "I."): an initial, split or not by what the next word is;
- a number ("1899."): split, except before the model's number collocations ("1899. Who");
- a type paired with a next word in the model's collocations.

The mask ends a sentence with a period only after a word none of these can apply to,
whatever follows; after the others it may still end it with "!" or "?".  The splitter's
decisions are not reused here: only its model's data (``units.abbreviations()``,
``units.collocations()``) is read, and tests/test_structure_mask.py checks the two agree.

A given word written verbatim may itself end in a period ("Mr.", "U.S."): Punkt keeps the
sentence going after it when the next word starts in lower case (it is no sentence start),
so the mask writes the next word in lower case there.
"""

from __future__ import annotations

import re

from constraints.units import APOSTROPHES, abbreviations, collocations

# Punkt's own number type (nltk punkt ``_get_type``): these tokens are "##number##".
_NUMBER_RE = re.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
# A token of the mask's surface grammar: letters and digits, maybe one contraction.
_PLAIN_RE = re.compile(rf"[A-Za-z0-9]+(?:[{APOSTROPHES}][A-Za-z]+)?")


class SentenceEnds:
    """Per trained model: which tokens a period surely ends a sentence after."""

    def __init__(self):
        self.abbreviations = abbreviations()
        # Types some collocation pairs with a next word: a period after them may not split.
        self.collocated = frozenset(a for a, _b in collocations())
        self._memo: dict[str, bool] = {}

    def period_ends(self, token: str) -> bool:
        """Whether "``token``." followed by a space (or a blank line) and a capitalised word
        is a sentence end for the trained Punkt, whatever that word is.  ``token``: the text
        since the last space or punctuation, as written."""
        hit = self._memo.get(token)
        if hit is None:
            t = token.lower()
            hit = (_PLAIN_RE.fullmatch(token) is not None and len(t) >= 2 and not _NUMBER_RE.match(t)
                   and t not in self.abbreviations and t.split("-")[-1] not in self.abbreviations
                   and t not in self.collocated)
            if len(self._memo) < 65536:
                self._memo[token] = hit
        return hit

    def given_word_ok(self, word: str) -> bool:
        """Whether a given word may stand inside a sentence: one ending in a period must be
        an abbreviation of the model (the period before a lower-case word then never splits;
        after an initial or an unknown type it may)."""
        return not word.endswith(".") or word[:-1].lower() in self.abbreviations

    @staticmethod
    def keeps_sentence_open(word: str) -> bool:
        """After this (given) word, the next word must start in lower case."""
        return word.endswith(".")


_ENDS: SentenceEnds | None = None


def sentence_ends() -> SentenceEnds:
    global _ENDS
    if _ENDS is None:
        _ENDS = SentenceEnds()
    return _ENDS
