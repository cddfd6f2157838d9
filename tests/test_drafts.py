"""Drafts: persistence in SQLite, rename/delete, export/import round trip, bad imports."""

from __future__ import annotations

import json

import pytest

from studio.ui.drafts import (Draft, DraftError, DraftImportError, DraftStore, data_dir, export_file,
                           export_text, parse_export)


@pytest.fixture
def store(tmp_path):
    return DraftStore(tmp_path / "drafts.sqlite3")


def test_data_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PEREC_DATA", str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"
    s = DraftStore()
    assert s.path == tmp_path / "x" / "drafts.sqlite3" and s.path.exists()


def test_create_save_and_reopen_from_a_new_store(store):
    d = store.create("local", text="A cat sat.", constraints=["lipogram:e"], settings={"seed": 3})
    d.text += " It was warm."
    store.save(d)
    again = DraftStore(store.path).get(d.id, "local")  # a fresh connection: it is on disk
    assert again.text == "A cat sat. It was warm."
    assert again.constraints == ["lipogram:e"] and again.settings == {"seed": 3}
    assert again.updated >= again.created


def test_list_is_per_owner_and_most_recent_first(store):
    a = store.create("alice", text="one")
    b = store.create("alice", text="two")
    store.create("bob", text="secret")
    a.text = "one, changed"
    store.save(a)
    assert [d.id for d in store.list("alice")] == [a.id, b.id]
    assert [d.text for d in store.list("bob")] == ["secret"]
    assert store.get(a.id, "bob") is None  # another owner cannot read it


def test_another_owner_cannot_overwrite(store):
    a = store.create("alice", text="mine")
    thief = Draft.from_dict({**a.to_dict(), "owner": "bob", "text": "stolen"})
    with pytest.raises(DraftError, match="no draft"):  # told, as for any id not theirs
        store.save(thief)
    assert store.get(a.id, "alice").text == "mine"


def test_titles_rename_delete(store):
    a = store.create("local")
    b = store.create("local")
    assert (a.title, b.title) == ("Draft 1", "Draft 2")
    store.rename(a.id, "local", "  Gadsby, again ")
    assert store.get(a.id, "local").title == "Gadsby, again"
    with pytest.raises(DraftError, match="title"):
        store.rename(a.id, "local", "  ")
    store.delete(b.id, "local")
    assert [d.id for d in store.list("local")] == [a.id]
    with pytest.raises(DraftError, match="no draft"):
        store.delete(b.id, "local")


def test_export_formats(store, tmp_path):
    d = store.create("local", title="No E", text="A lipogram of sorts.",
                     constraints=["lipogram:e", "syllables:1 | length:<4"], form="haiku")
    assert export_text(d, "txt") == "A lipogram of sorts."
    md = export_text(d, "md")
    assert md.startswith("# No E") and "`lipogram:e & (syllables:1 | length:<4)`" in md
    assert "`haiku`" in md
    obj = json.loads(export_text(d, "json"))
    assert obj["format"] == "perec-draft" and obj["text"] == d.text and "owner" not in obj
    path = export_file(d, "json", tmp_path / "out")
    assert path.name == "No E.json" and json.loads(path.read_text())["title"] == "No E"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(DraftError, match="unknown export format"):
        export_text(d, "docx")


def test_import_round_trip(store):
    d = store.create("alice", title="Round", text="Words of one syllable.\n",
                     constraints=["syllables:1"], mode="continue", model="embedded",
                     settings={"temperature": 0.7, "top_k": 20, "seed": 5, "max_new_tokens": 40})
    data = export_text(d, "json")
    back = store.import_json(data.encode(), "bob")
    assert back.id != d.id and back.owner == "bob"
    for f in ("title", "text", "constraints", "form", "mode", "model", "settings"):
        assert getattr(back, f) == getattr(d, f)
    assert store.get(back.id, "bob").text == d.text


@pytest.mark.parametrize("data, why", [
    (b"\xff\xfe not utf8", "UTF-8"),
    ("{not json", "not valid JSON"),
    ('{"text": "hi"}', "not a Perec draft"),
    ('{"format": "perec-draft", "version": 9, "text": "x"}', "version"),
    ('{"format": "perec-draft", "version": 1}', "text"),
    ('{"format": "perec-draft", "version": 1, "text": "x", "constraints": ["nosuch:1"]}', "nosuch"),
    ('{"format": "perec-draft", "version": 1, "text": "x", "constraints": "lipogram:e"}', "list"),
    ('{"format": "perec-draft", "version": 1, "text": "x", "settings": {"temperature": -1}}', "temperature"),
    ('{"format": "perec-draft", "version": 1, "text": "x", "settings": {"warp": 9}}', "warp"),
    ('{"format": "perec-draft", "version": 1, "text": "x", "mode": "poetry"}', "mode"),
])
def test_bad_import_is_rejected_and_nothing_is_lost(store, data, why):
    keep = store.create("alice", text="precious")
    with pytest.raises(DraftImportError, match=why):
        store.import_json(data, "alice")
    assert [d.text for d in store.list("alice")] == ["precious"]


def test_bad_form_rejected():
    pytest.importorskip("constraints.forms")
    with pytest.raises(DraftImportError, match="form"):
        parse_export('{"format": "perec-draft", "version": 1, "text": "x", "form": "villanelle-ish"}')


def test_concurrent_saves_from_threads(store):
    import threading

    d = store.create("local")

    def write(i):
        for j in range(20):
            store.save(Draft.from_dict({**d.to_dict(), "text": f"{i}-{j}"}))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(d.id, "local").text.endswith("-19")
