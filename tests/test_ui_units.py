"""The studio's parts without a browser or the real model: the rule set, presets, undo/redo,
Stop, drafts in two copies, the live check, Space mode.  Fast (tiny random model)."""

from __future__ import annotations

import threading
import time

import pytest

from constraints.spec import parse_spec
from studio.ui import persistence, rules
from studio.ui.config import UiConfig, space_mode
from studio.ui.session import Running, Session
from studio.ui.work import SettingsIn, UserError, check_view, readable




# ----------------------------------------------------------------- rules


def test_rule_set_edits_round_trip_through_the_spec_language():
    active = rules.add([], rules.make_spec("lipogram", "e"))
    active = rules.add(active, "syllables:1 & lipogram:e")  # duplicates are not added twice
    assert active == ["lipogram:e", "syllables:1"]
    active = rules.add(active, "starts-with:s | rhymes:day")
    spec = rules.spec_string(active)
    assert spec == "lipogram:e & syllables:1 & (starts-with:s | rhymes:day)"
    assert parse_spec(spec).spec() == spec  # the CLI accepts it as is
    assert rules.from_spec_text(spec) == active
    active = rules.replace(active, "syllables:1", rules.make_spec("syllables", "<=2"))
    assert active[1] == "syllables:<=2"
    assert rules.remove(active, "lipogram:e") == active[1:]
    assert [label for label, _ in rules.chips(["lipogram:e"])] == ['no "e"']
    assert rules.split_name_arg("word-bank:sea,salt") == ("word-bank", "sea,salt")


@pytest.mark.parametrize("call, words", [
    (lambda: rules.make_spec("nosuch", "1"), "unknown constraint 'nosuch'"),
    (lambda: rules.make_spec("syllables", ""), "needs an argument"),
    (lambda: rules.make_spec(None, ""), "choose a rule"),
    (lambda: rules.from_spec_text("lipogram:e & ("), "bad spec"),
    (lambda: rules.remove(["lipogram:e"], None), "select an active rule"),
    (lambda: rules.preset("Tautogram", "tt"), "one letter"),
    (lambda: rules.preset("Word bank", " "), "give some words"),
    (lambda: rules.check_form_spec("villanelle-ish"), "unknown form"),
])
def test_bad_rules_are_readable(call, words):
    with pytest.raises(rules.RuleError, match=words):
        call()


def test_presets():
    assert rules.preset("Lipogram (no e)") == ("lipogram:e", "")
    assert rules.preset("One syllable") == ("syllables:1", "")
    assert rules.preset("Tautogram", "p") == ("starts-with:p", "")
    assert rules.preset("Haiku") == (None, "haiku")
    assert rules.preset("Sonnet") == (None, "sonnet")
    spec, _ = rules.preset("Word bank", "sea, salt, wind")
    assert spec.startswith("word-bank:") and parse_spec(spec)
    # a quoted argument survives characters the spec language uses
    spec = rules.make_spec("ban", "a&b")
    assert rules.from_spec_text(spec) == [spec] or parse_spec(spec).check("a&b")


def test_every_registry_entry_can_be_added_from_its_example():
    from constraints.base import entries

    for e in entries():
        name, _, arg = e.example.partition(":")
        assert rules.make_spec(name, arg)


# ----------------------------------------------------------------- undo / redo and Stop


def test_undo_redo_follow_the_insertion_even_after_typing_before_it():
    s = Session()
    draft = "Once upon a time"
    s.inserted(len(draft), " a cat sat")
    draft += " a cat sat"
    draft = "Title\n" + draft  # the writer typed before the insertion
    text, msg = s.undo_last(draft)
    assert text == "Title\nOnce upon a time" and "Undid 3 words" in msg
    text, _ = s.redo_last(text)
    assert text == "Title\nOnce upon a time a cat sat"
    text2, msg = s.undo_last(text.replace("cat", "dog"))
    assert "edited since" in msg and text2 == text.replace("cat", "dog")
    assert s.undo_last("")[1] == "The last generated text was edited since, so it cannot be undone."
    assert Session().undo_last("x") == ("x", "Nothing to undo.")


def test_stop_cancels_the_running_decode_within_a_step(studio_local):
    st = studio_local
    gen, _, base = st.start("Once upon a time", [], "", SettingsIn(max_new_tokens=400, seed=1))
    assert base == "Once upon a time"
    seen = []

    def consume():
        for text in st.stream(gen, "tab-1"):
            seen.append(text)

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.time() + 30
    while not seen and time.time() < deadline:
        time.sleep(0.005)
    assert st.running.count("tab-1") == 1 and st.running.stop("other-tab") == 0
    assert st.running.stop("tab-1") == 1
    t.join(10)
    assert not t.is_alive()
    assert gen.result.stop_reason == "cancelled" and gen.result.tokens < 400
    assert st.running.count() == 0


def test_running_registry_is_per_session():
    class G:
        cancelled = False

        def cancel(self):
            self.cancelled = True

    r, a, b = Running(), G(), G()
    r.add("a", a)
    r.add("b", b)
    assert r.stop("a") == 1 and a.cancelled and not b.cancelled
    r.discard("a", a)
    assert r.count() == 1


# ----------------------------------------------------------------- generation input


def test_start_refuses_bad_input_before_decoding(studio_local, studio_space):
    with pytest.raises(UserError, match="draft is empty"):
        studio_local.start("   ", [], "", SettingsIn())
    with pytest.raises(UserError, match="capped at 200"):
        studio_space.start("Hello", [], "", SettingsIn(max_new_tokens=201))
    with pytest.raises(UserError, match="temperature"):
        studio_local.start("Hello", [], "", SettingsIn(temperature=0))
    with pytest.raises(UserError, match="not offered here.*PEREC_MODELS"):
        studio_space.start("Hello", [], "", SettingsIn(model="/tmp"))
    gen, note, base = studio_local.start("Hi", [], "", SettingsIn(mode="instruct"), instruction="Write.")
    assert base == "Hi\n\n" and gen.mode == "instruct"


