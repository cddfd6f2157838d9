"""Layout rules' check() on hand-made texts, IFEval's edge cases among them; their specs
round-trip; the layout plan refuses what no text can have, with the reason."""

import pytest

from constraints.base import ImpossibleConstraint, SpecError
from constraints.layout import (
    Bullets, EachLine, EndsWithText, Numbered, Postscript, Sections, SeparatedParagraphs, StartsWithText, Title,
    Wrap,
)
from constraints.layout_plan import plan_layout
from constraints.spec import parse_spec
from constraints.structure import Count


def ok(rule, text):
    return rule.check(text) == []


def test_starts_and_ends_with_text_like_ifeval():
    s = StartsWithText("Write a poem")
    assert ok(s, "  write a POEM about rain.\nIt rains.")
    assert ok(s, '"Write a poem, then stop."')  # outer double quotes are looked through
    assert not ok(s, "I will write a poem")
    e = EndsWithText("Is there anything else?")
    assert ok(e, "Done. Is there anything else?  \n")
    assert ok(e, '"Done. is there anything else?"')  # IFEval's EndChecker strips double quotes
    assert not ok(e, "Is there anything else? Yes.")
    assert not ok(e, "Is there anything else")


def test_wrap():
    q = Wrap('"', '"')
    assert ok(q, ' "a quoted answer" ')
    assert not ok(q, '"unclosed')
    assert not ok(q, '"')  # IFEval: longer than one character
    assert not ok(q, '""')  # and something inside
    b = Wrap("<<", ">>")
    assert ok(b, "<<all of it>>") and not ok(b, "<<all>> of it")


def test_title():
    t = Title()
    assert ok(t, "<<Rain>>\n\nIt rains all day.")
    assert not ok(t, "<<Rain>>\nIt rains.")  # no blank line after the title
    assert not ok(t, "<< >>\n\nIt rains.")  # an empty title
    assert not ok(t, "Rain\n\n<<It rains>>")  # not the first line
    assert not ok(t, "<<Rain>>")  # nothing after it
    assert ok(Title("[", "]"), "[Rain]\n\nText.")
    # After an opening paragraph (a repeated request), but no later.
    assert ok(t, "Write a story.\n\n<<Rain>>\n\nIt rains all day.")
    assert not ok(t, "One.\n\nTwo.\n\n<<Rain>>\n\nIt rains.")


def test_postscript():
    p = Postscript("P.S.")
    assert ok(p, "Dear all,\n\nSee you.\n\nP.S. Bring cake.")
    assert not ok(p, "P.S. first.\n\nThen the letter.")
    assert not ok(p, "Letter.\n\nP.S.")  # nothing after the marker
    assert not ok(p, "Letter. P.S. inline.")


def test_bullets_count_as_ifeval_does():
    b = Bullets(Count(3, 3))
    assert ok(b, "* one\n* two\n* three")
    assert ok(b, "Intro:\n* one\n- two\n  * three\nBye.")  # '-' lines are bullets too
    assert not ok(b, "* one\n* two")
    assert not ok(b, "* one\n* two\n* three\n* four")
    assert not ok(b, "**bold** one\n* two\n* three")  # '**' is no bullet: two of them
    assert ok(Bullets(Count(2)), "* a\n* b\n* c")


def test_numbered():
    n = Numbered(Count(3, 3))
    assert ok(n, "1. one\n2. two\n3. three")
    assert not ok(n, "1. one\n3. two\n2. three")  # out of order
    assert not ok(n, "1. one\n2. two")
    assert not ok(n, "1.one\n2. two\n3. three")  # no space after the period: not numbered


def test_sections_split_as_ifeval():
    s = Sections("SECTION", Count(2))
    assert ok(s, "SECTION 1\nFirst.\n\nSECTION 2\nSecond.")
    assert ok(s, "Intro. SECTION1 a SECTION 2 b")  # \s? around the number
    assert not ok(s, "SECTION 1\nonly one")
    assert not ok(Sections("SECTION", Count(2, 2)), "SECTION 1 a SECTION 2 b SECTION 3 c")


def test_separated_paragraphs_as_ifeval():
    p = SeparatedParagraphs(Count(3, 3), "***")
    assert ok(p, "One.\n***\nTwo.\n***\nThree.")
    assert ok(p, "***\nOne.\n***\nTwo.\n***\nThree.\n***")  # empty first and last pieces do not count
    assert not ok(p, "One.\n***\n\n***\nTwo.\n***\nThree.")  # an empty one inside
    assert not ok(p, "One.\n***\nTwo.")
    two = SeparatedParagraphs(Count(2, 2), "******")
    assert ok(two, "Answer one.\n******\nAnswer two.")
    assert not ok(two, "Answer one.\n***\nAnswer two.")


