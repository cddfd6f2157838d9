"""The studio through gradio_client, against the app launched in-process: the scripting
endpoints (generate, candidates, check, ...), the page's own endpoints, readable errors,
Stop reaching the decoder, and per-session state."""

from __future__ import annotations

import socket
import time

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

pytestmark = pytest.mark.real

NO_E = "A cat sat on a mat, and its tail was long"
# Page endpoints take the settings panel in this order (see layout._settings_tab):
# model, mode, temperature, top_k, top_p, repetition penalty, max tokens, seed
SETTINGS = ["", "continue", 0.8, 50, 0.95, 1.15]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo):
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app(real_engine, tmp_path_factory):
    from studio.ui import UiConfig, build_app

    cfg = UiConfig.from_env(space=False, data=tmp_path_factory.mktemp("local-data"))
    demo = build_app(real_engine, config=cfg)
    url = launch(demo)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def space_app(real_engine, tmp_path_factory):
    from studio.ui import UiConfig, build_app

    cfg = UiConfig.from_env(space=True, data=tmp_path_factory.mktemp("space-data"))
    demo = build_app(real_engine, config=cfg)
    url = launch(demo)
    yield demo, url
    demo.close()


def client(url) -> Client:
    return Client(url, verbose=False)


# ----------------------------------------------------------------- scripting endpoints


def test_named_endpoints_exist(app):
    info = client(app[1]).view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    for name in ("/generate", "/candidates", "/check", "/one_word", "/stop", "/constraints", "/parse",
                 "/studio_generate", "/studio_stop", "/studio_candidates", "/studio_pick",
                 "/studio_apply_spec", "/studio_preset_lipogram", "/studio_undo", "/studio_export_json"):
        assert name in names, name


def test_generate_lipogram_streams_and_has_no_e(app):
    c = client(app[1])
    job = c.submit(NO_E, "lipogram:e", max_new_tokens=30, seed=1, api_name="/generate")
    text = job.result()
    seen = job.outputs()
    assert len(text.split()) >= 3
    assert "e" not in text.lower()
    assert len(seen) > 2 and seen[-1] == text  # it streamed: several growing pieces
    assert all(seen[i + 1].startswith(seen[i]) for i in range(len(seen) - 1))


def test_candidates_obey_constraints(app):
    c = client(app[1])
    cands = c.predict(NO_E, "lipogram:e", n=8, api_name="/candidates")
    assert 1 <= len(cands) <= 8
    probs = [x["prob"] for x in cands]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert all("e" not in x["text"].lower() for x in cands)
    word = c.predict(NO_E, "lipogram:e", seed=3, api_name="/one_word")
    assert word.strip() and "e" not in word.lower()


def test_check(app):
    c = client(app[1])
    out = c.predict("The cat", "lipogram:e", api_name="/check")
    assert out["ok"] is False
    assert [(v["start"], v["end"], v["rule"]) for v in out["violations"]] == [(2, 3, "lipogram:e")]
    assert c.predict("A cat", "lipogram:e", api_name="/check")["ok"] is True
    haiku = c.predict("An old silent pond\nA frog jumps into the pond\nSplash! Silence again", "",
                      "haiku", api_name="/check")
    assert [ln["syllables"] for ln in haiku["form"]["lines"]] == [5, 7, 5]
    parsed = c.predict("syllables:1&lipogram:e", api_name="/parse")
    assert parsed["spec"] == "syllables:1 & lipogram:e" and len(parsed["rules"]) == 2


@pytest.mark.parametrize("args, kw, words", [
    (("Once upon a time", "nosuchrule:3"), {}, "unknown constraint 'nosuchrule'"),
    (("Once upon a time", "lipogram:e & ("), {}, "bad spec"),
    (("   ", "lipogram:e"), {}, "draft is empty"),
    (("Once upon a time", ""), {"model": "no-such-org/no-such-model-xyz"}, "could not load the model"),
    (("Once upon a time", ""), {"max_new_tokens": 0}, "max_new_tokens"),
])
def test_bad_input_gives_readable_error(app, args, kw, words):
    c = client(app[1])
    with pytest.raises(Exception) as info:
        c.predict(*args, api_name="/generate", **kw)
    msg = str(info.value)
    assert words.lower() in msg.lower()
    assert "Traceback" not in msg and 'File "' not in msg


