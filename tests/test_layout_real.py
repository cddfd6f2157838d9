"""Layout rules with the real embedded model: a bullet list of four items, judged by
check() (IFEval's count) and read item by item: each bullet holds words of its own."""

import re

import pytest

from constraints.spec import parse_spec
from studio.decode.sampling import Settings
from tests.conftest import streamed_and_checked

pytestmark = pytest.mark.real


def test_a_bullet_list_of_four(real_engine):
    c = parse_spec("bullets:4")
    text, _ = streamed_and_checked(real_engine, "Give four tips for staying healthy, as a markdown bullet list.", c,
                                   Settings(max_new_tokens=160, seed=1))
    items = re.findall(r"^\* (.*)$", text, flags=re.MULTILINE)
    assert len(items) == 4, text
    # Written by the model, not emptied to meet the count: real words in every item.
    assert all(len(re.findall(r"[A-Za-z]{2,}", it)) >= 2 for it in items), text
