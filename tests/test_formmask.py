"""Forms by construction (constraints/formspec.py, studio/masks/forms.py, studio/request.py).

The plan is driven by random word choices (no model) and the masks by the tiny random
llama (noise, so whatever form the text has comes from the masks); the independent
``check_form`` judges every poem.
"""

import json

import numpy as np
import pytest

from constraints.base import ImpossibleConstraint, SpecError
from constraints.formspec import FormConstraint, FormPlan, parse_form_arg, word_table
from constraints.phonetics import Reading
from constraints.forms import FormError, check_form
from studio.masks.forms import LINEEND, PURE, SEP, SEP_TAIL, form_index
from studio.request import form_of, poem_prompt, with_form
from studio.decode.settings import Settings
from constraints.spec import parse_spec
from tests.test_cli import perec

SEE = "So long as men can breathe or eyes can see,"
FORMS = ["haiku", "couplet", "quatrain", "limerick", "sonnet", "sonnet-iambic", "couplet-iambic",
         "custom:3-3-3/AAA", "6-4-6-4/ABAB/iambic", "7,7,7,7:AABB", "5-7-5+trochaic"]


def random_poem(fc: FormConstraint, rng) -> str:
    """Pick random allowed words through the plan until every line ends (from where the
    writer's unfinished line leaves off, if there is one)."""
    plan = FormPlan(fc)
    t = plan.t
    rhymes, lines = plan.rhymes0, []
    first, opening = plan.opening()
    for i in range(plan.first, len(plan.lines)):
        U, words, cond = opening if i == first else frozenset({0}), [], plan.cond(i, rhymes)
        while True:
            mid, final = plan.sets(i, cond, U)
            choices = np.flatnonzero(mid | final)
            assert len(choices), (fc.spec(), i, U)  # never a dead end
            w = int(rng.choice(choices))
            M, F = plan.advance(i, cond, U, w)
            assert M or F
            words.append(t.words[w])
            if F and (not M or rng.random() < 0.5):
                rhymes = plan.end_line(i, rhymes, w)
                break
            U = M
        lines.append(" ".join(words))
    return "\n".join(lines)


@pytest.mark.parametrize("name", FORMS)
def test_plan_walks_always_give_valid_poems(name):
    rng = np.random.default_rng(7)
    fc = FormConstraint(name)
    for _ in range(8):
        poem = random_poem(fc, rng)
        assert check_form(fc.form, poem).ok, check_form(fc.form, poem).table()


@pytest.mark.parametrize("name,given", [
    ("couplet", [SEE]), ("couplet-iambic", [SEE]), ("limerick", ["There was an old man with a beard"]),
    ("quatrain", ["The night is long and dark and cold", "I walk alone along the road"]),
    ("sonnet", ["Let me not to the marriage of true minds\nAdmit impediments. Love is not love"]),
])
def test_plan_walks_continue_given_lines(name, given):
    rng = np.random.default_rng(3)
    fc = FormConstraint(name, given)
    for _ in range(5):
        poem = random_poem(fc, rng)
        assert fc.check(poem) == [], (poem, fc.check(poem))
        assert check_form(fc.form, fc.given_text + poem).ok


def test_given_lines_that_miss_the_budget_are_noted_not_refused():
    fc = FormConstraint("quatrain", ["The night is long and dark and cold", "I walk alone"])
    assert fc.notes() == ["given line 2 has 4 syllables, needs 8"]
    assert FormConstraint("couplet", [SEE]).notes() == []


def test_words_with_two_pronunciations_take_either_count_when_lenient():
    lenient = Reading(lenient=True)
    fc = FormConstraint("custom:2", reading=lenient)
    assert fc.spec() == "form:custom:2;lenient"
    plan, t = FormPlan(fc), word_table(None, lenient)
    fire = t.index["fire"]  # one or two syllables
    M, F = plan.advance(plan.first, None, frozenset({0}), fire)
    assert F and M == frozenset({1})  # ends the line as 2, or goes on as 1
    strict = FormPlan(FormConstraint("custom:2"))  # primary pronunciation: two syllables
    M, F = strict.advance(strict.first, None, frozenset({0}), strict.t.index["fire"])
    assert F and M == frozenset()


