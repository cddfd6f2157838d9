"""Structure rules without a model: units, parsing (JSON lists too), check() on hand-made
texts (passes and each kind of failure), refusals before decoding, and agreement with
COLLIE's own checker (collie-bench, when installed) on tricky texts."""

import pytest

from constraints.base import ImpossibleConstraint, SpecError
from constraints.spec import parse_spec
from constraints.structure import Count, closing_text, parse_count
from constraints.structure_plan import plan_structure
from constraints.units import counted_words, paragraphs, sentences, unit_key


# ------------------------------------------------------------------ units


def test_units_split_as_collie_does():
    text = 'He saw it! Then he left? Yes.\n\nI did n\'t go, he said; cannot. Mr. Smith "went" ... home.'
    assert sentences(text)[:3] == ["He saw it!", "Then he left?", "Yes."]
    # The trained splitter knows its abbreviations: "Mr." does not end a sentence.
    assert 'Mr. Smith "went" ... home.' in sentences(text) and "Mr." not in sentences(text)
    assert paragraphs(text) == ["He saw it! Then he left? Yes.", text.split("\n\n")[1]]
    words = counted_words(text)
    # Punctuation tokens go; "n't", "can" + "not", quotes (`` '') and "..." stay as words.
    assert words[:7] == ["He", "saw", "it", "Then", "he", "left", "Yes"]
    assert ["did", "n't", "go"] == words[8:11] and ["can", "not"] == words[13:15]
    assert "``" in words and "''" in words and "" in words  # "..." stripped of its periods
    assert unit_key("Sympathy.") == "sympathy" and unit_key("()") == "()"


def test_counts_parse_and_print():
    assert parse_count("x", "3") == Count(3, 3) and parse_count("x", "2..5") == Count(2, 5)
    assert parse_count("x", ">=4") == Count(4) and parse_count("x", ">4") == Count(5)
    assert parse_count("x", "<=4") == Count(0, 4) and parse_count("x", "<4") == Count(0, 3)
    for c in (Count(3, 3), Count(2, 5), Count(4), Count(0, 4)):
        assert parse_count("x", c.spec()) == c
    assert Count(2, 5).describe("sentences") == "2 to 5 sentences"
    assert Count(1, 1).describe("words") == "exactly 1 word"


# ------------------------------------------------------------------ parsing


ROUND_TRIP = [
    "sentences:3", "words:11..15", "chars:>=80", "paragraphs:<=2",
    "word-at:4=aids,8=positioners,11=nests & words:17",
    "each-sentence:(words:11..15) & sentences:5",
    "each-sentence:(starts-with-word:He & words:>=4)",
    "each-paragraph:(sentences:>=2 & ends-with-word:rain)",
    'sentence-ends:["sympathy", "republicanism", "type"] & sentences:3',
    'paragraph-ends:["In April (1982), a & b | c!", "He said \\"no\\"."] & each-paragraph:(sentences:>=2)',
    "one-word & chars:12 & char-at:4=o,8=s,11=r",
    "starts-with-word:Once & ends-with-word:night",
    "lipogram:e & sentences:3",
]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_specs_round_trip(spec):
    c = parse_spec(spec)
    assert parse_spec(c.spec()).spec() == c.spec()
    assert c.describe()


def test_json_list_arguments_hold_any_text():
    c = parse_spec('paragraph-ends:["A (b) & c | d, said \\"e\\".", "Then."] & sentences:>=2')
    assert c.leaves()[0].sentences == ('A (b) & c | d, said "e".', "Then.")
    assert parse_spec("sentence-ends:a,b").spec() == 'sentence-ends:["a", "b"]'


@pytest.mark.parametrize("spec, words", [
    ("sentences:0", "only an empty text"),
    ("words:5..3", "range 5..3 is empty"),
    ("chars:many", "expected a count"),
    ("each-sentence:(lipogram:e)", "cannot apply per sentence"),
    ("each-sentence:(sentences:2)", "cannot apply per sentence"),
    ('sentence-ends:["a",', "not valid JSON"),
    ("paragraph-ends:[1,2]", "JSON list of strings"),
    ("word-at:0=x", "0 is not a position"),
    ("word-at:3=cannot", "not one word to the word splitter"),
    ("char-at:2=ab", "not a single character"),
    ("one-word:3", "takes no argument"),
])
def test_bad_specs_get_one_clear_error(spec, words):
    with pytest.raises(SpecError, match=words):
        parse_spec(spec)


def test_structure_rules_cannot_go_under_or_or_not():
    with pytest.raises(ImpossibleConstraint, match="whole-text rule"):
        parse_spec("sentences:3 | lipogram:e")
    with pytest.raises(ImpossibleConstraint, match="whole-text rule"):
        parse_spec("!words:5")


# ------------------------------------------------------------------ check


def messages(spec, text):
    return [v.message for v in parse_spec(spec).check(text)]


