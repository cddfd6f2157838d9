"""Pronunciations that read a word letter by letter (acronyms), and single letters.

CMU lists "MIT" as EH1 M AY1 T IY1 and "TAC" as T IY1 EY1 S IY1: the letters' names, not
a word's sound.  Rhyming "sea" with "mit" through M-I-T, or counting "B" as a word of one
syllable, is not what a writer means, so phonetic rules drop such pronunciations and the
writer's lexicon leaves out the words read only that way, unless the writer asks for
them (``+letters`` / ``;letters``).

Detection is systematic, not a hand list of acronyms: a pronunciation is *spelled out*
when its phonemes (stress ignored) are the concatenation of the names of the word's
letters, as CMU itself pronounces each single letter (a letter's name is its stressed
reading: "a" is EY1, not the article's AH0), optionally followed by a plural or
possessive ending ("TVs", "ABC's").

The three one-letter English words, "a", "I" and "O" (the vocative), are words, not letters.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The one-letter words of English; every other single letter is only a letter.
ONE_LETTER_WORDS = frozenset("aio")

_ENDINGS = ((), ("Z",), ("S",), ("IH", "Z"), ("AH", "Z"))


def bare(pron: str) -> tuple[str, ...]:
    """Phonemes without stress digits: "EH1 M" -> ("EH", "M")."""
    return tuple(re.sub(r"\d", "", pron).split())


@lru_cache(maxsize=1)
def letter_names() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Each letter's name(s) as CMU pronounces the single letter (stressed readings)."""
    import pronouncing

    from constraints.cmu import init_cmu

    init_cmu()
    out = {}
    for c in "abcdefghijklmnopqrstuvwxyz":
        names = {bare(p) for p in pronouncing.phones_for_word(c) if re.search(r"[12]", p)}
        out[c] = tuple(sorted(names))
    return out


def _spells(letters: str, phones: tuple[str, ...]) -> bool:
    """Whether ``phones`` is exactly the names of ``letters`` one after another."""
    names = letter_names()
    ends = {0}  # positions in phones reachable after the letters so far
    for ch in letters:
        nxt = set()
        for at in ends:
            for name in names.get(ch, ()):
                if phones[at:at + len(name)] == name:
                    nxt.add(at + len(name))
        if not nxt:
            return False
        ends = nxt
    return len(phones) in ends


def spelled_out(word: str, pron: str) -> bool:
    """Whether ``pron`` reads ``word`` letter by letter ("mit", "EH1 M AY1 T IY1" -> True).
    The one-letter words a, I and O are never spelled out: they are words."""
    w = word.lower().replace("’", "'")
    if w in ONE_LETTER_WORDS:
        return False
    # Every letter's name has a vowel, so a reading with fewer vowels than the word has
    # letters (less a plural ending) spells nothing: the quick answer for almost every word.
    vowels = sum(1 for p in pron.split() if p[-1].isdigit())
    if vowels < sum(1 for c in w if "a" <= c <= "z") - 1:
        return False
    letters = re.sub(r"[^a-z]", "", w)
    if not letters:
        return False
    phones = bare(pron)
    if _spells(letters, phones):
        return True
    # Plurals and possessives of acronyms: "tvs" / "tv's" = T IY V IY Z.
    stem = re.sub(r"'?s$", "", w)
    stem_letters = re.sub(r"[^a-z]", "", stem)
    if stem == w or not stem_letters:
        return False
    return any(phones[len(phones) - len(e):] == e and _spells(stem_letters, phones[:len(phones) - len(e)])
               for e in _ENDINGS if e and len(phones) > len(e))


def is_letter(word: str) -> bool:
    """A single letter that is not a word of its own ("b", "x"; not "a", "I", "O")."""
    w = word.lower()
    return len(w) == 1 and w.isalpha() and w not in ONE_LETTER_WORDS


__all__ = ["ONE_LETTER_WORDS", "spelled_out", "is_letter", "letter_names", "bare"]