def test_readable_never_shows_a_trace():
    assert readable(rules.RuleError("bad spec 'x'")) == "Bad spec 'x'"
    msg = readable(KeyError("boom"))
    assert "KeyError" in msg and "Traceback" not in msg and "unchanged" in msg


def test_one_word_samples_from_the_list_on_screen(studio_local):
    cands = [{"text": " sea", "prob": 0.9, "display": "sea"}, {"text": " salt", "prob": 0.1, "display": "salt"}]
    words = {studio_local.one_word("The", [], "", SettingsIn(seed=i), cands=cands) for i in range(20)}
    assert words <= {" sea", " salt"} and " sea" in words


# ----------------------------------------------------------------- live check


def test_check_view_highlights_in_place_and_lists_every_violation():
    v = check_view("The bee", ["lipogram:e", "length:<3"], "")
    assert not v.ok
    ents = v.highlight["entities"]
    assert all(a["end"] <= b["start"] for a, b in zip(ents, ents[1:]))  # no overlaps
    assert {"entity": "lipogram:e", "start": 2, "end": 3} in ents
    assert "line 1, col 5" in v.summary and "length:<3" in v.summary
    assert check_view("A cat", ["lipogram:e"], "").summary.startswith("✓")


def test_check_view_scansion_for_a_form():
    v = check_view("An old silent pond\nA frog jumps into the pond\nSplash! Silence again", [], "haiku")
    assert [row[1] for row in v.scansion] == ["5/5", "7/7", "5/5"]
    bad = check_view("An old pond\nA frog", [], "haiku")
    assert not bad.ok and "needs 5" in bad.summary and bad.scansion[0][5] == "✗"


# ----------------------------------------------------------------- drafts, two copies


def test_restore_prefers_the_newer_copy(studio_local):
    st = studio_local
    s1 = Session()
    d = persistence.restore(st, s1, None)
    browser = persistence.save(st, s1, "server and browser", SettingsIn(seed=4))
    assert browser["draft"]["text"] == "server and browser" and browser["draft"]["settings"]["seed"] == 4
    # The browser's copy is newer (e.g. the server lost it): it wins and is stored again.
    newer = {**browser, "draft": {**browser["draft"], "text": "browser only", "updated": time.time() + 5}}
    st.store.delete(d.id, "local")
    s2 = Session()
    assert persistence.restore(st, s2, newer).text == "browser only"
    assert st.store.get(d.id, "local").text == "browser only"
    # The server's copy is newer: it wins.
    persistence.save(st, s2, "server is newer", SettingsIn())
    assert persistence.restore(st, Session(), browser).text == "server is newer"


def test_space_owners_are_per_browser(studio_space):
    st = studio_space
    a, b = Session(), Session()
    da = persistence.restore(st, a, None)
    persistence.save(st, a, "a's poem", SettingsIn())
    db = persistence.restore(st, b, None)
    assert a.owner != b.owner and da.id != db.id
    assert [label for label, _ in persistence.choices(st, b)] == ["Draft 1 · empty"]
    with pytest.raises(Exception, match="no longer exists"):
        persistence.open_draft(st, b, da.id)
    # The same browser comes back (its owner id is in its localStorage): same drafts.
    again = Session()
    browser = persistence.browser_copy(a, st.store.get(da.id, a.owner))
    assert persistence.restore(st, again, browser).text == "a's poem" and again.owner == a.owner


def test_export_and_import_through_the_session(studio_local, tmp_path):
    st, s = studio_local, Session()
    persistence.restore(st, s, None)
    s.active = ["lipogram:e"]
    persistence.save(st, s, "A cat sat.", SettingsIn(temperature=0.5))
    path = persistence.export(st, s, "json")
    d = persistence.import_file(st, s, str(path))
    assert d.text == "A cat sat." and d.constraints == ["lipogram:e"] and s.draft_id == d.id
    assert d.settings["temperature"] == 0.5
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "perec-draft", "version": 1, "text": 3}')
    n = len(st.store.list("local"))
    with pytest.raises(ValueError, match="text"):
        persistence.import_file(st, s, str(bad))
    assert len(st.store.list("local")) == n and s.draft_id == d.id


# ----------------------------------------------------------------- config and the app


def test_space_mode_from_env(monkeypatch):
    monkeypatch.delenv("PEREC_SPACE", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert space_mode() is False
    monkeypatch.setenv("SPACE_ID", "someone/perec")
    assert space_mode() is True
    cfg = UiConfig.from_env()
    assert cfg.space and cfg.max_tokens_cap == 200 and not cfg.allow_local_models
    monkeypatch.setenv("PEREC_SPACE", "0")
    assert space_mode() is False


def test_build_app_names_every_action(tiny_engine, tmp_path):
    from studio.ui import build_app

    demo = build_app(tiny_engine, config=UiConfig.from_env(space=True, data=tmp_path))
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    for name in ("generate", "candidates", "check", "one_word", "stop", "studio_generate", "studio_stop",
                 "studio_pick", "studio_one_word", "studio_undo", "studio_redo", "studio_add_rule",
                 "studio_apply_spec", "studio_preset_haiku", "studio_open_draft", "studio_import_draft",
                 "studio_export_md", "studio_rename_draft", "studio_delete_draft", "studio_load_model"):
        assert name in names, name
    gen = next(fn for fn in demo.fns.values() if fn.api_name == "studio_generate")
    assert gen.concurrency_limit == demo.studio.config.concurrency
