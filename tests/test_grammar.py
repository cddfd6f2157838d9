"""json / json-schema: / regex: — check() on hand-made texts, bad specs refused in one line,
the grammar masker on random walks through what it allows (every output passes check, and
the grammar closes within the budget however the walk rambled), its state through
snapshot / restore / fork, compositions, and the tiny random model end to end."""

import json

import pytest
import torch

from constraints.base import ImpossibleConstraint, SpecError
from constraints.spec import parse_spec, to_spec
from studio.decode.maskset import compile_masks
from studio.decode.sampling import Settings
from studio.decode.vocab import VocabIndex
from studio.masks.grammar import GrammarMasker


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return VocabIndex(tokenizer)


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "person.schema.json"
    path.write_text(json.dumps({
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": False,
    }))
    return path


def walk(vocab, spec, n, seed):
    """A text drawn uniformly from what the masks allow (no model: every allowed token is
    as likely, so the walk rambles where a model would not), ended as the decoder ends."""
    masks = compile_masks(parse_spec(spec), vocab)
    masks.check_budget(n)
    masks.reset("")
    g = torch.Generator().manual_seed(seed)
    ids = []
    for step in range(n):
        allowed = masks.step_mask(n - step).nonzero().flatten()
        assert len(allowed), f"dead end after {vocab.decode(ids)!r}"
        t = int(allowed[torch.randint(len(allowed), (1,), generator=g)])
        if t in vocab.eos_ids:
            break
        masks.advance(t)
        ids.append(t)
    assert masks.done_ok(), vocab.decode(ids)
    return vocab.decode(ids)


# ---------------------------------------------------------------- check on hand-made texts


@pytest.mark.parametrize("spec, text, ok", [
    ("json", '{"name": "Ada"}', True),
    ("json", '{"a": 1, "b": [true, null]}', True),
    ("json", "{}", False),  # an empty shell is no answer
    ("json", '{"name": ""}', False),
    ("json", "[1, 2]", False),
    ("json", '{"name": "Ada"', False),
    ("json", 'Here it is: {"a": 1}', False),
    ("json:array", '["sea", "salt"]', True),
    ("json:array", "[]", False),
    ("json:any", '"just a string"', True),
    ("json:any", "42", True),
    ("json:any", "forty-two", False),
    ('regex:"[a-z]+ [0-9]{3}"', "room 101", True),
    ('regex:"[a-z]+ [0-9]{3}"', "room 1011", False),
    ('regex:"[a-z]+ [0-9]{3}"', "Room 101", False),
])
def test_check_on_hand_made_texts(spec, text, ok):
    assert (not parse_spec(spec).check(text)) is ok


def test_json_schema_check_and_round_trip(schema_file):
    rule = parse_spec(f"json-schema:{schema_file}")
    assert not rule.check('{"name": "Ada", "age": 36}')
    assert rule.check('{"name": "Ada"}')  # age is required
    assert rule.check('{"name": "Ada", "age": "old"}')
    assert rule.check('{"name": "Ada", "age": 36, "x": 1}')
    assert parse_spec(to_spec(rule)) == rule


@pytest.mark.parametrize("spec", ["json", "json:array", "json:any", 'regex:"[a-z]+ [0-9]{3}"', 'regex:"a|b"'])
def test_round_trip(spec):
    rule = parse_spec(spec)
    assert parse_spec(to_spec(rule)) == rule


@pytest.mark.parametrize("content, what", [
    (None, "no such schema file"),
    ("{not json", "not JSON"),
    ('{"type": "nothing-such"}', "not a valid JSON schema"),
    ("[1, 2]", "a schema must be a JSON object"),
])
def test_bad_schema_files_are_one_spec_error(tmp_path, content, what):
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpecError, match=what) as e:
        parse_spec(f"json-schema:{path}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec, what", [
    ('regex:"[a-z"', "not a valid pattern"),
    ("regex", "needs an argument"),
    ("json:tree", "unknown kind"),
])
def test_bad_specs_are_one_line(spec, what):
    with pytest.raises(SpecError, match=what) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)


def test_a_pattern_the_engine_cannot_run_is_refused_before_decoding(vocab):
    # Python's re reads look-arounds; the grammar engine does not: refused, in one line.
    with pytest.raises(ImpossibleConstraint, match="grammar engine cannot use it") as e:
        compile_masks(parse_spec('regex:"(?=a)a+"'), vocab)
    assert "\n" not in str(e.value)


def test_two_grammars_in_one_answer_are_refused(vocab):
    with pytest.raises(ImpossibleConstraint, match="one grammar per answer"):
        compile_masks(parse_spec('json & regex:"[a-z]+"'), vocab)


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("spec", ["json", "json:array", "json:any", 'regex:"[a-z]+ [0-9]{3}"',
                                  'regex:"(ab)+c"', 'regex:"[a-z ]+[.]"'])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_walks_pass_check_and_close_in_the_budget(vocab, spec, seed):
    for n in (12, 40):  # a tight budget and a roomy one: closed either way
        text = walk(vocab, spec, n, seed)
        assert not parse_spec(spec).check(text), text


