"""IFEval instructions -> Perec specs: one function per instruction type, fed the
instance's ``kwargs`` (never per prompt).

IFEval (Zhou et al. 2023) gives each prompt an ``instruction_id_list`` and one ``kwargs``
dict per instruction; its checker (lm-eval's ``lm_eval/tasks/ifeval``) then judges the
response.  Each function below returns the Perec rule that makes that checker's verdict
hold, written in the spec language's agreed names (issue 17).  Where IFEval's unit is not
Perec's, the rule is chosen so IFEval's verdict holds whatever the difference:

- ``keywords:existence`` / ``keywords:frequency`` search the keyword as a substring, any
  case (``re.search`` / ``re.findall`` with IGNORECASE): ``count-text:"KW",COUNT``, the
  same count, rather than a whole-word rule that would ask for more than IFEval does.
- ``keywords:forbidden_words`` looks for ``\\bWORD\\b`` with Python's word boundary, which
  also finds "river" in "river's" or "river-bank" (one word to Perec): ``ban:"WORD"``, the
  substring never written, which implies IFEval's verdict.
- ``length_constraints:number_words`` counts ``RegexpTokenizer(r"\\w+")`` runs; Perec's
  ``words:`` counts Treebank tokens (units.py).  The two differ by a few per hundred
  ("well-known", "3.5" and "U.S." are one Treebank word but two runs; "cannot" is two
  Treebank words and one run; "..." and "—" are Treebank words and no run), so the bound
  moves by a margin of 10% (at least 2 words) on the side that keeps IFEval's verdict.
- ``detectable_format:number_highlighted_sections`` and
  ``detectable_content:number_placeholders``: ``highlights:>=N`` and ``placeholders:>=N``,
  which count IFEval's own matches (``\\*[^\\n*]*\\*`` with something inside, ``\\[.*?\\]``).
- ``detectable_format:constrained_response`` accepts any of three phrases: a ``regex:``
  whose answer ends with one of them, so the model chooses.
- ``change_case:english_lowercase`` / ``english_capital`` also ask langdetect for English:
  ``lowercase`` / ``uppercase`` and ``language:en``.  Under either, the literals IFEval
  compares without case (an end phrase, the repeated request, keywords, the postscript
  marker) are written in that case, so the two rules do not contradict each other.

Anything else raises TranslationError naming the instruction.  Budget: ``budget`` is the
token budget a prompt's instructions need (words:>=300 needs room), before the masks' own
budget check grows it (bench/collie.py ``fit_budget``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Callable

DEFAULT_BUDGET = 256  # tokens: an instruct answer of a few paragraphs
MOST_BUDGET = 2048
TOKENS_PER_WORD = 1.5  # SmolLM2's tokenizer on English prose, with room for punctuation
RELATIONS = {"less than": "<", "at least": ">="}
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


class TranslationError(ValueError):
    """An instruction (or its kwargs) with no Perec translation; the message names it."""


# ------------------------------------------------------------------ arguments

def literal(text: str) -> str:
    """A quoted literal argument: a JSON string, so it can hold any character."""
    return json.dumps(text, ensure_ascii=False)


def _need(kw: dict, key: str, iid: str, kind=str):
    value = kw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise TranslationError(f"{iid}: kwarg {key!r} must be a {'non-empty string' if kind is str else kind.__name__}, "
                               f"got {value!r}")
    if kind is int and value < 0:
        raise TranslationError(f"{iid}: kwarg {key!r} must not be negative, got {value}")
    return value


def _need_words(kw: dict, key: str, iid: str) -> list[str]:
    words = kw.get(key)
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise TranslationError(f"{iid}: kwarg {key!r} must be a list of words, got {words!r}")
    return words


def _relation(kw: dict, key: str, iid: str) -> str:
    rel = kw.get(key)
    if rel not in RELATIONS:
        raise TranslationError(f"{iid}: kwarg {key!r} must be one of {', '.join(map(repr, RELATIONS))}, got {rel!r}")
    return RELATIONS[rel]


def _count(op: str, n: int) -> str:
    return f"{op}{n}"


def word_margin(n: int) -> int:
    """How far a words: bound moves from IFEval's, for the difference in word units."""
    return max(2, math.ceil(n / 10))


