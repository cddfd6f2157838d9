"""``language:CODE``: the answer is written in that language (ISO 639-1).

The mask side is a word rule: every word is a word of the language (wordfreq's list for
it, zipf >= ``FLOOR``) and not a word far more English than the language's (English is
what the embedded model drifts into: "the" and "is" appear in French web text too).
A rule naming a language other than English also brings that language's word list to the
word masks (``word_list``, read by constraints/lexicon.py lexicon_for), so the decoder
chooses among French words, not among English words that happen to pass.

``check`` judges differently, the way a language identifier does: the whole text is
scored under the word frequencies of the language and of its rivals (English; for
English, the languages it is most often confused with) as unigram models; its mean
log-likelihood ratio must not favour a rival by more than ``ENGLISH_MARGIN``, and most
of its words must be known to the language's list.

Served: the Latin-script languages the embedded model was measured to write
(bench/results/language.md: langdetect's verdict on the real model's answers).  Another
language is refused before decoding, naming it and why.

This module never imports torch.
"""

from __future__ import annotations

import math
from functools import lru_cache

from constraints.base import (
    ImpossibleConstraint, SpecError, Violation, WordConstraint, register, require_arg, shown,
)
from constraints.lexicon import normalize
from constraints.units import WORD_RE, iter_words

FLOOR = 3.0  # zipf: once per million words, the writer lexicon's floor for English too
ENGLISH_MARGIN = 0.5  # a word this much more frequent in English than in the language is English
KNOWN_SHARE = 0.8  # check: at least this share of the words are in the language's list

# Served languages (ISO 639-1 -> name): wordfreq has a list, the script is Latin (the word
# masks' letters and the model's), and the embedded model was measured to write them.
SERVED = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "sv": "Swedish", "pl": "Polish",
}
# Languages wordfreq knows that are refused, with the reason.
NOT_SERVED = {
    "ar": "Arabic script", "bg": "Cyrillic script", "bn": "Bengali script", "el": "Greek script",
    "fa": "Arabic script", "he": "Hebrew script", "hi": "Devanagari script", "ja": "Japanese script",
    "ko": "Hangul script", "mk": "Cyrillic script", "ru": "Cyrillic script", "sr": "Cyrillic script",
    "ta": "Tamil script", "uk": "Cyrillic script", "ur": "Arabic script", "zh": "Chinese script",
}
# check: the languages a text in each language is most often mistaken for.
RIVALS = {"en": ("fr", "es", "de")}

# French and Italian write articles and prepositions elided onto the next word ("l'eau",
# "dell'acqua"); wordfreq lists the parts, so the lexicon adds the joined forms.
ELISIONS = {
    "fr": ("l'", "d'", "j'", "n'", "s'", "c'", "qu'", "m'", "t'"),
    "it": ("l'", "un'", "dell'", "all'", "nell'", "sull'", "dall'"),
}
ELIDED_FLOOR = 4.0  # only the commoner words take elided forms (the lexicon stays small)


@lru_cache(maxsize=1 << 18)
def zipf_in(word: str, code: str) -> float:
    from wordfreq import zipf_frequency  # its data ships in the wheel: no download

    return zipf_frequency(word, code)


class Language(WordConstraint):
    """Every word is a word of the language ``code`` (see the module notes)."""

    def __init__(self, code: str):
        self.code = code
        self.name = SERVED.get(code, f"'{code}'")

    def word_ok(self, word: str) -> bool:
        w = normalize(word)
        z = zipf_in(w, self.code)
        if self.code == "en":
            return z > 0
        return z >= FLOOR and z + ENGLISH_MARGIN >= zipf_in(w, "en")

    def why_not(self, word: str) -> str:
        return f"{word!r} is not a {self.name} word"

    def spec(self) -> str:
        return f"language:{self.code}"

    def describe(self) -> str:
        return f"written in {self.name}"

    def word_list(self):
        """The words the masks choose from: the language's (None: the English default).
        A language Perec does not serve is refused here, before decoding, with the reason."""
        if self.code not in SERVED:
            why = (f"written in {NOT_SERVED[self.code]}" if self.code in NOT_SERVED
                   else "the embedded model was not measured to write it")
            raise ImpossibleConstraint(f"'language:{self.code}': not served ({why}; served: {', '.join(SERVED)})")
        if self.code == "en":
            return None
        return language_words(self.code)

    def check(self, text: str) -> list[Violation]:
        words = [normalize(m.group()) for m in iter_words(text)]
        if not words:
            return []  # no words: nothing is written in another language
        from wordfreq import word_frequency

        def logf(w: str, code: str) -> float:
            return math.log10(word_frequency(w, code) + 1e-9)

        # A unigram language model per language: the text's mean log-likelihood ratio of
        # the language against each rival must not fall ENGLISH_MARGIN below even.
        for rival in RIVALS.get(self.code, ("en",)):
            ratio = sum(logf(w, self.code) - logf(w, rival) for w in words) / len(words)
            if ratio < -ENGLISH_MARGIN:
                return [Violation(0, len(text), self.spec(),
                                  f"the text reads as {SERVED.get(rival, rival)}, not {self.name} "
                                  f"(word frequencies)")]
        known = sum(word_frequency(w, self.code) > 0 for w in words) / len(words)
        if known < KNOWN_SHARE:
            return [Violation(0, len(text), self.spec(),
                              f"only {known:.0%} of the words are {self.name} words (at least {KNOWN_SHARE:.0%})")]
        return []


@lru_cache(maxsize=4)
def language_words(code: str) -> tuple[str, ...]:
    """wordfreq's words of ``code`` at zipf >= FLOOR that are words in Perec's sense, plus
    the elided forms of the commoner ones."""
    from wordfreq import get_frequency_dict

    freqs = get_frequency_dict(code)
    cut = 10 ** (FLOOR - 9)
    words = [w for w, f in freqs.items() if f >= cut and WORD_RE.fullmatch(w)]
    common = [w for w in words if freqs[w] >= 10 ** (ELIDED_FLOOR - 9) and w[0] in "aeiouhàâéèêîôûœ"]
    words += [e + w for e in ELISIONS.get(code, ()) for w in common]
    return tuple(words)


def language_code(arg: str | None) -> str:
    """An ISO 639-1 code wordfreq has a list for (any of them: check judges every one;
    the masks serve only ``SERVED``)."""
    from wordfreq import available_languages

    code = require_arg("language", arg).lower()
    if len(code) != 2 or code not in available_languages():
        raise SpecError(f"'language': {shown(code)} is not a language code Perec knows "
                        f"(ISO 639-1, e.g. language:fr; served: {', '.join(SERVED)})")
    return code


@register("language", description="The answer is written in this language (ISO 639-1 code): "
          "every word is a word of it; served: " + ", ".join(SERVED) + ".",
          example="language:fr", level="word")
def _language(arg):
    return Language(language_code(arg))