def test_counts_check():
    text = "The rain fell. It fell all night!\n\nThen it stopped."
    assert messages("sentences:3 & paragraphs:2 & words:10 & chars:51", text) == []
    assert messages("sentences:2", text) == ["has 3 sentences, needs exactly 2 sentences"]
    assert messages("sentences:>=4", text) == ["has 3 sentences, needs at least 4 sentences"]
    assert messages("words:<=9", text) == ["has 10 words, needs at most 9 words"]
    assert messages("chars:52..60", text) == ["has 51 characters, needs 52 to 60 characters"]
    assert messages("paragraphs:1", text) == ["has 2 paragraphs, needs exactly 1 paragraph"]
    # Too many: the violation sits on the first unit too many.
    v = parse_spec("sentences:2").check(text)[0]
    assert text[v.start:v.end] == "Then it stopped."


def test_positions_and_edges_check():
    text = "Once the cat sat. The dog ran at night."
    assert messages("word-at:2=the,-1=night & starts-with-word:once & ends-with-word:Night", text) == []
    assert messages("word-at:3=dog", text) == ["the 3rd word is 'cat', needs 'dog'"]
    assert messages("word-at:12=x", text) == ["has 9 words, so no 12th word (needs 'x')"]
    assert messages("starts-with-word:The", text) == ["the first word is 'Once', needs 'The'"]
    assert messages("ends-with-word:day", text) == ["the last word is 'night', needs 'day'"]
    assert messages("char-at:1=o,-1=.", text) == []
    assert messages("char-at:2=x", text) == ["the 2nd character is 'n', needs 'x'"]
    assert messages("starts-with-word:x", "") == ["has no words (needs 'x')"]


def test_scopes_check_every_unit():
    text = "He ran home fast. He sat down. She slept."
    assert messages("each-sentence:(words:2..4)", text) == []
    assert messages("each-sentence:(starts-with-word:He)", text) == [
        "sentence 3: the first word is 'She', needs 'He'"]
    assert messages("each-sentence:(words:4)", text) == ["sentence 2: has 3 words, needs exactly 4 words",
                                                        "sentence 3: has 2 words, needs exactly 4 words"]
    v = parse_spec("each-sentence:(starts-with-word:He)").check(text)[0]
    assert text[v.start:v.end] == "She"  # positions point into the whole text
    paras = "It rained. Then rain.\n\nOne line only."
    assert messages("each-paragraph:(sentences:2)", paras) == ["paragraph 2: has 1 sentence, needs exactly 2 sentences"]
    assert messages("each-paragraph:(ends-with-word:rain)", paras) == [
        "paragraph 2: the last word is 'only', needs 'rain'"]


def test_sentence_and_paragraph_ends_check():
    text = "I felt sympathy. We spoke of republicanism! A rare type."
    assert messages('sentence-ends:["sympathy","republicanism","type"]', text) == []
    assert messages('sentence-ends:["sympathy","type"]', text) == ["sentence 2 ends with 'republicanism', needs 'type'"]
    assert messages('sentence-ends:["a","b","c","d"]', text)[0] == (
        "has 3 sentences, needs at least 4 (one per given last word)")
    passage = "It began. In April 1982, the Division was restored ()\n\nLater on. It was renamed."
    ok = 'paragraph-ends:["In April 1982, the Division was restored ()", "It was renamed"]'
    assert messages(ok, passage) == []
    assert messages('paragraph-ends:["It began"]', passage) == [
        "has 2 paragraphs, needs 1", "paragraph 1 ends with 'In April 1982, the Division was restored ()', needs 'It began'"]


def test_one_word_check():
    assert messages("one-word & chars:12 & char-at:2=O", "construction") == []
    assert messages("one-word", "two words") == ["is more than one word: ' words' follows 'two'"]
    assert messages("one-word", "word.") == ["is more than one word: '.' follows 'word'"]
    assert messages("one-word", " word") == ["does not start with a word: ' word'"]
    assert messages("one-word", "") == ["is empty, needs one word"]


def test_closing_text_adds_a_period_only_where_needed():
    assert closing_text("It was over") == "It was over."
    assert closing_text('He said "stop."') == 'He said "stop."'
    assert closing_text("Was it?") == "Was it?"


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("spec, why", [
    ("sentences:1 & chars:5 & include:encyclopaedia", "needs at least 14 .*'encyclopaedia'"),
    ("words:5 & word-at:8=river", "8th word 'river' in the text, but 'words:5' allows at most 5"),
    ("each-sentence:(words:5 & word-at:8=river)", "in a sentence, but 'each-sentence"),
    ('sentences:3 & sentence-ends:["a","b","c","d"]', "names 4 sentences but 'sentences:3' allows at most 3"),
    ("words:>=10 & words:<=5", "no number of words satisfies them all"),
    ("word-at:2=cat & word-at:2=dog", "cannot be both 'cat' and 'dog'"),
    ("sentences:4 & words:3", "at most 3 words but the text needs 4 sentences"),
    # "e.g" is not an abbreviation of the trained model: its period ends a sentence.
    ('paragraph-ends:["We ate fruit, e.g. apples"]', "is 2 sentences to the sentence splitter"),
    ('paragraph-ends:["Short one."] & each-sentence:(words:>=5)', "has 2 words but"),
    ('lipogram:e & sentence-ends:["type"]', "the given word 'type' breaks 'lipogram:e'"),
    ("one-word & words:3", "a single word is one of words only"),
    ("one-word & chars:5 & char-at:9=a", "position 9 but 'chars:5' allows at most 5"),
    ("paragraphs:2 & sentences:1", "needs at least 2 sentences but can hold at most 1"),
    ("each-sentence:(chars:20)", "checked but not decoded"),
])
def test_impossible_targets_are_refused_with_the_reason(spec, why):
    with pytest.raises(ImpossibleConstraint, match=why):
        plan_structure(parse_spec(spec))


