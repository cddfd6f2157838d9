"""Access on a public server: any client can call any page event by fn_index, with anything;
no server key reaches the page; the browser's copy is trusted only if the server signed it;
and a server other machines can reach runs with Space rules unless the writer opts out.
Tiny random model, loopback only."""

from __future__ import annotations

import json
import socket
import uuid

import httpx
import pytest

from studio.ui.config import UiConfig, is_loopback, rules_for
from studio.ui.signing import sign, verified

# Values no page would send, one of each kind: wrong types, None, a huge string, deep nesting.
# (The text is just past a Space's cap on a draft; the cap on one value has its own test.)
GARBAGE = [None, 12345, True, "x" * 50_001, {"a": {"b": [1, {"c": "d"}]}}, [[[[[[[[[[1]]]]]]]]]],
           {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, ["list", 1, None]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def space_server(tiny_engine, tmp_path_factory):
    from studio.ui import build_app

    # Two tokens a generation: the events are under test here, not the decoder.
    cfg = UiConfig.from_env(space=True, data=tmp_path_factory.mktemp("space"), default_max_tokens=2)
    demo = build_app(tiny_engine, config=cfg)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield demo, f"http://127.0.0.1:{port}"
    demo.close()


def call(url: str, fn_index: int, data: list, session: str, timeout: float = 60.0) -> tuple[str, object]:
    """One event by fn_index over gradio's HTTP queue, as any client may send it: ("ok",
    outputs) or ("error", message)."""
    with httpx.Client(base_url=url, timeout=timeout) as http:
        r = http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                      "event_data": None, "trigger_id": None})
        if r.status_code != 200:
            return "error", r.json().get("detail", r.text) if "json" in r.headers.get("content-type", "") else r.text
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    out = msg.get("output") or {}
                    if msg.get("success"):
                        return "ok", out.get("data")
                    return "error", out.get("error")
    return "error", "the stream ended without an answer"


def page_events(demo):
    """Every event the page wires that takes values from the client, one of each kind: the
    same handler on the same inputs (the nine settings' change events, the presets, the
    check chained after every rule change) is checked once."""
    from gradio.components.api_component import Api

    seen, out = set(), []
    for i, fn in demo.fns.items():
        kind = (fn.name, tuple(b._id for b in fn.inputs))
        if (fn.inputs and not any(isinstance(b, Api) for b in fn.inputs) and kind not in seen
                and fn.api_name != "studio_train_adapter"):  # training is off on a Space anyway
            seen.add(kind)
            out.append((i, fn))
    return out


def test_every_page_event_refuses_garbage_in_one_line_and_the_server_stays_up(space_server):
    demo, url = space_server
    events = page_events(demo)
    assert len(events) > 25  # the page's kinds of event, hidden ones included
    hidden = [i for i, fn in events if fn.api_visibility == "private"]
    assert hidden, "the hidden events must be exercised too"
    answers = {"ok": 0, "error": 0}
    for i, fn in events:
        n = len(fn.inputs)
        defaults = [None if b.stateful else b.value for b in fn.inputs]
        # Garbage everywhere, then garbage in one place among the page's own defaults (a
        # different place for each kind), so every input meets some of it.
        tries = [[junk] * n for junk in GARBAGE]
        tries += [defaults[:j % n] + [junk] + defaults[j % n + 1:] for j, junk in enumerate(GARBAGE)]
        for values in tries:
            kind, out = call(url, i, values, uuid.uuid4().hex)
            answers[kind] += 1
            if kind == "error":
                # One clean line, never gradio's "Error" placeholder nor a traceback.
                assert isinstance(out, str) and out.strip() and "\n" not in out.strip(), (fn.name, values, out)
                assert "Traceback" not in out and out != "Error", (fn.name, out)
                assert len(out) < 400, (fn.name, out[:200])
        # The wrong count of values is refused the same way.
        kind, out = call(url, i, [None] * (n + 3), uuid.uuid4().hex)
        assert kind == "error" and f"takes {n} values" in out, (fn.name, out)
    assert answers["error"] > len(events)  # garbage was refused, not quietly taken
    # And a normal request still works after all of it.
    kind, out = call(url, _index(demo, "check"), ["A cat sat.", "lipogram:e", ""], uuid.uuid4().hex)
    assert kind == "ok" and out[0]["ok"] is True


def _index(demo, api_name: str) -> int:
    return next(i for i, fn in demo.fns.items() if fn.api_name == api_name)