def test_lines_and_each_line():
    lines = parse_spec("lines:3")
    assert ok(lines, "a\nb\nc\n")
    assert not ok(lines, "a\n\nb\nc")  # a blank line
    assert not ok(lines, "a\nb")
    each = EachLine(StartsWithText(">") & EndsWithText("."))
    assert ok(each, "> one.\n> two.")
    assert not ok(each, "> one.\ntwo.")


@pytest.mark.parametrize("spec", [
    "bullets:3", "numbered:2..4", "lines:>=2", "title", "wrap:<<,>>", "postscript:P.S.",
    "starts-with-text:Dear reader", "ends-with-text:Is there anything else?", "sections:SECTION,>=2",
    "each-line:(starts-with-text:> & ends-with-text:.)",
    # quoted literals (the spec language's JSON strings)
    'wrap:"\\""', 'title:"[","]"', 'paragraphs:2;sep="***"', 'sections:"SECTION",3', 'starts-with-text:"Hi, you"',
    'each-line:(starts-with-text:"> ")', 'ends-with-text:"Done.\\n"',
])
def test_specs_round_trip(spec):
    c = parse_spec(spec)
    assert parse_spec(c.spec()).spec() == c.spec()


def test_quoted_literals_reach_the_rules_unchanged():
    assert parse_spec('each-line:(starts-with-text:"> ")').parts[0].text == "> "
    assert parse_spec('sections:"PART, A",2').marker == "PART, A"
    assert parse_spec('paragraphs:2;sep="* * *"').sep == "* * *"
    w = parse_spec('wrap:"\\""')
    assert (w.opening, w.closing) == ('"', '"')


def test_paragraphs_without_a_separator_stay_blank_line_paragraphs():
    assert type(parse_spec("paragraphs:2")).__name__ == "ParagraphCount"
    assert isinstance(parse_spec('paragraphs:3;sep="***"'), SeparatedParagraphs)


@pytest.mark.parametrize("spec, why", [
    ("bullets:0", "only an empty text"),
    ("wrap:a,b,c", "expected 1 or 2 literals"),
    ("title:x", "expected 2 literals"),
    ("sections:3", "a marker and a count"),
    ("each-line:(words:3)", "cannot apply per line"),
    ('paragraphs:2;sep=""', "empty item"),
])
def test_bad_arguments_are_one_line_errors(spec, why):
    with pytest.raises(SpecError, match=why) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("constraint, why", [
    (parse_spec("bullets:3 & numbered:3"), "laid out one way only"),
    (parse_spec("starts-with-text:Hello & lipogram:e"), "breaks 'lipogram:e'"),
    (parse_spec("sections:SECTION,2 & lipogram:e"), "breaks 'lipogram:e'"),
    (Wrap("<<", ">>") & parse_spec("ban:<"), "breaks 'ban:<'"),
    (parse_spec('wrap:"\\"" & ban:"\\""'), "breaks 'ban:"),
    (parse_spec("bullets:3 & sentences:3"), "cannot be combined with sentence"),
    (parse_spec("lines:3 & title"), "writes lines of its own"),
    (parse_spec("each-line:(starts-with-text:>) & bullets:2"), "writes lines of its own"),
    (parse_spec("wrap:<<,>> & ends-with-text:bye"), "very edge"),
    (parse_spec("bullets:3 & bullets:4"), "cannot both hold"),
])
def test_impossible_layouts_are_refused_with_the_reason(constraint, why):
    with pytest.raises(ImpossibleConstraint, match=why):
        plan_layout(constraint)


def test_a_title_follows_the_text_it_must_start_with():
    segs = plan_layout(parse_spec('title & starts-with-text:"Write a story."')).segments(1)
    assert segs[0] == "Write a story.\n\n<<" and segs[2] == ">>\n\n"
    count = parse_spec('starts-with-text:"Say right, right now." & count-text:right,<=1')
    with pytest.raises(ImpossibleConstraint, match="already writes 2"):
        plan_layout(count)


def test_title_brackets_are_fine_under_a_lipogram():
    assert plan_layout(parse_spec("title & lipogram:e")) is not None


def test_the_layout_puts_literals_in_their_places():
    segs = plan_layout(Wrap('"', '"') & EndsWithText("Is there anything else?")).segments(1)
    assert segs[0] == '"' and segs[2] == ' Is there anything else?"'
    segs = plan_layout(parse_spec("bullets:2 & starts-with-text:Here it is:")).segments(2)
    assert [s for s in segs if isinstance(s, str)] == ["Here it is:\n* ", "\n* ", ""]