def test_form_spec_registry_and_options():
    c = parse_spec("form:haiku")
    assert isinstance(c, FormConstraint) and c.spec() == "form:haiku" and c.level == "text"
    assert parse_spec('form:"couplet-iambic;end=.?!"').end == ".?!"
    assert parse_form_arg("limerick;end=!") == ("limerick", "!", Reading(), False)
    assert parse_form_arg("haiku;enjamb").enjamb and parse_spec("form:haiku;enjamb").spec() == "form:haiku;enjamb"
    assert parse_form_arg("sonnet;lenient;letters").reading == Reading(lenient=True, letters=True)
    assert parse_spec("form:sonnet;lenient").spec() == "form:sonnet;lenient"
    with pytest.raises(SpecError, match="unknown option"):
        parse_spec("form:haiku;colour=red")
    with pytest.raises(SpecError, match="did you mean 'haiku'"):
        parse_spec("form:hiaku")


@pytest.mark.parametrize("make,needle", [
    (lambda: FormPlan(FormConstraint("couplet", ["I ate an orange"])), "no other word rhymes with 'orange'"),
    (lambda: FormConstraint("quatrain", ["the cat", "a dog", "the sea"]), "given lines of rhyme A do not rhyme"),
    (lambda: FormConstraint("couplet", [SEE, "And one more line"]), "leave nothing to write"),
    (lambda: FormConstraint("haiku", end="x"), "end marks must be among"),
    (lambda: FormConstraint("1x300/" + "A" * 300), "no 300 different words"),
    (lambda: FormConstraint("5--1"), "must not be negative"),
])
def test_bad_forms_and_given_lines_are_refused(make, needle):
    with pytest.raises(FormError, match=__import__("re").escape(needle)):
        make()


def test_token_classes_and_separator_grammar(tiny_engine):
    vocab = tiny_engine.vocab
    fi = form_index(FormConstraint("custom:4-2"), vocab)
    kind, texts = fi.tok.kind, vocab.texts
    ids = {t: i for i, t in enumerate(texts) if t in ("\n", ",", " the", "the", "\n\n", "--------", " ", ".")}
    assert kind[ids["\n"]] == LINEEND and kind[ids[","]] == SEP and kind[ids[" "]] == SEP
    assert kind[ids[" the"]] == SEP_TAIL and kind[ids["the"]] == PURE
    assert kind[ids["\n\n"]] == 0
    assert not any(kind[i] for i, t in enumerate(texts) if any(c.isdecimal() for c in t))
    st = fi.start("")
    for tid in tiny_engine.tokenizer.encode("Night", add_special_tokens=False):
        st = fi.step(st, tid)  # one syllable of four: the line goes on
    m = fi.mask(st)
    assert bool(m[ids[","]]) and bool(m[ids[" the"]]) and bool(m[ids[" "]])
    assert not bool(m[ids["--------"]]) and not bool(m[ids["\n"]])  # not a separator; too early
    st = fi.step(st, ids["."])
    m = fi.mask(st)
    assert bool(m[ids[" the"]]) and not bool(m[ids[","]])  # ". the" yes, ".," no
    assert not bool(m[ids["the"]])  # ".the": a word needs a joiner before it


def test_line_break_only_after_the_last_word(tiny_engine):
    vocab = tiny_engine.vocab
    fi = form_index(FormConstraint("custom:2-1"), vocab)
    st = fi.start("")
    for piece in ["hello"]:  # two syllables: the line is full
        for tid in tiny_engine.tokenizer.encode(piece, add_special_tokens=False):
            assert bool(fi.mask(st)[tid])
            st = fi.step(st, tid)
    m = fi.mask(st)
    allowed = [vocab.texts[i] for i in m.nonzero().flatten().tolist()]
    newline = vocab.texts.index("\n")
    assert bool(m[newline]) and not any(t.startswith(" ") and t.strip() for t in allowed)
    st = fi.step(st, newline)
    assert fi.safe(st) and not fi.done(st)
    # The text must end on a whole last line: no EOS before, EOS after.
    assert not bool(fi.mask(st)[vocab.eos_ids[0]])
    for tid in tiny_engine.tokenizer.encode("sun", add_special_tokens=False):
        st = fi.step(st, tid)
    assert fi.done(st) and bool(fi.mask(st)[vocab.eos_ids[0]]) and not bool(fi.mask(st)[newline])