def test_possible_plans_are_merged():
    plan = plan_structure(parse_spec("words:17 & word-at:4=aids,-1=end & sentences:1"))
    assert plan.text.at == {4: "aids", 17: "end"}  # with an exact count, -1 becomes 17
    plan = plan_structure(parse_spec('paragraph-ends:["A b.", "C d."] & each-paragraph:(sentences:>=2)'))
    assert plan.text.paragraphs == Count(2, 2) and plan.text.sentences.lo == 4
    assert plan_structure(parse_spec("lipogram:e")) is None


# ------------------------------------------------------------------ COLLIE's own checker


@pytest.fixture(scope="module")
def collie():
    # COLLIE unpatched: nltk's own sent_tokenize / word_tokenize on the trained punkt data.
    C = pytest.importorskip("collie.constraints")
    from bench.judges.punkt_data import install

    install()
    return C


TRICKY = [
    "He didn't go. She said \"no\" ... then left!",
    "Mr. Smith cannot come; he is ill. Gonna rain, 3.5 inches?",
    "It is 1899. The end.\n\nA new paragraph (with brackets). Last one",
    "One sentence only, with commas, semicolons; and colons: here.",
    "Kim Jong-un’s own half-brother left. Ferguson’s post went to Dr. Who at 5 p.m. today.",
]


@pytest.mark.parametrize("text", TRICKY)
def test_counts_agree_with_collie(collie, text):
    C = collie
    def count(level):
        return C.Constraint(target_level=C.TargetLevel(level), transformation=C.Count(),
                            relation=C.Relation("==")).extract(text)
    assert count("word") == len(counted_words(text))
    assert count("sentence") == len(sentences(text))
    assert count("paragraph") == len(paragraphs(text))
    assert count("character") == len(text)
    n = count("word")
    assert parse_spec(f"words:{n}").check(text) == []


@pytest.mark.parametrize("text", TRICKY)
def test_per_sentence_rules_agree_with_collie(collie, text):
    C = collie
    per_sentence = C.Constraint(input_level=C.InputLevel("sentence"), target_level=C.TargetLevel("word"),
                                transformation=C.ForEach(C.Count()), relation=C.Relation(">="),
                                reduction=C.Reduction("all"))
    last = C.Constraint(input_level=C.InputLevel("sentence"), target_level=C.TargetLevel("word"),
                        transformation=C.ForEach(C.Position(-1)), relation=C.Relation("=="),
                        reduction=C.Reduction("all"))
    counts = per_sentence.extract(text)
    lasts = last.extract(text)
    assert per_sentence.check(text, min(counts)) and not per_sentence.check(text, min(counts) + 1)
    assert (parse_spec(f"each-sentence:(words:>={min(counts)})").check(text) == [])
    assert (parse_spec(f"each-sentence:(words:>={min(counts) + 1})").check(text) != [])
    good = [w for w in lasts]
    import json
    assert last.check(text, good)
    assert parse_spec("sentence-ends:" + json.dumps(good)).check(text) == []


# ------------------------------------------------------------------ studio presets


def test_studio_presets_for_structure():
    from studio.ui import rules

    assert rules.preset("Exactly N sentences", "3") == ("sentences:3", "")
    assert rules.preset("Every sentence starts with…", "He") == ("each-sentence:(starts-with-word:He)", "")
    assert rules.preset("N words per sentence", "8..12") == ("each-sentence:(words:8..12)", "")
    with pytest.raises(rules.RuleError, match="give a number"):
        rules.preset("Exactly N sentences", " ")
    with pytest.raises(rules.RuleError, match="expected a count"):
        rules.preset("Exactly N sentences", "sea,salt")
    with pytest.raises(rules.RuleError, match="not one word"):
        rules.preset("Every sentence starts with…", "He said")
    # The rule picker takes a scoped rule as a spec, as typed.
    assert rules.make_spec("each-sentence", "(words:8..12 & starts-with-word:It)") == \
        "each-sentence:(words:8..12 & starts-with-word:It)"
    assert rules.make_spec("each-paragraph", "sentences:2") == "each-paragraph:(sentences:2)"
