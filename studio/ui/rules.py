"""The active constraint set as the studio edits it: a list of spec strings (ANDed), built
from the registry, from presets, or from a spec typed by hand; plus the poetic form.

Everything here is pure Python over ``constraints`` and ``constraints.spec``: every change is
validated by parsing, so the set in a session is always one the CLI would accept.
"""

from __future__ import annotations

import html
import json

from constraints import forms, limits
from constraints.base import And, Constraint, SpecError, entries, lookup, quote_item

from constraints.spec import parse_spec, to_spec

# Presets: (button label, spec template or None, form).  {arg} is the writer's letter or words
# (the Tautogram letter box for Tautogram, the word box for the others), put into the spec by
# the preset's entry in PRESET_FILL (as given when it has none).
PRESETS: dict[str, tuple[str | None, str]] = {
    "Lipogram (no e)": ("lipogram:e", ""),
    "One syllable": ("syllables:1", ""),
    "Tautogram": ("starts-with:{arg}", ""),
    "Haiku": (None, "haiku"),
    "Limerick": (None, "limerick"),
    "Sonnet": (None, "sonnet"),
    "Word bank": ("word-bank:{arg}", ""),
    "Exactly N sentences": ("sentences:{arg}", ""),
    "Every sentence starts with…": ("each-sentence:(starts-with-word:{arg})", ""),
    "N words per sentence": ("each-sentence:(words:{arg})", ""),
    # The rules writers state in words (issue 17, IFEval's instructions).
    "No commas": ('ban:","', ""),
    "N paragraphs": ("paragraphs:{arg}", ""),
    "A bulleted list of N": ("bullets:{arg}", ""),
    "A title": ("title", ""),
    "End with…": ("ends-with-text:{arg}", ""),
    "Use the word … N times": ("count-word:{arg}", ""),
    "Answer in JSON": ("json", ""),
}
# What a preset's box must hold, for the message when it is empty.
PRESET_ARGS = {"Tautogram": "a letter", "Word bank": "some words", "Exactly N sentences": "a number (e.g. 3)",
               "Every sentence starts with…": "a word (e.g. He)", "N words per sentence": "a number or a range (e.g. 8..12)",
               "N paragraphs": "a number (e.g. 3)", "A bulleted list of N": "a number (e.g. 4)",
               "End with…": "the closing phrase (e.g. Is there anything else?)",
               "Use the word … N times": "a word and a count (e.g. river 3, or river >=3)"}
DEFAULT_WORD_BANK = "sea,salt,wind,stone,light,dark,old,cold+function"


class RuleError(ValueError):
    """A constraint or form the writer asked for that cannot be used (message in words)."""


# ----------------------------------------------------------------- the registry


def entry_choices() -> list[tuple[str, str]]:
    """(label, name) for a dropdown, grouped by level as the registry sorts them."""
    return [(f"{e.name} — {e.description.split('.')[0].lower()}", e.name) for e in entries()]


def entry_help(name: str | None) -> str:
    if not name:
        return "Pick a rule to see what it does."
    try:
        e = lookup(name)
    except SpecError as err:
        return str(err)
    arg = "takes an argument" if e.takes_arg else "takes no argument"
    return f"**{e.name}** ({e.level} level, {arg}): {e.description}  \nExample: `{e.example}`"


def example_arg(name: str) -> str:
    """The argument part of the registry's example, to prefill the argument box."""
    try:
        ex = lookup(name).example
    except SpecError:
        return ""
    return ex.split(":", 1)[1] if ":" in ex else ""


def make_spec(name: str | None, arg: str | None) -> str:
    """One rule from the picker: name plus argument, validated; returns its spec."""
    if not name:
        raise RuleError("choose a rule first")
    arg = (arg or "").strip()
    entry = _lookup(name)
    # A rule that takes a rule (each-sentence:(words:8..12)) is given as a spec, unquoted.
    text = f"{entry.name}:{arg if entry.takes_spec else _quote(arg)}" if arg else entry.name
    spec = parse_rule(text).spec()
    # Keep the canonical form only if it parses back to the same rule (a rule whose spec()
    # forgets to quote an argument holding & | ) would not).
    try:
        return spec if parse_rule(spec).spec() == spec else text
    except RuleError:
        return text


def _quote(arg: str) -> str:
    # The spec language ends an argument at & | ); a quoted literal is one item of a list,
    # so the items holding them are quoted one by one (a writer who typed quotes meant them).
    if '"' in arg or not any(c in arg for c in "&|)"):
        return arg
    return ",".join(quote_item(x.strip()) if x.strip() else x for x in arg.split(","))


def _lookup(name: str):
    try:
        return lookup(name.strip().lower())
    except SpecError as e:
        raise RuleError(str(e)) from None


def parse_rule(text: str) -> Constraint:
    try:
        return parse_spec(text)
    except (SpecError, ValueError) as e:  # ImpossibleConstraint is a ValueError too
        raise RuleError(str(e)) from None


# ----------------------------------------------------------------- the set


def bounded(active: list[str]) -> list[str]:
    """``active`` if it is within ``limits.RULES_PER_DRAFT``; else refused in one line.
    Every way a set grows (add, update, a typed spec, a preset) and every use of one
    passes here, so repeated adds cannot pile rules up without limit."""
    limits.RULES_PER_DRAFT.check(len(active))
    return active


def combined(active: list[str]) -> Constraint | None:
    cs = [parse_rule(s) for s in bounded(active)]
    if not cs:
        return None
    return cs[0] if len(cs) == 1 else And(*cs)