def test_context_without_a_newline_gets_one_first(tiny_engine):
    fi = form_index(FormConstraint("haiku"), tiny_engine.vocab)
    st = fi.start("autumn rain")
    assert fi.mask(st).sum() == 1 and bool(fi.mask(st)[tiny_engine.vocab.texts.index("\n")])
    assert fi.start("autumn rain\n").line == 0 and fi.start("").line == 0


@pytest.mark.parametrize("name,given", [
    ("haiku", None), ("limerick", None), ("couplet", [SEE]), ("couplet-iambic;end=.?!", [SEE]),
    ("sonnet-iambic", None),
])
def test_tiny_model_writes_valid_poems(tiny_engine, name, given):
    c = with_form(None, name, given)
    fc = c
    prompt, budget = poem_prompt("autumn rain", form_of(c), "continue")
    assert prompt.endswith("\n") and budget > 0
    for seed in range(1 if name.startswith("sonnet") else 3):
        r = tiny_engine.generate(prompt, c, Settings(max_new_tokens=budget, seed=seed))
        assert r.stop_reason == "eos", (r.stop_reason, r.message, r.text)
        assert fc.check(r.text) == [], (r.text, fc.check(r.text))
        lines = r.text.split("\n")
        assert len(lines) == fc.form.n_lines - len(fc.given)  # one line per line, no blank ones
        assert all(ln and not ln[0].isspace() for ln in lines)
        if fc.end:
            assert r.text.rstrip()[-1] in fc.end


def test_api_form_and_given(tiny_engine):
    import studio

    r = studio.generate("", form="couplet", given=[SEE], engine=tiny_engine, seed=1)
    assert "\n" not in r.text and FormConstraint("couplet", [SEE]).check(r.text) == []
    assert r.prompt == SEE + "\n"
    r = studio.generate("autumn rain", "form:haiku", engine=tiny_engine, seed=2)
    assert studio.check(r.text, "form:haiku") == []
    with pytest.raises(FormError, match="given lines need a form"):
        studio.generate("x", given=["a line"], engine=tiny_engine)
    with pytest.raises(ImpossibleConstraint, match="only one form"):
        studio.generate("x", "form:haiku & form:couplet", engine=tiny_engine)


LIMERICK = """A poet who lived by the sea
Would write something new after tea;
He counted each line
And found it was fine,
And then he went home to be free."""


def test_cli_check_form(tmp_path):
    f = tmp_path / "l.txt"
    f.write_text(LIMERICK)
    ok = perec("check", "--form", "limerick", "--file", str(f))
    assert ok.returncode == 0, ok.stderr
    assert "limerick: ok" in ok.stdout and "8/8" in ok.stdout and " A " in ok.stdout
    broken = LIMERICK.replace("after tea", "after lunch")
    out = perec("check", "--form", "limerick", "--json", stdin=broken)
    d = json.loads(out.stdout)
    assert out.returncode == 1 and not d["ok"]
    assert [ln["rhyme"] for ln in d["lines"]] == list("AABBA")
    assert any("'lunch' does not rhyme A" in v["message"] for v in d["violations"])
    assert d["lines"][1]["syllables"] == 8 and not d["lines"][1]["ok"]
    assert perec("check", "-c", "form:haiku", stdin="An old silent pond\nA frog jumps into the pond\n"
                 "Splash! Silence again.").returncode == 0


@pytest.mark.parametrize("args,words", [
    (["generate", "--prompt", "x", "-c", "rhymes:xqzt"], "no rhymes for 'xqzt'"),
    (["generate", "--prompt", "x", "-c", "syllables:-1"], "must not be negative"),
    (["generate", "--prompt", "x", "--form", "1x300/" + "A" * 300], "no 300 different words"),
    (["generate", "--prompt", "x", "--form", "5--1"], "must not be negative"),
    (["generate", "--form", "couplet", "--given", "I ate an orange"], "no other word rhymes with 'orange'"),
    (["generate", "--form", "haiku"], "no prompt"),
    (["check", "--form", "hiaku"], "did you mean 'haiku'"),
])
def test_cli_bad_input_exits_2(args, words):
    out = perec(*args)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert words in out.stderr and "Traceback" not in out.stderr