def test_random_walks_under_a_schema(vocab, schema_file):
    spec = f"json-schema:{schema_file}"
    for seed in range(3):
        text = walk(vocab, spec, 40, seed)
        assert not parse_spec(spec).check(text), text
        assert set(json.loads(text)) == {"name", "age"}


@pytest.mark.parametrize("spec", ["json & lipogram:e", 'regex:"[a-z ]+[.]" & lipogram:e',
                                  "json:array & lowercase"])
def test_grammars_compose_with_character_rules(vocab, spec):
    rule = parse_spec(spec)
    for seed in range(2):
        text = walk(vocab, spec, 30, seed)
        assert not rule.check(text), text


def test_json_without_commas_is_a_one_member_object(vocab):
    try:
        rule = parse_spec('json & ban:","')
    except SpecError:
        pytest.skip('needs the quoted literals of the agreed spec surface (ban:",")')
    for seed in range(3):
        text = walk(vocab, 'json & ban:","', 30, seed)
        assert not rule.check(text) and len(json.loads(text)) == 1, text


def test_a_budget_too_small_for_the_grammar_is_refused(vocab, tmp_path):
    path = tmp_path / "wide.json"
    props = {f"field_number_{i}": {"type": "string"} for i in range(8)}
    path.write_text(json.dumps({"type": "object", "properties": props, "required": list(props)}))
    masks = compile_masks(parse_spec(f"json-schema:{path}"), vocab)
    with pytest.raises(ImpossibleConstraint, match="the shortest answer takes"):
        masks.check_budget(20)
    masks.check_budget(200)  # room enough: no refusal


def test_snapshot_restore_and_fork_move_the_matcher(vocab, tokenizer):
    masks = compile_masks(parse_spec("json"), vocab)
    masks.reset("")
    ids = tokenizer.encode('{"sea": "salt", "wind": "cold"}')
    for t in ids[:3]:
        masks.advance(t)
    early = masks.snapshot()
    early_mask = masks.allowed(100).clone()
    for t in ids[3:]:
        masks.advance(t)
    assert masks.done_ok()
    late = masks.snapshot()
    masks.restore(early)
    assert not masks.done_ok() and torch.equal(masks.allowed(100), early_mask)
    masks.restore(late)  # forward again, to a later state
    assert masks.done_ok()
    twin = masks.fork()
    twin.restore(early)  # the twin's matcher is its own
    assert masks.done_ok() and not twin.done_ok()


def test_a_snapshot_from_before_a_reset_restores_its_own_state(vocab, tokenizer):
    """A feasibility walk (include/count rules spelling a word) resets the set, then
    restores what it saved: the matcher must come back to the saved state, not a mix."""
    masks = compile_masks(parse_spec("json"), vocab)
    masks.reset("")
    ids = tokenizer.encode('{"sea": "salt", "wind": "cold"}')
    for t in ids:
        masks.advance(t)
    saved = masks.snapshot()
    masks.reset("")
    masks.advance(ids[0])
    masks.restore(saved)
    assert masks.done_ok()
    masks.reset("")
    fresh = masks.allowed(100).clone()
    masks.restore(saved)
    masks.restore(masks.snapshot())
    masks.reset("")
    assert torch.equal(masks.allowed(100), fresh) and not masks.done_ok()


def test_closing_respects_the_other_rules(vocab):
    masks = compile_masks(parse_spec('regex:"[a-z]+( [a-z]+)*[.]" & lipogram:a'), vocab)
    masker = next(m for m in masks if isinstance(m, GrammarMasker))
    masks.reset("")
    closing = masker.closing()
    assert closing is not None and "a" not in vocab.decode(closing)


# ---------------------------------------------------------------- the tiny model, end to end


@pytest.mark.parametrize("spec", ["json", 'regex:"[a-z]+( [a-z]+)*[.]"'])
def test_tiny_model_answers_pass_check(tiny_engine, spec):
    rule = parse_spec(spec)
    for seed in range(2):
        out = tiny_engine.generate("Describe the sea.", rule, Settings(max_new_tokens=24, seed=seed),
                                   mode="instruct")
        assert not rule.check(out.text), out.text
        assert out.stop_reason == "eos"


def test_tiny_model_in_continue_mode_drops_no_grammar_text(tiny_engine):
    rule = parse_spec("json:array")
    out = tiny_engine.generate("The list:", rule, Settings(max_new_tokens=20, seed=3))
    assert not rule.check(out.text), out.text


def test_the_default_budget_grows_to_fit_a_wide_schema(tiny_engine, tmp_path):
    from studio.request import fitting_budget

    path = tmp_path / "wide.json"
    props = {f"field_number_{i}": {"type": "string"} for i in range(8)}
    path.write_text(json.dumps({"type": "object", "properties": props, "required": list(props)}))
    assert fitting_budget(parse_spec("json"), tiny_engine) == Settings().max_new_tokens
    assert fitting_budget(parse_spec(f"json-schema:{path}"), tiny_engine) > Settings().max_new_tokens
