"""COLLIE constraint trees -> Perec specs, by the shape of each leaf (never per instance).

A COLLIE leaf reads: split the text at ``input_level`` (None: the whole text), split each
part at ``target_level``, apply ``transformation``, compare with ``relation`` to the
target, and combine the parts with ``reduction`` (only "all" here: every part).  So:

    input_level   None -> a rule on the whole text; sentence / paragraph -> each-sentence:(...)
                  / each-paragraph:(...); word -> a word rule (length:)
    count         characters / words / sentences / paragraphs of the part -> chars: words:
                  sentences: paragraphs: with the relation as the count (==N, >=N, ...)
    position      of words / characters of the whole text -> word-at: / char-at:
                  (COLLIE counts from 0, Perec from 1); of the first / last word of each
                  part -> starts-with-word: / ends-with-word:, or sentence-ends:[...] when
                  each sentence has its own target; last sentence of each paragraph, with
                  one target per paragraph -> paragraph-ends:[...]
    for_each(...) words "in" / "not in" -> include: / ban-words: (a must-use word include:
                  cannot take, such as "9" or "wrought-iron", goes to a free word-at: position)

Two bounds on the same count (>=A and <=B) become one range A..B.  The unit the prompt asks
for ("Please generate a word / sentence / paragraph") is added as one-word / sentences:1 /
paragraphs:1: COLLIE's tree does not check it, but it is what the writer asked for.

Anything else raises TreeError naming the node.  The spec syntax is
/work/notes/structure-spec.md (the structure rules of issue 11).
"""

from __future__ import annotations

import json
import re

from constraints.units import WORD_RE

