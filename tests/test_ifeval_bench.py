"""bench/ifeval.py: the IFEval translator against IFEval's own checker, and the JSONL
contract of a run on the tiny model (issue 17).

The translator's promise: for a prompt's instructions, the spec it writes holds exactly
when IFEval's checker says the instructions are followed, on texts written by hand.  Where
a rule of the agreed spec surface is not on this checkout yet, Perec's side of a case
skips (by name); IFEval's side still runs, so the hand-written texts are known good."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import DATA

from bench.ifeval_translate import (TRANSLATORS, TranslationError, budget, spec_string, translate,
                                    word_margin)
from constraints.base import SpecError, lookup

IFEVAL_DEV = DATA / "ifeval-dev.jsonl"


@pytest.fixture(scope="module")
def records() -> dict[int, dict]:
    if not IFEVAL_DEV.exists():
        pytest.skip(f"no IFEval dev split at {IFEVAL_DEV}")
    return {r["key"]: r for r in map(json.loads, IFEVAL_DEV.read_text(encoding="utf-8").splitlines()) if r}


def _ifeval():
    pytest.importorskip("lm_eval", reason="IFEval's checker needs lm-eval (make setup)")
    pytest.importorskip("langdetect")
    from bench.judges import ifeval

    return ifeval


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def missing_rules(spec: str) -> list[str]:
    """The rule names of ``spec`` this checkout does not register (yet)."""
    bare = _QUOTED.sub('""', spec)
    names = re.findall(r"(?:^|[&|(]\s*)([a-z][a-z0-9-]*)", bare)
    return sorted({n for n in names if not _known(n)})


# Syntax the agreed spec surface adds (quoted literals: engineer A; paragraph separators:
# engineer B), each with a spec that parses once it is on this checkout.
PENDING_SYNTAX = {"quoted literals": (_QUOTED, 'ban:","'), "paragraph separators": (re.compile(r";sep="),
                                                                                 'paragraphs:2;sep="***"')}


def missing_syntax(spec: str) -> list[str]:
    from constraints.spec import parse_spec

    out = []
    for what, (used, probe) in PENDING_SYNTAX.items():
        if used.search(spec):
            try:
                parse_spec(probe)
            except SpecError:
                out.append(what)
    return out


def _known(name: str) -> bool:
    try:
        lookup(name)
    except SpecError:
        return False
    return True


def _lines(*parts: str) -> str:
    return "\n".join(parts)


# Plain English the language detector reads as English, long enough to count as an answer.
PROSE = ("The river runs past the old mill every morning while the town is still asleep. "
         "Fishermen walk along the bank and talk about the weather and the price of bread.")
LOWER = PROSE.lower()
UPPER = PROSE.upper()
JAPAN = "Day one brings Tokyo and its temples and day two brings Kyoto and its quiet gardens."
TOPIC = "Write a funny haiku about moms, containing keywords \"mom\" and \"mother\" in your response."
BULLETS = [f"* {w} is a thing to pack for a long journey by train" for w in
           ("Water", "Bread", "A map", "A coat", "A book", "A lamp")]


def _sections(marker: str, n: int, body: str) -> str:
    return "\n\n".join(f"{marker} {i}\n{body}" for i in range(1, n + 1))


def _placeholders(n: int) -> str:
    return "\n".join(f"Entry {i}: [field {i}] goes here for the hiring team to read." for i in range(1, n + 1))


# key -> (a response that follows every instruction, one that breaks one of them)
CASES = {
    1001: (JAPAN, JAPAN.replace(" and day", ", and day")),
    1005: (_placeholders(12), _placeholders(11)),
    1021: (_sections("PARAGRAPH", 2, UPPER), _sections("PARAGRAPH", 1, UPPER)),
    1087: (LOWER, PROSE),
    1092: (PROSE, " ".join([PROSE] * 10)),
    1098: (_lines(PROSE, "******", JAPAN), PROSE + " " + JAPAN),
    1130: ("Moon over a calm sea; a mild wind blows across rocks and reeds.", PROSE),
    1139: (TOPIC + "\n\n" + "My mom is my mother and she laughs at every joke I tell her at dinner.",
           "My mom is my mother and she laughs at every joke I tell her at dinner."),
    1147: (PROSE, PROSE + " Many thanks to them."),
    1148: ('{"title": "A short note", "text": "' + PROSE + '"}', "Here it is: {\"title\": \"A short note\"}"),
    1180: (_lines("<<Two Answers>>", "", PROSE, "******", JAPAN), _lines("Two Answers", "", PROSE, "******", JAPAN)),
    1203: (" ".join(["War is loud and peace is quiet."] * 10), " ".join(["War is loud and peace is quiet."] * 9)),
    122: (f'"{PROSE}"', f'"{PROSE}'),
    1220: (PROSE + " Is there anything else I can help with?", PROSE),
    1236: (_lines(PROSE, "***", JAPAN, "***", PROSE), _lines(PROSE, "***", JAPAN)),
    1237: ("The *tango* of the *Argentinian* coast is *famous* for its music and the river runs by.",
           "The *tango* of the *Argentinian* coast is famous for its music and the river runs by."),
    1262: (_lines("<<The Mill>>", "", PROSE), _lines("The Mill", "", PROSE)),
    1286: ("\n".join(BULLETS), "\n".join(BULLETS[:5])),
    1314: ("The NASA team met at dawn. " + PROSE, PROSE),
    1367: (PROSE + "\n\nP.P.S. Bring an umbrella to the mill.", PROSE),
    1609: ('"' + "\n\n".join(["Weekend plans start early. " + PROSE] + [PROSE] * 3) + '"',
           '"' + "\n\n".join(["Sunday plans start early. " + PROSE] + [PROSE] * 3) + '"'),
    227: ("My answer is yes. " + PROSE, "My answer is perhaps. " + PROSE),
}


def test_every_dev_prompt_translates_and_every_type_has_a_translator(records):
    seen = set()
    for rec in records.values():
        spec = spec_string(rec)
        assert spec and "None" not in spec, rec["key"]
        assert [i for i, _ in translate(rec)] == rec["instruction_id_list"]
        assert budget(rec) >= 256
        seen.update(rec["instruction_id_list"])
    assert seen == set(TRANSLATORS)  # the dev split holds all 25 types


def test_the_checker_knows_exactly_the_types_we_translate():
    assert set(_ifeval().instruction_types()) == set(TRANSLATORS)


def test_hand_written_cases_cover_a_dozen_prompts_and_many_types(records):
    types = {t for k in CASES for t in records[k]["instruction_id_list"]}
    assert len(CASES) >= 12 and len(types) >= 20


@pytest.mark.parametrize("key", sorted(CASES))
def test_ifeval_checker_agrees_with_the_hand_written_cases(records, key):
    judge = _ifeval().judge
    good, bad = CASES[key]
    rec = records[key]
    assert all(judge(rec, good)["strict"]), (key, judge(rec, good))
    assert not all(judge(rec, bad)["strict"]), key


@pytest.mark.parametrize("key", sorted(CASES))
def test_our_check_of_the_translated_spec_agrees(records, key):
    import studio
    from constraints.spec import parse_spec, to_spec

    spec = spec_string(records[key])
    missing = missing_rules(spec) + missing_syntax(spec)
    if missing:
        pytest.skip(f"not on this checkout yet: {', '.join(missing)}")
    c = parse_spec(spec)
    assert to_spec(parse_spec(to_spec(c))) == to_spec(c)  # round trip
    good, bad = CASES[key]
    assert studio.check(good, spec) == [], (spec, studio.check(good, spec))
    assert studio.check(bad, spec) != [], spec


def test_word_counts_keep_a_margin_for_the_other_tokenizer():
    # IFEval counts \w+ runs, Perec Treebank words: the bound moves to IFEval's safe side.
    rec = {"key": 1, "prompt": "p", "instruction_id_list": ["length_constraints:number_words"] * 2,
           "kwargs": [{"relation": "less than", "num_words": 300}, {"relation": "at least", "num_words": 40}]}
    assert spec_string(rec) == f"words:<{300 - word_margin(300)} & words:>={40 + word_margin(40)}"
    assert word_margin(300) == 30 and word_margin(5) == 2
    # Bounded on both sides, the margin shrinks so that some number of words is left.
    rec["kwargs"] = [{"relation": "less than", "num_words": 700}, {"relation": "at least", "num_words": 600}]
    assert spec_string(rec) == "words:<667 & words:>=633"


def test_literals_follow_the_case_the_prompt_asks_for():
    rec = {"key": 2, "prompt": "p",
           "instruction_id_list": ["change_case:english_capital", "startend:end_checker", "keywords:existence"],
           "kwargs": [{}, {"end_phrase": "Any other questions?"}, {"keywords": ["river"]}]}
    assert spec_string(rec) == 'uppercase & language:en & ends-with-text:"ANY OTHER QUESTIONS?" & count-text:"RIVER",>=1'


@pytest.mark.parametrize("rec, words", [
    ({"key": 3, "prompt": "p", "instruction_id_list": ["nonsense:type"], "kwargs": [{}]}, "unknown IFEval instruction"),
    ({"key": 4, "prompt": "p", "instruction_id_list": ["length_constraints:number_words"],
      "kwargs": [{"relation": "about", "num_words": 10}]}, "kwarg 'relation'"),
    ({"key": 5, "prompt": "p", "instruction_id_list": ["detectable_format:number_bullet_lists"],
      "kwargs": [{"num_bullets": "three"}]}, "kwarg 'num_bullets'"),
    ({"key": 6, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []}, "one object per"),
    ({"key": 7, "prompt": "p", "instruction_id_list": ["change_case:english_capital", "change_case:english_lowercase"],
      "kwargs": [{}, {}]}, "lower case and all capitals"),
])
def test_untranslatable_instructions_name_the_problem(rec, words):
    with pytest.raises(TranslationError, match=words):
        spec_string(rec)


def test_the_checker_runs_unpatched_from_lm_eval():
    ifeval = _ifeval()
    from lm_eval.tasks.ifeval import instructions_util

    assert "site-packages" in instructions_util.__file__ and ifeval.judge
    # lm-eval's own sentence counter, on NLTK's trained Punkt: "Mr." ends nothing.
    assert instructions_util.count_sentences("Mr. Smith came home. He sat down!") == 2


TINY_KEYS = (1092, 1381, 1001)  # words, sentences, no commas
TINY_TOKENS = 24  # a short budget: the contract, not the answers, is under test


@pytest.fixture(scope="module")
def tiny_run(tiny_engine, records, tmp_path_factory):
    from bench.ifeval import run

    recs = [records[k] for k in TINY_KEYS]
    out = tmp_path_factory.mktemp("ifeval") / "out.jsonl"
    wrote = run(recs, out, tiny_engine, seed=1, rows=6, command="test", max_new_tokens=TINY_TOKENS)
    return recs, out, wrote


def test_a_run_on_the_tiny_model_writes_both_arms_and_resumes(tiny_engine, tiny_run):
    import studio
    from bench.ifeval import base_path, read_lines, run

    recs, out, wrote = tiny_run
    assert wrote == {"perec": 3, "base": 3}
    perec, base = read_lines(out), read_lines(base_path(out))
    keys = sorted(r["key"] for r in recs)
    assert sorted(ln["key"] for ln in perec) == keys == sorted(ln["key"] for ln in base)
    by_key = {r["key"]: r for r in recs}
    for ln in perec:
        assert ln["prompt"] == by_key[ln["key"]]["prompt"] and ln["spec"] == spec_string(by_key[ln["key"]])
        if ln.get("refused"):
            # Refused before decoding: nothing written, and the reason in words.
            assert ln["response"] == "" and ln["refused"].strip()
            assert missing_rules(ln["spec"]) or missing_syntax(ln["spec"]) or "Impossible" in ln["refused"], ln
        else:
            assert ln["max_new_tokens"] == TINY_TOKENS and ln["stop_reason"]
            assert studio.check(ln["response"], ln["spec"]) == [], ln  # held by construction
    for ln in base:
        assert ln["spec"] is None and not ln.get("refused") and ln["stop_reason"]
    assert run(recs, out, tiny_engine, seed=1, max_new_tokens=TINY_TOKENS) == {}  # resumed: nothing left
    assert len(read_lines(out)) == 3 and len(read_lines(base_path(out))) == 3


def test_the_judge_report_on_the_tiny_run(tiny_run):
    _ifeval()
    from bench.ifeval import MIN_CONTENT_WORDS, accuracy, content_words, judge_lines, report

    recs, out, _ = tiny_run
    by_key = {str(r["key"]): r for r in recs}
    rows = judge_lines(out, by_key)
    assert len(rows) == 3
    for r in rows:
        if r.get("refused") or content_words(r["response"]) < MIN_CONTENT_WORDS:
            # Refused (empty) or degenerate: failed, whatever the rule's own verdict.
            assert r["degenerate"] and not any(r["strict"]) and not any(r["loose"]), r
    text = report(out, by_key, None, "test")
    a = accuracy(rows)
    assert (f"| perec | 3 | {a['prompt_strict']:.3f} | {a['prompt_loose']:.3f} | {a['instruction_strict']:.3f} | "
            f"{a['instruction_loose']:.3f} |") in text
    assert "| base | 3 |" in text
    for t in ("length_constraints:number_words", "length_constraints:number_sentences", "punctuation:no_comma"):
        assert f"| {t} | 1 |" in text
    refused = [r for r in rows if r.get("refused")]
    assert all(f"- {r['key']} (" in text for r in refused)


@pytest.mark.real
def test_the_real_model_answers_an_ifeval_prompt_under_its_spec(real_engine, records, tmp_path):
    # Prompt 1381 asks for fewer than 10 sentences: the spec holds it, IFEval's checker agrees,
    # and the answer is an answer (not emptied to meet the rule).
    import studio
    from bench.ifeval import MIN_CONTENT_WORDS, content_words, read_lines, run

    judge = _ifeval().judge
    rec = records[1381]
    out = tmp_path / "real.jsonl"
    run([rec], out, real_engine, seed=0, rows=2, max_new_tokens=160)
    (ln,) = read_lines(out)
    assert not ln.get("refused"), ln
    assert studio.check(ln["response"], ln["spec"]) == []
    assert content_words(ln["response"]) >= MIN_CONTENT_WORDS, ln["response"]
    assert all(judge(rec, ln["response"])["strict"]), ln["response"]
