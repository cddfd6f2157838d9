"""Drafts that never go backwards: revisions, compare-and-set saves, the stale echo of a
streamed piece, restore by revision, and the server's caps on drafts (issue 16)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from constraints.limits import LimitError
from studio.ui import persistence
from studio.ui.callbacks import Handlers
from studio.ui.config import UiConfig
from studio.ui.drafts import (OLDER, SAME, WRITE, Draft, DraftConflict, DraftStore, export_text,
                              text_decision)
from studio.ui.session import Session
from studio.ui.work import SettingsIn, Studio

# The settings panel as the page sends it: model, mode, temperature, top_k, top_p,
# repetition penalty, max tokens, seed, search width.
VALS = ["", "continue", 0.8, 50, 0.95, 1.1, 24, 7, 0]
SKIP = {"__type__": "update"}  # gr.skip(): the page keeps what it shows


@pytest.fixture
def store(tmp_path):
    return DraftStore(tmp_path / "drafts.sqlite3")


class RecordingStore(DraftStore):
    """The real store, remembering the row's text after every accepted write, in order."""

    def __init__(self, path):
        super().__init__(path)
        self.texts: list[str] = []

    def save(self, draft, base=None, fields=None):
        before = self.get(draft.id, draft.owner)
        d = super().save(draft, base, fields) if fields is not None else super().save(draft, base)
        if before is None or d.revision != before.revision:
            self.texts.append(d.text)
        return d


def studio_with(tmp_path, tiny_engine, store=None, space=False) -> Studio:
    return Studio(UiConfig.from_env(space=space, data=tmp_path), engine=tiny_engine, store=store)


def opened(studio: Studio) -> tuple[Handlers, Session, str]:
    """A page that has loaded: its session and the token its answer set."""
    h, session = Handlers(studio), Session()
    d = persistence.restore(studio, session, None)
    return h, session, persistence.token(d)


def edit(h: Handlers, session: Session, text: str, tok: str):
    """The editor's change event as the page runs it: (token it answers, browser copy)."""
    out = h.edited(text, session, *VALS, revision=tok)
    return out[-2], out[-1]


# ----------------------------------------------------------------- the rule


@pytest.mark.parametrize("stored, text_rev, text, base, want", [
    ("abc", 3, "abc", 1, SAME),  # the page's echo of what is stored
    ("abc", 3, "abcd", 3, WRITE),  # typed on the text as stored
    ("abc", 3, "ab", 3, WRITE),  # a deletion, on the text as stored
    ("abc", 3, "xyz", None, WRITE),  # a script, which says nothing: based on what is stored
    ("abc def", 5, "abc", 4, OLDER),  # a late echo of an older streamed piece: dropped
    ("abc", 5, "abc typed", 4, WRITE),  # typed at the end while the row moved: holds all of it
    ("abc def", 5, "abc typed", 4, "conflict"),  # a real edit of a text that changed since
])
def test_text_decision(stored, text_rev, text, base, want):
    assert text_decision(stored, text_rev, text, base) == want


# ----------------------------------------------------------------- the store


def test_every_accepted_write_adds_one_and_a_no_change_save_writes_nothing(store):
    d = store.create("o", text="A")
    assert d.revision == 1 and store.get(d.id, "o").revision == 1
    d.text = "A cat"
    assert store.save(d, base=1).revision == 2
    assert store.save(d, base=1).revision == 2  # the same text again: nothing written
    d.text = "A cat sat"
    assert store.save(d, base=2).revision == 3
    assert store.get(d.id, "o").text == "A cat sat"


def test_a_stale_save_is_dropped_and_a_real_conflict_refused_with_the_current_draft(store):
    d = store.create("o", text="The sea")
    stream = Draft.from_dict({**d.to_dict(), "text": "The sea was"})
    assert store.save(stream, base=1).revision == 2
    stream.text = "The sea was grey"
    assert store.save(stream, base=2).revision == 3
    echo = Draft.from_dict({**d.to_dict(), "text": "The sea was"})  # piece 1's echo, late
    kept = store.save(echo, base=2)
    assert kept.text == "The sea was grey" and kept.revision == 3  # never written
    typed = Draft.from_dict({**d.to_dict(), "text": "The sea was calm"})
    with pytest.raises(DraftConflict, match="not saved") as e:
        store.save(typed, base=2)
    assert e.value.current.text == "The sea was grey" and e.value.current.revision == 3
    assert store.get(d.id, "o").text == "The sea was grey"