def test_a_huge_draft_is_refused_on_the_server_with_the_cap_named(space_server):
    demo, url = space_server
    fn = demo.fns[_index(demo, "studio_check")]
    vals = [fn.inputs[k].value if not fn.inputs[k].stateful else None for k in range(len(fn.inputs))]
    vals[0] = "a" * 50_001
    kind, out = call(url, _index(demo, "studio_check"), vals, uuid.uuid4().hex)
    assert kind == "error" and "PEREC_MAX_CHARS" in out and "50001" in out


def test_no_server_key_reaches_the_page(space_server):
    demo, url = space_server
    key = demo.studio.config.browser_key().decode()
    page = httpx.get(url + "/", timeout=30).text
    config = httpx.get(url + "/config", timeout=30).text
    assert key and key not in page and key not in config
    assert "perec-studio" in config  # the browser copy is there, under its storage key


def test_the_browser_copy_is_signed_and_a_forged_one_is_ignored(space_server):
    demo, url = space_server
    session = uuid.uuid4().hex
    check = _index(demo, "studio_check")
    fn = demo.fns[check]
    vals = [b.value if not b.stateful else None for b in fn.inputs]
    vals[0] = "the server's own words"
    kind, out = call(url, check, vals, session)
    assert kind == "ok"
    copy = out[-1]
    assert copy["sig"] and copy["draft"]["text"] == "the server's own words"
    key = demo.studio.config.browser_key()
    # What the page sends back after a round trip through JavaScript (1.0 read as 1) verifies.
    assert verified(key, json.loads(json.dumps(copy).replace(".0,", ","))) == {k: v for k, v in copy.items() if k != "sig"}
    forged = {**copy, "draft": {**copy["draft"], "text": "planted by a script"}}
    assert verified(key, forged) == {"owner": copy["owner"], "draft": None}
    assert verified(key, {k: v for k, v in copy.items() if k != "sig"})["draft"] is None  # unsigned
    assert verified(b"another server", copy)["draft"] is None
    assert sign(key, "not a copy") == "not a copy"

    # Restored through the page's load event: the forged text never reaches the row.
    restore = next(i for i, f in demo.fns.items() if f.name == "restore")
    kind, out = call(url, restore, [forged, None], uuid.uuid4().hex)
    assert kind == "ok"
    stored = demo.studio.store.get(copy["draft"]["id"], copy["owner"])
    assert stored.text == "the server's own words"
    kind, out = call(url, restore, [copy, None], uuid.uuid4().hex)
    assert kind == "ok" and out[1] == "the server's own words"  # a signed copy opens its draft


@pytest.mark.parametrize("host, share, space", [
    ("127.0.0.1", False, False), ("localhost", False, False), ("::1", False, False), ("[::1]", False, False),
    ("", False, False), ("127.0.0.2", False, False),
    ("0.0.0.0", False, True), ("::", False, True), ("192.168.1.20", False, True), ("10.0.0.5", False, True),
    ("myhost.example", False, True), ("127.0.0.1", True, True),
])
def test_a_server_other_machines_can_reach_runs_with_space_rules(monkeypatch, host, share, space):
    monkeypatch.delenv("PEREC_SPACE", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert rules_for(host, share)[0] is space
    assert is_loopback(host) is (not space or share)


def test_an_explicit_opt_out_keeps_local_rules_and_gradio_settings_count(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setenv("PEREC_SPACE", "0")
    assert rules_for("0.0.0.0", True) == (False, "PEREC_SPACE=0")
    monkeypatch.delenv("PEREC_SPACE")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert rules_for() [0] and UiConfig.from_env().space  # app.py launched that way
    monkeypatch.setenv("GRADIO_SERVER_NAME", "127.0.0.1")
    monkeypatch.setenv("GRADIO_SHARE", "true")
    assert rules_for()[0]
    monkeypatch.delenv("GRADIO_SHARE")
    assert not rules_for()[0] and not UiConfig.from_env().space


def test_a_local_studio_is_not_launched_where_others_can_reach_it(tiny_engine, tmp_path, monkeypatch):
    from studio.ui import build_app
    from studio.ui.layout import ExposedError

    monkeypatch.delenv("PEREC_SPACE", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    demo = build_app(tiny_engine, config=UiConfig.from_env(space=False, data=tmp_path))
    with pytest.raises(ExposedError, match="built with local rules, but listening on 0.0.0.0"):
        demo.launch(prevent_thread_lock=True, server_name="0.0.0.0", server_port=free_port(), quiet=True)