# ------------------------------------------------------------------ one function per type
#
# Each takes (kwargs, context, instruction id) and returns a spec fragment.


@dataclass(frozen=True)
class Context:
    """What one instruction's rule depends on in the others of its prompt."""

    case: str | None = None  # "lower" / "upper": the case change_case puts every letter in,
    # applied to the literals IFEval compares without case
    word_margin_cap: int | None = None  # the most a words: bound moves when the prompt bounds
    # words on both sides


def _word_range_margin(pairs: list[tuple[str, dict]]) -> int | None:
    """At least L and fewer than U words: the most each bound may move so that a third of
    the range is left between the two moved bounds."""
    bounds = {kw.get("relation"): kw.get("num_words") for i, kw in pairs if i == "length_constraints:number_words"}
    low, high = bounds.get("at least"), bounds.get("less than")
    if not (isinstance(low, int) and isinstance(high, int)):
        return None
    return max(0, (high - 1 - low) // 3)

def _cased(text: str, case: str | None) -> str:
    return text.lower() if case == "lower" else text.upper() if case == "upper" else text


def _no_comma(kw, ctx, iid):
    return f"ban:{literal(',')}"


def _number_words(kw, ctx, iid):
    n, op = _need(kw, "num_words", iid, int), _relation(kw, "relation", iid)
    m = word_margin(n) if ctx.word_margin_cap is None else min(word_margin(n), ctx.word_margin_cap)
    if op == "<":
        if n - m < 1:
            raise TranslationError(f"{iid}: fewer than {n} words leaves no room for an answer")
        return f"words:<{n - m}"
    return f"words:>={n + m}"


def _number_sentences(kw, ctx, iid):
    # IFEval counts with NLTK's trained Punkt, the splitter Perec's sentences: uses.
    n, op = _need(kw, "num_sentences", iid, int), _relation(kw, "relation", iid)
    if op == "<" and n < 2:
        raise TranslationError(f"{iid}: fewer than {n} sentences leaves no room for an answer")
    return "sentences:" + _count(op, n)


def _number_paragraphs(kw, ctx, iid):
    # IFEval splits at *** (re.split(r"\s?\*\*\*\s?")): paragraphs separated by that line.
    return f"paragraphs:{_need(kw, 'num_paragraphs', iid, int)};sep={literal('***')}"


def _nth_paragraph_first_word(kw, ctx, iid):
    # IFEval splits at a blank line ("\n\n"), Perec's paragraph break.
    n, i = _need(kw, "num_paragraphs", iid, int), _need(kw, "nth_paragraph", iid, int)
    word = _need(kw, "first_word", iid)
    if not 1 <= i <= n:
        raise TranslationError(f"{iid}: paragraph {i} of {n} does not exist")
    if not re.fullmatch(r"[A-Za-z]+", word):
        raise TranslationError(f"{iid}: first word {word!r} is not a plain word")
    # IFEval lower-cases the paragraph's first word before comparing: a paragraph opens
    # with it capitalized, as prose does, unless the prompt asks for lower case throughout.
    return f"paragraphs:{n} & paragraph-starts:{i}={_cased(word, ctx.case) if ctx.case else word.capitalize()}"


def _forbidden_words(kw, ctx, iid):
    return "ban:" + ",".join(literal(w) for w in _need_words(kw, "forbidden_words", iid))


def _existence(kw, ctx, iid):
    words = _need_words(kw, "keywords", iid)
    return " & ".join(f"count-text:{literal(_cased(w, ctx.case))},>=1" for w in words)


def _frequency(kw, ctx, iid):
    word, n = _need(kw, "keyword", iid), _need(kw, "frequency", iid, int)
    return f"count-text:{literal(_cased(word, ctx.case))},{_count(_relation(kw, 'relation', iid), n)}"


def _letter_frequency(kw, ctx, iid):
    # IFEval: collections.Counter(response.lower())[letter].  A "letter" may be '#': the
    # prompt asks for it, so it is counted here, but IFEval's checker takes only a-z and
    # replaces any other by a random letter (dev prompt 1122): that verdict is chance.
    ch, n = _need(kw, "letter", iid), _need(kw, "let_frequency", iid, int)
    count = _count(_relation(kw, "let_relation", iid), n)
    if len(ch) != 1:
        raise TranslationError(f"{iid}: kwarg 'letter' must be one character, got {ch!r}")
    if ch.isalpha():
        return f"count-letter:{ch.lower()},{count}"
    return f"count-text:{literal(ch)},{count}"


def _capital_word_frequency(kw, ctx, iid):
    n = _need(kw, "capital_frequency", iid, int)
    return "caps-words:" + _count(_relation(kw, "capital_relation", iid), n)


def _english_lowercase(kw, ctx, iid):
    return "lowercase & language:en"


def _english_capital(kw, ctx, iid):
    return "uppercase & language:en"


def _response_language(kw, ctx, iid):
    code = _need(kw, "language", iid)
    if not re.fullmatch(r"[a-z]{2}", code):
        raise TranslationError(f"{iid}: {code!r} is not an ISO 639-1 code")
    return f"language:{code}"


def _repeat_prompt(kw, ctx, iid):
    # IFEval: response.strip().lower().startswith(prompt_to_repeat.strip().lower()).
    return f"starts-with-text:{literal(_cased(_need(kw, 'prompt_to_repeat', iid).strip(), ctx.case))}"


def _two_responses(kw, ctx, iid):
    # IFEval: split at ******, exactly two non-empty answers (and they differ).
    return f"paragraphs:2;sep={literal('******')}"


def _end_checker(kw, ctx, iid):
    return f"ends-with-text:{literal(_cased(_need(kw, 'end_phrase', iid).strip(), ctx.case))}"


def _quotation(kw, ctx, iid):
    return f"wrap:{literal(chr(34))}"


def _postscript(kw, ctx, iid):
    # IFEval lower-cases the response before it looks for the marker.
    return f"postscript:{literal(_cased(_need(kw, 'postscript_marker', iid).strip(), ctx.case))}"


def _placeholders(kw, ctx, iid):
    # placeholders: counts IFEval's \[.*?\] matches.
    return f"placeholders:>={_need(kw, 'num_placeholders', iid, int)}"


def _highlighted_sections(kw, ctx, iid):
    # highlights: counts IFEval's non-empty *...* and **...** matches.
    return f"highlights:>={_need(kw, 'num_highlights', iid, int)}"


def _constrained_response(kw, ctx, iid):
    # IFEval looks for the phrases anywhere, case-sensitively: never re-cased.  The answer
    # opens with one (what "answer with one of the options" asks), then may explain: a
    # pattern that puts the phrase last has an open loop first, from which the grammar
    # masker's closing search cannot find its way to the phrase (no closing, so refused).
    choices = "|".join(c.replace(".", r"\.") for c in CONSTRAINED_RESPONSES)
    return "regex:" + literal(r"(?:" + choices + r")[\s\S]*")


def _json_format(kw, ctx, iid):
    return "json"


def _multiple_sections(kw, ctx, iid):
    marker, n = _need(kw, "section_spliter", iid).strip(), _need(kw, "num_sections", iid, int)
    return f"sections:{literal(marker)},{n}"


def _bullet_lists(kw, ctx, iid):
    return f"bullets:{_need(kw, 'num_bullets', iid, int)}"


def _title(kw, ctx, iid):
    return "title"


TRANSLATORS: dict[str, Callable[[dict, Context, str], str]] = {
    "punctuation:no_comma": _no_comma,
    "length_constraints:number_words": _number_words,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:existence": _existence,
    "keywords:frequency": _frequency,
    "keywords:letter_frequency": _letter_frequency,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "change_case:english_lowercase": _english_lowercase,
    "change_case:english_capital": _english_capital,
    "language:response_language": _response_language,
    "combination:repeat_prompt": _repeat_prompt,
    "combination:two_responses": _two_responses,
    "startend:end_checker": _end_checker,
    "startend:quotation": _quotation,
    "detectable_content:postscript": _postscript,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_format:number_highlighted_sections": _highlighted_sections,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:json_format": _json_format,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:number_bullet_lists": _bullet_lists,
    "detectable_format:title": _title,
}
CASE_OF = {"change_case:english_lowercase": "lower", "change_case:english_capital": "upper"}


def _instructions(record: dict) -> list[tuple[str, dict]]:
    ids, kwargs = record.get("instruction_id_list"), record.get("kwargs")
    if not isinstance(ids, list) or not ids:
        raise TranslationError(f"prompt {record.get('key')}: no instruction_id_list")
    if not isinstance(kwargs, list) or len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        raise TranslationError(f"prompt {record.get('key')}: kwargs must be one object per instruction")
    return [(i, {k: v for k, v in kw.items() if v is not None}) for i, kw in zip(ids, kwargs)]


def translate(record: dict) -> list[tuple[str, str]]:
    """(instruction id, spec fragment) for each of the record's instructions, in order."""
    pairs = _instructions(record)
    cases = {CASE_OF[i] for i, _ in pairs if i in CASE_OF}
    if len(cases) > 1:
        raise TranslationError(f"prompt {record.get('key')}: asks for all lower case and all capitals at once")
    ctx = Context(case=cases.pop() if cases else None, word_margin_cap=_word_range_margin(pairs))
    out = []
    for iid, kw in pairs:
        fn = TRANSLATORS.get(iid)
        if fn is None:
            raise TranslationError(f"unknown IFEval instruction {iid!r}")
        out.append((iid, fn(kw, ctx, iid)))
    return out


def spec_string(record: dict) -> str:
    """The whole prompt's spec: every instruction's rule, ANDed."""
    return " & ".join(frag for _, frag in translate(record))


# ------------------------------------------------------------------ budget

def _budget_of(iid: str, kw: dict) -> int:
    """The tokens one instruction needs room for (0: no more than the default)."""
    n = {k: v for k, v in kw.items() if isinstance(v, int) and not isinstance(v, bool)}
    if iid == "length_constraints:number_words" and kw.get("relation") == "at least":
        return math.ceil((n["num_words"] + word_margin(n["num_words"])) * TOKENS_PER_WORD) + 32
    if iid == "length_constraints:number_sentences" and kw.get("relation") == "at least":
        return 24 * n["num_sentences"] + 32
    if iid in ("length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word"):
        return 60 * n["num_paragraphs"]
    if iid == "detectable_format:multiple_sections":
        return 60 * n["num_sections"]
    if iid == "detectable_format:number_bullet_lists":
        return 20 * n["num_bullets"] + 32
    if iid == "detectable_content:number_placeholders":
        return 12 * n["num_placeholders"] + 64
    if iid == "detectable_format:number_highlighted_sections":
        return 16 * n["num_highlights"] + 64
    if iid == "keywords:frequency" and kw.get("relation") == "at least":
        return 24 * n["frequency"]
    if iid == "keywords:letter_frequency" and kw.get("let_relation") == "at least":
        return 8 * n["let_frequency"]
    if iid == "combination:repeat_prompt":
        # The request is written out first (about 4 characters a token), then the answer.
        return len(kw.get("prompt_to_repeat", "")) // 3 + DEFAULT_BUDGET
    if iid == "combination:two_responses":
        return 2 * DEFAULT_BUDGET
    return 0


def budget(record: dict) -> int:
    """Token budget for a prompt: the largest its instructions need, at least the default."""
    need = max([DEFAULT_BUDGET] + [_budget_of(i, kw) for i, kw in _instructions(record)])
    return min(need, MOST_BUDGET)
