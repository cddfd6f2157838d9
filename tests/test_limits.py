"""Every input bounded on the server (issue 16, item 2): each cap refused in one line that
names its setting, violations that share one rule string, a check that stays small on a
long ban: list, and steering inputs (prompt contrast, word banks, discriminator examples)
capped, with the discriminator keeping only the layers it uses.  Tiny random model only."""

from __future__ import annotations

import random
import string
import threading
import tracemalloc

import pytest

from constraints import limits
from constraints.base import SpecError
from constraints.forms import parse_form
from constraints.limits import LimitError
from constraints.spec import parse_spec, parse_specs
from studio.ui import rules
from studio.ui.work import UserError, check_view, readable


def one_line_naming(e: BaseException, cap: limits.Cap) -> str:
    msg = readable(e)
    assert "\n" not in msg and "Traceback" not in msg
    assert cap.setting in msg, msg
    return msg.lower()  # readable() capitalises the first letter


def ban_spec(chars: int, seed: int = 0) -> str:
    """A ban: list of about ``chars`` characters: every letter, then random words."""
    rng = random.Random(seed)
    words: set[str] = set()
    while sum(len(w) + 1 for w in words) < chars - 60:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 12))))
    return "ban:" + ",".join(list(string.ascii_lowercase) + sorted(words))