def test_settings_and_text_saves_cross_without_reverting_each_other(tmp_path, tiny_engine):
    studio = studio_with(tmp_path, tiny_engine)
    h, session, tok = opened(studio)
    tok, _ = edit(h, session, "Once upon", tok)
    # The settings change (seed 9) is saved while the page's text event is still on its way
    # with the token from before it: the text is written, the seed stays.
    h.settings_changed("stale text this event carried", session, *VALS[:7], 9, 0)
    row = studio.store.get(session.draft_id, session.owner)
    assert row.text == "Once upon" and row.settings["seed"] == 9
    tok2, _ = edit(h, session, "Once upon a time", tok)
    row = studio.store.get(session.draft_id, session.owner)
    assert row.text == "Once upon a time" and row.settings["seed"] == 9 and tok2 == persistence.token(row)


def test_an_old_database_is_migrated_and_its_rows_start_at_revision_0(tmp_path):
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE drafts (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, "
                "body TEXT NOT NULL, created REAL, updated REAL)")
    body = json.dumps({"id": "abc123", "owner": "local", "title": "Old", "text": "kept words"})
    con.execute("INSERT INTO drafts VALUES ('abc123', 'local', 'Old', ?, 1.0, 1.0)", (body,))
    con.commit()
    con.close()
    store = DraftStore(path)
    old = store.get("abc123", "local")
    assert old.text == "kept words" and old.revision == 0
    old.text = "kept words, and more"
    assert store.save(old, base=0).revision == 1
    assert DraftStore(path).get("abc123", "local").text == "kept words, and more"


# ----------------------------------------------------------------- the race, in order


def test_a_late_echo_of_a_streamed_piece_never_takes_the_row_back(tmp_path, tiny_engine):
    """The editor's save of piece k is held back until the stream has saved piece k+1
    (the generator only runs when pulled, so the order is forced, not timed): it is
    dropped, and the row's text after every write only ever grows."""
    st = RecordingStore(tmp_path / "drafts.sqlite3")
    studio = studio_with(tmp_path, tiny_engine, store=st)
    h, session, tok = opened(studio)
    tok, _ = edit(h, session, "The lighthouse keeper", tok)
    gen = h.generate(_request("page"), "The lighthouse keeper", "", session,
                     *VALS[:6], 40, 3, 0, revision=tok)
    pieces = []  # (text shown, token) after each streamed piece
    for editor, _status, _session, piece_tok in gen:
        if isinstance(editor, str):
            pieces.append((editor, piece_tok))
        if len(pieces) == 2:
            break
    assert len(pieces) == 2 and pieces[1][0] != pieces[0][0], "the tiny model must stream two pieces"
    late_text, late_tok = pieces[0]
    # Piece 1 (k+1) is stored; now the page's save of piece 0 (k) arrives, with its token.
    assert st.get(session.draft_id, session.owner).text == pieces[1][0]
    answered_tok, browser = edit(h, session, late_text, late_tok)
    row = st.get(session.draft_id, session.owner)
    assert row.text == pieces[1][0]  # dropped, never written
    assert answered_tok == SKIP  # the page's token does not move for a text it no longer matches
    assert browser["draft"]["text"] == pieces[1][0] and browser["draft"]["revision"] == row.revision
    # The echo of piece 1, in time: nothing to write, the token moves to the row's revision.
    assert edit(h, session, pieces[1][0], late_tok)[0] == persistence.token(row)
    shown = [editor for editor, *_ in gen if isinstance(editor, str)]  # the rest of the stream
    final = st.get(session.draft_id, session.owner).text
    assert final == (shown or [pieces[1][0]])[-1]
    for before, after in zip(st.texts, st.texts[1:]):
        assert after.startswith(before), f"the row went back: {before!r} -> {after!r}"