def spec_string(active: list[str]) -> str:
    """The set as one spec the CLI accepts (``perec generate -c '...'``)."""
    return to_spec(combined(active))


def from_spec_text(text: str) -> list[str]:
    """A spec typed by hand -> the list of its top-level conjuncts (empty text: none)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    return bounded([c.spec() for c in parse_rule(text).leaves()])


def add(active: list[str], spec: str) -> list[str]:
    new = [c.spec() for c in parse_rule(spec).leaves()]
    return bounded(active + [s for s in new if s not in active])


def replace(active: list[str], old: str | None, spec: str) -> list[str]:
    if not old or old not in active:
        raise RuleError("select an active rule to update (click its chip)")
    new = [c.spec() for c in parse_rule(spec).leaves()]
    i = active.index(old)
    rest = [s for s in active if s != old and s not in new]
    return bounded(rest[:i] + new + rest[i:])


def remove(active: list[str], spec: str | None) -> list[str]:
    if not spec or spec not in active:
        raise RuleError("select an active rule to remove (click its chip)")
    return [s for s in active if s != spec]


def chips(active: list[str]) -> list[tuple[str, str]]:
    """(readable label, spec) per active rule, for the chip selector."""
    out = []
    for s in active:
        try:
            out.append((parse_rule(s).describe(), s))
        except RuleError:
            out.append((s, s))
    return out


def split_name_arg(spec: str | None) -> tuple[str | None, str]:
    """The picker's (name, argument) for editing an active rule, when it is one atom."""
    if not spec:
        return None, ""
    name, _, arg = spec.partition(":")
    try:
        lookup(name.strip())
    except SpecError:
        return None, spec
    return name.strip(), arg.strip().strip('"')


def preset_input(label: str, letter: str, bank: str, arg: str) -> str:
    """Which box a preset reads: the letter, the word bank, or the N / word box."""
    return {"Tautogram": letter, "Word bank": bank}.get(label, arg)


def from_preset(label: str, spec: str) -> bool:
    """Whether an active rule is one this preset adds (its template up to the argument)."""
    template = PRESETS.get(label, (None, ""))[0]
    return bool(template) and spec.startswith(template.split("{arg}")[0])


def _phrase(arg: str) -> str:
    # Any text, as a quoted literal (a JSON string): commas, quotes and brackets included.
    return json.dumps(arg, ensure_ascii=False)


def _word_and_count(arg: str) -> str:
    """"river 3", "river, 3" or "river >=3" -> river,3 / river,>=3 (a count as in words:)."""
    word, _, count = arg.replace(",", " ").strip().partition(" ")
    count = count.strip().replace(" ", "")
    if not word or not count:
        raise RuleError(f"Use the word … N times: give {PRESET_ARGS['Use the word … N times']}")
    return f"{word},{count}"


# How a preset's box becomes its argument, where it is not put in as given.
PRESET_FILL = {"End with…": _phrase, "Use the word … N times": _word_and_count}


def preset_slug(label: str) -> str:
    """The preset's name in the page (elem_id preset-SLUG) and its endpoint
    (studio_preset_SLUG): its first word, or as many first words as tell it from the
    other presets ("n_paragraphs", "n_words")."""
    def words(lab):
        return ["".join(ch for ch in w.lower() if ch.isalnum()) for w in lab.split()]

    mine = [w for w in words(label) if w]
    others = [[w for w in words(lab) if w] for lab in PRESETS if lab != label]
    for n in range(1, len(mine) + 1):
        if all(o[:n] != mine[:n] for o in others):
            return "_".join(mine[:n])
    return "_".join(mine)


def preset_spec(label: str, arg: str = "") -> str | None:
    """The spec a preset fills in from the writer's box, as written (not yet parsed), or
    None for a preset that sets only a form."""
    if label not in PRESETS:
        raise RuleError(f"unknown preset '{label}'")
    template = PRESETS[label][0]
    if template is None:
        return None
    if "{arg}" in template:
        arg = (arg or "").strip()
        if not arg:
            raise RuleError(f"{label}: give {PRESET_ARGS[label]} first")
        if label == "Tautogram" and (len(arg) != 1 or not arg.isalpha()):
            raise RuleError("Tautogram: give one letter, e.g. t")
        # replace, not format: a filled-in argument may hold braces ("End with {x}").
        template = template.replace("{arg}", PRESET_FILL.get(label, str)(arg))
    return template


def preset(label: str, arg: str = "") -> tuple[str | None, str]:
    """(spec to add or None, form to set or "") for a preset button: the filled-in spec,
    validated and in its canonical form."""
    spec = preset_spec(label, arg)
    return (None if spec is None else parse_rule(spec).spec()), PRESETS[label][1]


# ----------------------------------------------------------------- forms


def form_choices() -> list[str]:
    return [""] + list(forms.BUILTINS)


def check_form_spec(form: str) -> str:
    """The canonical spec of a form the writer typed ("" for none)."""
    if form is not None and not isinstance(form, str):
        raise RuleError(f"a form must be a form name or spec (got {type(form).__name__})")
    form = (form or "").strip()
    if not form:
        return ""
    try:
        return forms.parse_form(form).spec()
    except ValueError as e:
        raise RuleError(str(e)) from None


def chips_html(active: list[str], form: str) -> str:
    """A read-only chip row (for the header of the editor)."""
    items = [f'<span class="chip">{html.escape(label)}</span>' for label, _ in chips(active)]
    if form:
        items.append(f'<span class="chip chip-form">form: {html.escape(form)}</span>')
    return " ".join(items) or '<span class="chip chip-none">no constraints: the model writes freely</span>'