def prose(chars: int) -> str:
    rng = random.Random(1)
    return " ".join(rng.choice(["the", "old", "house", "stood", "by", "sea"]) for _ in range(chars // 3))[:chars]




# ----------------------------------------------------------------- specs


def test_a_spec_past_its_length_cap_is_refused_before_parsing():
    huge = "ban:" + "a," * 500_000  # 1 MB
    with pytest.raises(SpecError) as e:
        parse_spec(huge)
    assert "spec length" in one_line_naming(e.value, limits.SPEC_CHARS)
    assert isinstance(e.value, LimitError)
    with pytest.raises(SpecError):  # several specs are one set: their length together
        parse_specs(["lipogram:e"] * (limits.SPEC_CHARS.value() // 10 + 1))
    with pytest.raises(SpecError) as e:  # a form is a spec too
        parse_form("5/" + "a" * limits.SPEC_CHARS.value())
    one_line_naming(e.value, limits.SPEC_CHARS)


def test_the_caps_follow_their_settings(monkeypatch):
    assert parse_spec("ban:" + "x" * 20)
    monkeypatch.setenv("PEREC_MAX_SPEC_CHARS", "16")
    with pytest.raises(SpecError, match="the cap is 16; setting PEREC_MAX_SPEC_CHARS"):
        parse_spec("ban:" + "x" * 20)
    monkeypatch.setenv("PEREC_MAX_SPEC_CHARS", "not a number")  # ignored: the default holds
    assert parse_spec("ban:" + "x" * 20)


def test_one_argument_and_one_list_are_capped(monkeypatch):
    with pytest.raises(SpecError) as e:
        parse_spec("ban:" + "x" * (limits.ARG_CHARS.value() + 1))
    assert "one argument" in one_line_naming(e.value, limits.ARG_CHARS)
    with pytest.raises(SpecError) as e:
        parse_spec('ban:"' + "x" * (limits.ARG_CHARS.value() + 1) + '"')  # quoted, the same
    one_line_naming(e.value, limits.ARG_CHARS)

    monkeypatch.setenv("PEREC_MAX_ARG_ITEMS", "3")
    assert parse_spec("ban:ab,cd,ef")
    with pytest.raises(LimitError) as e:  # a SpecError too, with the spec it was in
        parse_spec("ban:ab,cd,ef,gh")
    assert isinstance(e.value, SpecError)
    assert "4 items" in one_line_naming(e.value, limits.ARG_ITEMS)
    with pytest.raises(LimitError):
        parse_spec("alliterate:S,SH,K,B")
    with pytest.raises(SpecError):  # a JSON list argument
        parse_spec('paragraph-ends:["One.", "Two.", "Three.", "Four."]')
    with pytest.raises(rules.RuleError, match="PEREC_MAX_ARG_ITEMS"):  # through the studio's rule set
        rules.from_spec_text("include:a,b,c,d")


# ----------------------------------------------------------------- rules per draft


def test_rules_per_draft_cannot_pile_up(monkeypatch):
    monkeypatch.setenv("PEREC_MAX_RULES", "3")
    active: list[str] = []
    for letter in "abc":
        active = rules.add(active, rules.make_spec("lipogram", letter))
    assert len(active) == 3
    assert rules.add(active, "lipogram:a") == active  # a rule already there adds nothing
    with pytest.raises(LimitError) as e:
        rules.add(active, rules.make_spec("lipogram", "d"))
    assert "rules per draft" in one_line_naming(e.value, limits.RULES_PER_DRAFT)
    with pytest.raises(LimitError):  # a spec typed and applied
        rules.from_spec_text("lipogram:a & lipogram:b & lipogram:c & lipogram:d")
    with pytest.raises(LimitError):  # an update that splits into more rules
        rules.replace(active, "lipogram:a", "lipogram:x & lipogram:y")
    spec, _form = rules.preset("One syllable")  # a preset adds through rules.add
    with pytest.raises(LimitError):
        rules.add(active, spec)
    with pytest.raises(LimitError):  # a set that got past (an old draft) is refused when used
        rules.combined(active + ["lipogram:z"])
    assert rules.remove(active, "lipogram:a") == active[1:]


# ----------------------------------------------------------------- violations


def test_violations_share_one_rule_string():
    c = parse_spec("ban:the,old,e")
    text = prose(3_000)
    vs = c.check(text)
    assert len(vs) > 500
    assert all(v.rule is vs[0].rule for v in vs)
    assert vs[0].rule == c.spec()
    again = c.check(text)  # and across checks: the string is interned
    assert again[0].rule is vs[0].rule
    assert vs[0].to_dict() == {"start": vs[0].start, "end": vs[0].end, "rule": c.spec(),
                               "message": vs[0].message}


@pytest.mark.parametrize("spec", ["ban:the,old,e,h", "ban-exact:The,e", "lipogram:eo",
                                  "ban:e & syllables:1", "no-digits & ban:ou"])
def test_check_first_returns_what_check_would(spec):
    c = parse_spec(spec)
    text = "The old house, 42 times, stood by THE sea.\n" * 30
    full = c.check(text)
    for limit in (0, 1, 7, 200, None):
        first, total = c.check_first(text, limit)
        assert total == len(full)
        assert first == (full if limit is None else full[:limit])


def test_a_check_returns_at_most_its_cap_and_says_how_many_more(monkeypatch):
    monkeypatch.setenv("PEREC_MAX_VIOLATIONS", "5")
    text = "eeeeeeeeee eeeeeeeeee"
    v = check_view(text, ["lipogram:e"], "")
    assert v.total == 20 and len(v.violations) == 5 and not v.ok
    d = v.to_dict()
    assert d["total"] == 20 and len(d["violations"]) == 5
    assert "20 places break a rule" in v.summary
    assert "5 shown of 20" in v.summary and "PEREC_MAX_VIOLATIONS" in v.summary
    assert v.highlight["entities"] == [{"entity": "lipogram:e", "start": 0, "end": 5}]  # only those marked
    assert check_view("A cat", ["lipogram:e"], "").total == 0


def test_the_big_ban_check_stays_small(monkeypatch):
    # The case: a 29 KB ban: spec on 20,000 characters held 801 MiB.  Its spec is
    # past the length cap now, so raise the caps to measure the check itself.
    for cap in (limits.SPEC_CHARS, limits.ARG_CHARS, limits.ARG_ITEMS):
        monkeypatch.setenv(cap.setting, "100000")
    spec, text = ban_spec(29_000), prose(20_000)
    active = rules.from_spec_text(spec)
    tracemalloc.start()
    try:
        v = check_view(text, active, "")
        d = v.to_dict()
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert v.total > 10_000 and len(d["violations"]) == limits.VIOLATIONS.value()
    assert peak < 32 * 2**20, f"the check held {peak / 2**20:.1f} MiB"
    assert all(e["entity"] == v.highlight["entities"][0]["entity"] for e in v.highlight["entities"])
    assert len(v.highlight["entities"][0]["entity"]) <= 80  # a long rule is cut in its label


# ----------------------------------------------------------------- the check path


def test_check_text_is_capped_on_the_server(studio_space, studio_local, monkeypatch):
    with pytest.raises(LimitError) as e:
        studio_space.check("a" * (limits.TEXT_CHARS.value(space=True) + 1), ["lipogram:e"], "")
    one_line_naming(e.value, limits.TEXT_CHARS)
    assert studio_local.check("a" * (limits.TEXT_CHARS.value(space=True) + 1), ["lipogram:e"], "").ok
    monkeypatch.setenv("PEREC_MAX_CHARS", "10")
    with pytest.raises(LimitError):
        studio_local.check("a" * 11, ["lipogram:e"], "")


def test_checks_at_once_are_capped_with_a_bounded_wait(studio_local):
    slots = studio_local.checks
    assert slots.n == limits.CHECKS_AT_ONCE.value()
    slots.wait_s = 0  # no wait: the refusal comes at once (nothing here depends on timing)
    inside, leave = threading.Barrier(slots.n + 1), threading.Event()

    def busy():
        with slots.slot():
            inside.wait()
            leave.wait()

    holders = [threading.Thread(target=busy) for _ in range(slots.n)]
    for t in holders:
        t.start()
    inside.wait()  # every slot is held now
    try:
        with pytest.raises(UserError) as e:
            studio_local.check("The cat", ["lipogram:e"], "")
        assert "busy" in one_line_naming(e.value, limits.CHECKS_AT_ONCE)
    finally:
        leave.set()
        for t in holders:
            t.join()
    assert not studio_local.check("The cat", ["lipogram:e"], "").ok  # free again


# ----------------------------------------------------------------- steering


def test_prompt_contrast_is_capped_and_windowed(tokenizer, monkeypatch):
    from models.controllers import PromptContrast

    with pytest.raises(LimitError) as e:
        PromptContrast("gloom " * limits.STEER_CHARS.value())
    assert "steer text" in one_line_naming(e.value, limits.STEER_CHARS)
    monkeypatch.setenv("PEREC_MAX_STEER_TOKENS", "8")
    text = "A gloomy story about the sea, the salt, the wind and the dark old stones."
    ids = tokenizer.encode(text + "\n\n")
    assert len(ids) > 8
    assert PromptContrast(text).prefix(tokenizer) == tuple(ids[-8:])  # the part nearest the prompt


def test_a_word_bank_is_capped_from_text_and_from_a_file(tmp_path, tiny_engine, monkeypatch):
    from models.controllers import WordBank
    from studio.steer import steering
    from studio.ui.steering import SteeringIn

    monkeypatch.setenv("PEREC_MAX_BANK_WORDS", "10")
    words = [f"word{c}" for c in string.ascii_lowercase[:11]]
    assert WordBank(words[:10]).words
    with pytest.raises(LimitError) as e:
        WordBank(words)
    assert "word bank" in one_line_naming(e.value, limits.BANK_WORDS)
    with pytest.raises(UserError) as e:  # the Steering tab: typed words
        SteeringIn(bank_words=" ".join(words)).kwargs(tiny_engine)
    one_line_naming(e.value, limits.BANK_WORDS)
    bank = tmp_path / "bank.txt"
    bank.write_text("\n".join(words))
    with pytest.raises(LimitError):  # a word list file, as the CLI and the API give it
        steering(tiny_engine, bank=str(bank))


def test_discriminator_examples_are_capped(tiny_engine, tmp_path, monkeypatch):
    from models.discriminator import Discriminator
    from studio.ui.steering import SteeringIn

    monkeypatch.setenv("PEREC_MAX_EXAMPLES", "5")
    pos, neg = ["a calm sea", "a quiet bay", "soft rain"], ["a storm", "a wild gale", "hard hail"]
    with pytest.raises(LimitError) as e:
        Discriminator.train(tiny_engine, pos, neg)
    assert "6 examples" in one_line_naming(e.value, limits.DISCRIMINATOR_EXAMPLES)
    a, b = tmp_path / "calm.txt", tmp_path / "storm.txt"
    a.write_text("\n".join(pos))
    b.write_text("\n".join(neg))
    with pytest.raises(UserError) as e:  # an upload on the Steering tab
        SteeringIn(disc_a=str(a), disc_b=str(b)).kwargs(tiny_engine)
    one_line_naming(e.value, limits.DISCRIMINATOR_EXAMPLES)

    monkeypatch.setenv("PEREC_MAX_EXAMPLES", "200")
    monkeypatch.setenv("PEREC_MAX_EXAMPLE_TOKENS", "6")
    long = "the sea " * 20
    with pytest.raises(LimitError) as e:
        Discriminator.train(tiny_engine, pos, neg[:2] + [long])
    msg = one_line_naming(e.value, limits.EXAMPLE_TOKENS)
    assert msg.startswith("other example 3: one discriminator example too large")


def test_the_discriminator_keeps_only_the_layers_it_uses(tiny_engine):
    from models.discriminator import Discriminator, DiscriminatorError, hidden_states, layer_count

    model, tok = tiny_engine.model, tiny_engine.tokenizer
    texts = ["a calm sea at dawn", "a storm"]
    every = hidden_states(model, tok, texts)
    assert every[0].shape[0] == layer_count(model) + 1
    kept = hidden_states(model, tok, texts, layers=[2, 0])
    for full, some, t in zip(every, kept, texts):
        assert some.shape == (2, len(tok.encode(t)), full.shape[-1])
        assert some[0].equal(full[2]) and some[1].equal(full[0])
        assert some.untyped_storage().nbytes() == some.numel() * some.element_size()  # no hidden rest

    pos, neg = ["a calm sea", "a quiet bay", "soft rain"], ["a storm", "a wild gale", "hard hail"]
    d = Discriminator.train(tiny_engine, pos, neg, layers=[1])
    assert d.layer == 1 and d.report["layers_tried"] == [1]
    assert 0.0 <= d.score_text(tiny_engine, "a calm bay") <= 1.0
    with pytest.raises(DiscriminatorError, match="layers must be whole numbers 0..2"):
        Discriminator.train(tiny_engine, pos, neg, layers=[7])