# ----------------------------------------------------------------- the page's endpoints


def test_page_generate_undo_redo_and_readable_errors(app):
    c = client(app[1])
    out = c.predict("lipogram:e", api_name="/studio_apply_spec")  # (chips, spec, chips html, form, status)
    spec, status = out[1], out[-1]
    assert spec == "lipogram:e" and not status
    editor, status, _revision = c.predict(NO_E, "", *SETTINGS, 20, 5, api_name="/studio_generate")
    assert editor.startswith(NO_E) and len(editor) > len(NO_E)
    assert "e" not in editor.lower()
    assert "tokens" in status
    text, status = c.predict(editor, api_name="/studio_undo")
    assert text == NO_E and "Undid" in status
    text, status = c.predict(text, api_name="/studio_redo")
    assert text == editor
    # Bad input: a readable message in the status line; the session's rules are untouched.
    out = c.predict("lipogram:e & nosuch:1", api_name="/studio_apply_spec")
    assert "unknown constraint 'nosuch'" in out[-1].lower() and "Traceback" not in out[-1]
    assert c.predict("length", "<5", api_name="/studio_add_rule")[1] == "lipogram:e & length:<5"
    _, status, _ = c.predict("", "", *SETTINGS, 20, 5, api_name="/studio_generate")
    assert "draft is empty" in status
    _, status, _ = c.predict(NO_E, "", "not-a-real/model-id-offline", *SETTINGS[1:], 20, 5,
                          api_name="/studio_generate")
    assert "could not load the model" in status.lower() and "Traceback" not in status
    assert c.predict("syllables:1", api_name="/studio_apply_spec")[1] == "syllables:1"


def test_stop_reaches_the_decoder(app):
    demo, url = app
    c = client(url)
    c.predict("", api_name="/studio_apply_spec")
    job = c.submit("The old house on the hill was", "", *SETTINGS, 400, 7, api_name="/studio_generate")
    deadline = time.time() + 60
    while time.time() < deadline and not any(o and o[0] and len(o[0]) > 40 for o in job.outputs()):
        time.sleep(0.1)
    assert demo.studio.running.count() == 1
    t0 = time.time()
    c.predict(api_name="/studio_stop")
    editor, status, _revision = job.result(timeout=30)
    assert time.time() - t0 < 10
    assert "Stopped by the writer" in status
    tokens = int(status.split("after ")[1].split()[0])
    assert tokens < 400
    assert demo.studio.running.count() == 0  # the decode loop itself ended


def test_two_sessions_do_not_share_state(space_app):
    demo, url = space_app
    a, b = client(url), client(url)
    assert a.predict("lipogram:e", api_name="/studio_apply_spec")[1] == "lipogram:e"
    # b's rules start empty: adding one shows only b's rule, not a's
    assert b.predict("syllables", "1", api_name="/studio_add_rule")[1] == "syllables:1"
    assert a.predict("length", "<5", api_name="/studio_add_rule")[1] == "lipogram:e & length:<5"
    # Drafts: b cannot open a's draft in Space mode
    view_a = a.predict(api_name="/studio_new_draft")
    draft_id = view_a[-2]["value"]  # the drafts dropdown comes back as an update (choices + value)
    assert isinstance(draft_id, str) and draft_id
    view_b = b.predict(draft_id, api_name="/studio_open_draft")
    assert "no longer exists" in view_b[-1]
    assert a.predict(draft_id, api_name="/studio_open_draft")[-1].startswith("Opened")
    # Space mode caps max tokens and refuses local model paths
    with pytest.raises(Exception, match="maximum value 200"):  # the page's slider stops at the cap
        a.predict(NO_E, "", *SETTINGS, 5000, 1, api_name="/studio_generate")
    with pytest.raises(Exception, match="capped at 200"):  # and so does the scripting endpoint
        a.predict(NO_E, "", max_new_tokens=5000, api_name="/generate")
    _, status, _ = a.predict(NO_E, "", "/tmp", *SETTINGS[1:], 10, 1, api_name="/studio_generate")
    assert "not offered here" in status and "PEREC_MODELS" in status  # the allow-list: the embedded model only