COUNT_OF = {"character": "chars", "word": "words", "sentence": "sentences", "paragraph": "paragraphs"}
SCOPE_OF = {"sentence": "each-sentence", "paragraph": "each-paragraph"}
OPS = {"==": "", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
UNIT_OF_PROMPT = {"word": "one-word", "sentence": "sentences:1", "paragraph": "paragraphs:1", "passage": None}
_PROMPT_UNIT = re.compile(r"\bgenerate an? (word|sentence|paragraph|passage)\b", re.I)
# A plain argument: what the spec parser reads as one word without quoting.
_PLAIN = re.compile(r"[A-Za-z0-9'’.\-]+")


class TreeError(ValueError):
    """A constraint tree (or target) with no Perec translation; the message names the node."""


def _where(path: str) -> str:
    return path or "the root"


def _word_arg(word, path: str) -> str:
    """One word as a spec argument: plain when the parser reads it as is, else quoted."""
    if not isinstance(word, str) or not word.strip():
        raise TreeError(f"target at {_where(path)} must be a non-empty word, got {word!r}")
    if _PLAIN.fullmatch(word):
        return word
    if '"' in word:
        raise TreeError(f"target at {_where(path)} holds a double quote, which no word argument can: {word!r}")
    return f'"{word}"'


def _word_list(words, path: str) -> str:
    """A word list: a,b,c when every word is plain, else a JSON array."""
    if isinstance(words, str):
        words = [words]
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise TreeError(f"target at {_where(path)} must be a word or a list of words, got {words!r}")
    if all(_PLAIN.fullmatch(w) and "," not in w for w in words):
        return ",".join(words)
    return json.dumps(words, ensure_ascii=False)


def _positions(pos, targets, path: str, what: str) -> list[tuple[int, str]]:
    """COLLIE's 0-based (or negative) positions with their targets -> [(P, X)], P 1-based."""
    pos_list = pos if isinstance(pos, list) else [pos]
    tgt_list = targets if isinstance(pos, list) else [targets]
    if not isinstance(tgt_list, list) or len(tgt_list) != len(pos_list):
        raise TreeError(f"position at {_where(path)}: {len(pos_list)} positions but targets {targets!r}")
    return [(p + 1 if p >= 0 else p, _pos_value(t, path, what)) for p, t in zip(pos_list, tgt_list)]


def _pos_value(t, path: str, what: str) -> str:
    """A word-at / char-at value: P=X items are split at commas, and & | ( ) " end or
    quote a spec argument, so a value holding one cannot be written."""
    if not isinstance(t, str) or not t or any(c in t for c in ',="&|()'):
        raise TreeError(f"position at {_where(path)}: {what} {t!r} cannot be written as P={what.upper()}")
    return t


class _Rules:
    """The pieces found so far: counts keyed by (scope, unit) so bounds merge into ranges."""

    def __init__(self):
        self.counts: dict[tuple[str | None, str], dict[str, int]] = {}
        self.other: list[str] = []
        self.banned: list[str] = []
        self.included: list[str] = []
        self.at: dict[str, dict[int, str]] = {"word-at": {}, "char-at": {}}

    def place(self, name: str, pairs: list[tuple[int, str]], path: str) -> None:
        taken = self.at[name]
        for p, x in pairs:
            if taken.get(p, x) != x:
                raise TreeError(f"position at {_where(path)}: position {p} is both {taken[p]!r} and {x!r}")
            taken[p] = x

    def _place_unlisted(self) -> list[str]:
        """Must-use words that include: cannot take (it takes words of letters: "9",
        "wrought-iron" are COLLIE words but not ours) go at free word positions 3, 5, 7...
        (word-at writes a given word verbatim): the text then contains them, as asked."""
        listed = [w for w in self.included if WORD_RE.fullmatch(w)]
        most = _upper_bound(self.counts.get((None, "words")))
        k = 3
        for w in self.included:
            if WORD_RE.fullmatch(w) or w in self.at["word-at"].values():
                continue
            while k in self.at["word-at"]:
                k += 2
            if most is not None and k > most:
                raise TreeError(f"no free word position for {w!r} within {most} words")
            self.at["word-at"][k] = _pos_value(w, "include", "word")
        return listed

    def count(self, scope: str | None, unit: str, op: str, n, path: str) -> None:
        if isinstance(n, list) and len(n) == 1:
            n = n[0]  # COLLIE's Relation reads a one-element list target as its element
        if not isinstance(n, int) or isinstance(n, bool):
            raise TreeError(f"count at {_where(path)} needs an integer target, got {n!r}")
        bounds = self.counts.setdefault((scope, unit), {})
        if op in bounds:
            raise TreeError(f"count at {_where(path)}: a second '{op}' bound on {unit}")
        bounds[op] = n

    def specs(self) -> list[str]:
        out = []
        for (scope, unit), b in self.counts.items():
            if set(b) == {">=", "<="}:
                if b[">="] > b["<="]:
                    raise TreeError(f"{unit}: at least {b['>=']} and at most {b['<=']} cannot both hold")
                count = f"{b['>=']}..{b['<=']}"
                rules = [f"{unit}:{count}"]
            else:
                rules = [f"{unit}:{op}{n}" for op, n in b.items()]
            for rule in rules:
                out.append(rule if scope is None else f"{scope}:({rule})")
        listed = self._place_unlisted()
        if listed:
            out.append("include:" + _word_list(listed, "include"))
        if self.banned:
            out.append("ban-words:" + _word_list(self.banned, "ban-words"))
        for name, pairs in self.at.items():
            if pairs:
                out.append(f"{name}:" + ",".join(f"{p}={x}" for p, x in pairs.items()))
        return out + self.other


def _leaf(node: dict, target, path: str, rules: _Rules) -> None:
    try:
        inp, tgt, trans = node["input_level"], node["target_level"], node["transformation"]
        rel, red = node["relation"], node["reduction"]
    except (KeyError, TypeError):
        raise TreeError(f"constraint leaf at {_where(path)} lacks input_level / target_level / "
                        f"transformation / relation / reduction: {node!r}") from None
    if not isinstance(trans, dict) or len(trans) != 1:
        raise TreeError(f"transformation at {_where(path)} must be a one-key object, got {trans!r}")
    (kind, arg), = trans.items()
    shape = f"{kind} of {tgt} in {inp or 'the text'}, relation {rel!r}, reduction {red!r}"

    if inp is None:
        if red is not None:
            raise TreeError(f"unknown shape at {_where(path)}: {shape}")
        if kind == "count" and arg is None and tgt in COUNT_OF and rel in OPS:
            return rules.count(None, COUNT_OF[tgt], OPS[rel], target, path)
        if kind == "position" and rel == "==" and tgt in ("word", "character"):
            name = "word-at" if tgt == "word" else "char-at"
            rules.place(name, _positions(arg, target, path, tgt), path)
            return
        if kind == "for_each" and arg is None and tgt == "word" and rel in ("in", "not in"):
            words = target if isinstance(target, list) else [target]
            _word_list(words, path)  # validates
            (rules.included if rel == "in" else rules.banned).extend(words)
            return
        raise TreeError(f"unknown shape at {_where(path)}: {shape}")

    # A rule over every part (word, sentence or paragraph) of the text.
    if red != ["all", None] or kind != "for_each" or not isinstance(arg, dict) or len(arg) != 1:
        raise TreeError(f"unknown shape at {_where(path)}: {shape}")
    (inner, iarg), = arg.items()
    if inner == "count" and iarg is None and rel in OPS:
        if inp == "word" and tgt == "character":
            # Every word's length: our word rule (it counts letters of constraints.units'
            # words; COLLIE counts characters of Treebank tokens, see collie-examples.md).
            if not isinstance(target, int):
                raise TreeError(f"count at {_where(path)} needs an integer target, got {target!r}")
            rules.other.append(f"length:{OPS[rel] or '='}{target}")
            return
        if inp in SCOPE_OF and tgt in COUNT_OF:
            return rules.count(SCOPE_OF[inp], COUNT_OF[tgt], OPS[rel], target, path)
    if inner == "position" and iarg in (0, -1) and rel == "==":
        if inp in SCOPE_OF and tgt == "word":
            if isinstance(target, list):
                if iarg == -1 and inp == "sentence":
                    rules.other.append("sentence-ends:" + json.dumps(_checked(target, path), ensure_ascii=False))
                    return
            else:
                name = "starts-with-word" if iarg == 0 else "ends-with-word"
                rules.other.append(f"{SCOPE_OF[inp]}:({name}:{_word_arg(target, path)})")
                return
        if inp == "paragraph" and tgt == "sentence" and iarg == -1 and isinstance(target, list):
            rules.other.append("paragraph-ends:" + json.dumps(_checked(target, path), ensure_ascii=False))
            return
    raise TreeError(f"unknown shape at {_where(path)}: {shape}")


def _checked(items, path: str) -> list[str]:
    if not items or not all(isinstance(s, str) and s.strip() for s in items):
        raise TreeError(f"targets at {_where(path)} must be non-empty strings, got {items!r}")
    return items


def _walk(node, target, path: str, rules: _Rules) -> None:
    if isinstance(node, dict) and "all" in node:
        parts = node["all"]
        if not isinstance(target, list) or len(target) != len(parts):
            raise TreeError(f"'all' at {_where(path)} has {len(parts)} parts but targets {target!r}")
        for i, (child, t) in enumerate(zip(parts, target)):
            _walk(child, t, f"{path}.all[{i}]".lstrip("."), rules)
        return
    if isinstance(node, dict) and ("or" in node or "and" in node):
        # COLLIE v1 has no or/and instances; an Or has no faithful And-of-rules form.
        key = "or" if "or" in node else "and"
        raise TreeError(f"'{key}' node at {_where(path)} has no Perec translation")
    if not isinstance(node, dict):
        raise TreeError(f"constraint node at {_where(path)} must be an object, got {node!r}")
    _leaf(node, target, path, rules)


def prompt_unit(prompt: str) -> str | None:
    """The spec for the unit COLLIE's prompt asks for (one-word, sentences:1, ...)."""
    m = _PROMPT_UNIT.search(prompt or "")
    if not m:
        raise TreeError(f"the prompt names no unit ('generate a word/sentence/paragraph/passage'): {prompt[:80]!r}")
    return UNIT_OF_PROMPT[m.group(1).lower()]


def translate(record: dict, unit: bool = True) -> list[str]:
    """The Perec specs (joined with & they are the instance's constraint) for one COLLIE
    record: its ``constraint`` tree and ``targets``; with ``unit``, also the unit its
    ``prompt`` asks for."""
    rules = _Rules()
    _walk(record["constraint"], record["targets"], "", rules)
    specs = rules.specs()
    if unit:
        u = prompt_unit(record.get("prompt", ""))
        if u is not None and u not in specs:
            specs.insert(0, u)
    return specs


def spec_string(record: dict, unit: bool = True) -> str:
    return " & ".join(translate(record, unit))


# ------------------------------------------------------------------ budget

TOKENS_PER_WORD = 2.0  # SmolLM2's tokenizer writes ~1.3 tokens a word of English prose;
# the rest is room for the masks to steer an exact count home
SENTENCE_WORDS = 22  # a sentence's length when nothing bounds it
PARAGRAPH_SENTENCES = 4  # a paragraph's sentences when nothing counts them


def _upper_bound(bounds: dict[str, int] | None) -> int | None:
    """The most a count allows (exact or upper bound), None when unbounded."""
    if not bounds:
        return None
    if "" in bounds or "<=" in bounds:
        return bounds.get("", bounds.get("<="))
    return bounds["<"] - 1 if "<" in bounds else None


def _upper(bounds: dict[str, int] | None, default: int, slack: int) -> int:
    """A generous size for a count: its exact value or upper bound, else lower bound +
    ``slack``, else ``default``."""
    if not bounds:
        return default
    for op in ("", "<=", "<"):
        if op in bounds:
            return bounds[op]
    return max(bounds.get(">=", 0), bounds.get(">", 0) + 1) + slack


def budget(record: dict) -> int:
    """max_new_tokens for one instance: room for the exact counts its rules ask for."""
    rules = _Rules()
    _walk(record["constraint"], record["targets"], "", rules)
    unit = prompt_unit(record.get("prompt", ""))
    if unit == "one-word":
        return 16
    c = rules.counts.get
    given = [s for spec in rules.other if spec.startswith("paragraph-ends:")
             for s in json.loads(spec.split(":", 1)[1])]
    per_sentence = _upper(c(("each-sentence", "words")), SENTENCE_WORDS, 8)
    if given:
        sentences = len(given) * _upper(c(("each-paragraph", "sentences")), PARAGRAPH_SENTENCES, 1)
    else:
        default = 1 if unit == "sentences:1" else PARAGRAPH_SENTENCES
        sentences = _upper(c((None, "sentences")), default, 1)
    words = sentences * per_sentence
    if c((None, "words")):
        words = _upper(c((None, "words")), words, 8)
    if c((None, "chars")):
        # English runs ~5.7 characters a word, its space included: //4 is generous
        words = _upper(c((None, "chars")), 0, 20) // 4
    return int(TOKENS_PER_WORD * words) + 2 * sentences + 16