def test_typing_into_a_streaming_draft_stops_generate_and_keeps_the_typing(tmp_path, tiny_engine):
    studio = studio_with(tmp_path, tiny_engine)
    h, session, tok = opened(studio)
    gen = h.generate(_request("page"), "It rained", "", session, *VALS[:6], 40, 3, 0, revision=tok)
    for editor, _status, _session, piece_tok in gen:
        if isinstance(editor, str):
            break
    typed = editor + " (mine)"
    assert edit(h, session, typed, piece_tok)[0] != piece_tok  # accepted: it was based on the row
    rest = list(gen)
    assert rest and rest[-1][0] == typed and "your text is kept" in rest[-1][1]
    assert studio.store.get(session.draft_id, session.owner).text == typed


def test_an_edit_that_cannot_be_merged_is_refused_in_one_line(tmp_path, tiny_engine, recwarn):
    studio = studio_with(tmp_path, tiny_engine)
    h, session, tok = opened(studio)
    tok, _ = edit(h, session, "Rain on the roof", tok)
    other = Session()  # another tab of the same writer, on the same draft
    persistence.open_draft(studio, other, session.draft_id)
    persistence.write(studio, other, "Snow on the roof", base=persistence.based_on(other, tok))
    out = h.edited("Rain on the roof, all night", session, *VALS, revision=tok)
    assert out[-2] == SKIP and out[-1] == SKIP  # nothing written, neither the token nor the browser's copy moved
    said = [str(w.message) for w in recwarn if "not saved" in str(w.message)]
    assert len(said) == 1 and "\n" not in said[0] and said[0].startswith("Could not save: This draft changed since")
    assert studio.store.get(session.draft_id, session.owner).text == "Snow on the roof"
    with pytest.raises(DraftConflict, match="changed since"):
        persistence.write(studio, session, "Rain on the roof, all night", base=persistence.based_on(session, tok))


def test_an_insertion_based_on_an_old_text_is_refused_and_undo_kept(tmp_path, tiny_engine):
    studio = studio_with(tmp_path, tiny_engine)
    h, session, tok = opened(studio)
    tok, _ = edit(h, session, "A", tok)
    session.candidates = [{"text": " cat", "display": "cat", "prob": 1.0}]
    text, session, status = h.pick(0, "A", session, revision=tok)
    assert text == "A cat" and studio.store.get(session.draft_id, session.owner).text == "A cat"
    persistence.write(studio, session, "B dog")  # the row moves on elsewhere (a script)
    undone, session, status = h.undo("A cat", session, revision=tok)
    assert status.startswith("⚠") and "changed since" in status
    assert studio.store.get(session.draft_id, session.owner).text == "B dog" and len(session.undo) == 1


def test_a_token_that_is_not_the_pages_is_refused_in_one_line():
    with pytest.raises(ValueError, match="revision is not one this studio writes"):
        persistence.based_on(Session(draft_id="abc"), "x" * 100_000)
    assert persistence.based_on(Session(draft_id="abc"), "abc:7") == 7
    assert persistence.based_on(Session(draft_id="abc"), "zzz:7") == 0  # another draft's: based on nothing here
    assert persistence.based_on(Session(draft_id="abc"), "") is None


# ----------------------------------------------------------------- restore, by revision


def test_restore_chooses_by_revision_and_ties_go_to_the_server(tmp_path, tiny_engine):
    studio = studio_with(tmp_path, tiny_engine)
    h, session, tok = opened(studio)
    tok, browser = edit(h, session, "server text", tok)
    row = studio.store.get(session.draft_id, session.owner)
    copy = lambda **kw: {**browser, "draft": {**browser["draft"], **kw}}  # noqa: E731
    # Same revision, newer clock: the server's copy stands.
    assert persistence.restore(studio, Session(), copy(text="browser text", updated=row.updated + 999)).text == \
        "server text"
    # A higher revision: the browser's wins and becomes the row, at its revision.
    won = persistence.restore(studio, Session(), copy(text="browser text", revision=row.revision + 1))
    assert won.text == "browser text" and studio.store.get(row.id, "local").revision == row.revision + 1
    # A copy from before revisions (none) never overrides.
    old = copy(text="ancient")
    del old["draft"]["revision"]
    assert persistence.restore(studio, Session(), old).text == "browser text"


# ----------------------------------------------------------------- caps on drafts


