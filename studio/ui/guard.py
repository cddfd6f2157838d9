"""Every value the page sends, checked against the component it claims to come from, before
any handler sees it.

A public server takes requests from anyone, and any HTTP client can call any page event by
its ``fn_index``, hidden from the API docs (``api_visibility="private"``) or not.  So each
event's inputs are checked here, in one place (``StudioBlocks.preprocess_data``), the way
the page itself would constrain them: a textbox sends text no longer than its cap, a
slider a number, a radio one of its choices, a file a file reference, and nothing nests
deeper or weighs more than a page could send.  A refusal is one line naming the field;
handlers keep their own checks of meaning (ranges, specs, ids).

Values of server-side state (gr.State) never come from the client, and the scripting
endpoints (``gr.api``) check their own typed arguments, so neither is checked here.
"""

from __future__ import annotations

import gradio as gr
from gradio.components.api_component import Api

from constraints.limits import PAGE_VALUE_CHARS, TEXT_CHARS
from studio.ui.values import BadValue, got

NUMERIC_TEXT = 64  # characters: a number typed as text ("0.8") is short
MAX_DEPTH = 8  # nesting a page value may have (a draft copy: copy > draft > settings > stop)
CHOICE_CHARS = 1_000  # a choice's value: a rule, a mode, a draft id


def check_inputs(blocks, inputs: list, state, space: bool) -> None:
    """Raise BadValue (one line, naming the field) for the first value no page could send."""
    if not isinstance(inputs, list) or len(inputs) != len(blocks):
        raise BadValue(f"this event takes {len(blocks)} values (got {got(inputs)})")
    for block, value in zip(blocks, inputs):
        if block.stateful or isinstance(block, Api):
            continue
        if state is not None and block._id in state:
            block = state[block._id]  # this session's copy: its choices as the page shows them
        check_value(block, value, space)


def check_value(block, v, space: bool) -> None:
    name = label(block)
    _bounded(name, v, space)
    if isinstance(block, gr.Textbox):
        if v is not None and not isinstance(v, str):
            raise BadValue(f"{name} must be text (got {got(v)})")
        cap = TEXT_CHARS.value(space)
        limit = min(block.max_length or cap, cap)  # the page's own max_length, held here too
        if v is not None and len(v) > limit:
            raise BadValue(f"{name}: {TEXT_CHARS.message(len(v), space)}" if limit == cap
                           else f"{name} takes at most {limit} characters (got {len(v)})")
    elif isinstance(block, (gr.Slider, gr.Number)):
        if isinstance(v, bool) or not (v is None or isinstance(v, (int, float))
                                       or (isinstance(v, str) and len(v) <= NUMERIC_TEXT)):
            raise BadValue(f"{name} must be a number (got {got(v)})")
    elif isinstance(block, (gr.Radio, gr.Dropdown)):
        _choice(block, name, v)
    elif isinstance(block, gr.Dataset):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise BadValue(f"{name} must be the index of a row (got {got(v)})")
    elif isinstance(block, (gr.File, gr.UploadButton)):
        files = v if isinstance(v, list) else [v]
        if not all(f is None or (isinstance(f, dict) and isinstance(f.get("path"), str)) for f in files):
            raise BadValue(f"{name} must be an uploaded file (got {got(v)})")
    elif isinstance(block, gr.Dataframe):
        if v is not None and not isinstance(v, dict):
            raise BadValue(f"{name} must be a table (got {got(v)})")
        if v is not None:
            _table_shape(block, name, v)


MAX_TABLE_ROWS = 1_000  # a page's tables list adapters on disk: far fewer rows than this


def _table_shape(block, name: str, v: dict) -> None:
    """A table the page could have sent: the component's own columns, no row wider than
    them, and no more rows than a page's table holds (a 1000-column table is no adapter mix)."""
    headers, rows = v.get("headers"), v.get("data")
    want = list(block.headers or [])
    if want and headers is not None and list(headers) != want:
        raise BadValue(f"{name} must have the columns {', '.join(map(str, want))} (got {got(headers)})")
    if rows is None:
        return
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise BadValue(f"{name} must be a table of rows (got {got(rows)})")
    if len(rows) > MAX_TABLE_ROWS:
        raise BadValue(f"{name} has {len(rows)} rows (a page's table has at most {MAX_TABLE_ROWS})")
    if want and any(len(r) > len(want) for r in rows):  # (an empty table may come as [[]])
        raise BadValue(f"{name}: a row has more than {len(want)} cells")


def _choice(block, name: str, v) -> None:
    values = v if isinstance(v, list) and getattr(block, "multiselect", False) else [v]
    for x in values:
        if x is None:
            continue
        if isinstance(x, bool) or not isinstance(x, (str, int, float)) or (isinstance(x, str) and len(x) > CHOICE_CHARS):
            raise BadValue(f"{name} must be one of its choices (got {got(x)})")
        if not getattr(block, "allow_custom_value", False) and x not in [c for _, c in block.choices]:
            raise BadValue(f"{name} has no choice {got(x)}")


def _bounded(name: str, v, space: bool) -> None:
    """Any value: no deeper than a page's, no bigger than the cap on one value."""
    budget = PAGE_VALUE_CHARS.value(space)
    seen, stack = 0, [(v, 0)]
    while stack:
        x, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadValue(f"{name}: the value nests deeper than {MAX_DEPTH} levels")
        if isinstance(x, dict):
            seen += len(x)
            stack.extend((k, depth + 1) for k in x)
            stack.extend((y, depth + 1) for y in x.values())
        elif isinstance(x, (list, tuple)):
            seen += len(x)
            stack.extend((y, depth + 1) for y in x)
        elif isinstance(x, str):
            seen += len(x)
        else:
            seen += 1
        if seen > budget:
            raise BadValue(f"{name}: {PAGE_VALUE_CHARS.message(seen, space)}")


def label(block) -> str:
    return getattr(block, "label", None) or getattr(block, "elem_id", None) or type(block).__name__