def test_drafts_per_writer_are_capped_on_every_path_that_adds_one(tmp_path, tiny_engine, monkeypatch):
    monkeypatch.setenv("PEREC_MAX_DRAFTS", "2")
    studio = studio_with(tmp_path, tiny_engine, space=True)
    session = Session()
    persistence.restore(studio, session, None)
    persistence.new_draft(studio, session)
    with pytest.raises(LimitError, match=r"drafts per writer too large: 3 drafts \(the cap is 2; "
                                         r"setting PEREC_MAX_DRAFTS\)"):
        persistence.new_draft(studio, session)
    path = tmp_path / "one.json"
    path.write_text(export_text(studio.store.latest(session.owner), "json"))
    with pytest.raises(LimitError, match="PEREC_MAX_DRAFTS"):
        persistence.import_file(studio, session, str(path))
    notes: list[str] = []
    copy = {"owner": session.owner, "draft": {**studio.store.latest(session.owner).to_dict(), "id": "fresh1"}}
    persistence.restore(studio, Session(), copy, notes)
    assert studio.store.count(session.owner) == 2 and "PEREC_MAX_DRAFTS" in notes[0]
    # The page shows it in its status line.
    h = Handlers(studio)
    assert "PEREC_MAX_DRAFTS" in h.restore(copy, Session())[-1]


def test_the_text_cap_holds_on_every_save_path(tmp_path, tiny_engine, monkeypatch):
    monkeypatch.setenv("PEREC_MAX_CHARS", "40")
    studio = studio_with(tmp_path, tiny_engine, space=True)
    assert studio.config.max_chars == 40
    h, session, tok = opened(studio)
    long = "word " * 20
    out = h.edited(long, session, *VALS, revision=tok)  # studio_check: not stored
    assert "setting PEREC_MAX_CHARS" in out[1]
    assert studio.store.get(session.draft_id, session.owner).text == ""
    with pytest.raises(LimitError, match=r"text too large: 100 characters \(the cap is 40; setting PEREC_MAX_CHARS\)"):
        persistence.write(studio, session, long)
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"format": "perec-draft", "version": 1, "text": long}))
    with pytest.raises(LimitError, match="PEREC_MAX_CHARS"):
        persistence.import_file(studio, session, str(path))
    notes: list[str] = []
    row = studio.store.get(session.draft_id, session.owner)
    copy = {"owner": session.owner, "draft": {**row.to_dict(), "text": long, "revision": row.revision + 5}}
    assert persistence.restore(studio, Session(), copy, notes).text == ""
    assert "PEREC_MAX_CHARS" in notes[0]


def test_import_is_capped_at_the_spaces_upload_size_before_it_is_read(tmp_path, tiny_engine, monkeypatch):
    studio = studio_with(tmp_path, tiny_engine, space=True)
    session = Session()
    persistence.restore(studio, session, None)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 * 1024 * 1024 + 1))  # one byte past gradio's "2mb"
    with pytest.raises(LimitError, match=r"draft file too large: 2097153 bytes \(the cap is 2097152; "
                                         r"setting PEREC_MAX_IMPORT_BYTES\)"):
        persistence.import_file(studio, session, str(big))
    monkeypatch.setenv("PEREC_MAX_IMPORT_BYTES", "10")
    with pytest.raises(LimitError, match="the cap is 10"):
        studio.store.import_json(b'{"format": "perec-draft"}', session.owner)
    assert studio.store.count(session.owner) == 1


def test_export_folders_are_bounded_and_the_last_export_is_there(tmp_path, tiny_engine):
    folders = persistence.ExportFolders(keep=2)
    made = [folders.new() for _ in range(3)]
    assert not made[0].exists() and made[1].is_dir() and made[2].is_dir()
    studio = studio_with(tmp_path, tiny_engine)
    h, session, tok = opened(studio)
    file, status = h.export("txt", "Words to keep", session, *VALS, revision=tok)
    assert status.startswith("Exported") and open(file.value["path"]).read() == "Words to keep"


def _request(session_hash: str):
    """What gradio passes a handler as gr.Request: here only its session hash is read."""
    import gradio as gr

    return gr.Request(session_hash=session_hash)
