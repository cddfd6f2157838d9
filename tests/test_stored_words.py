"""constraints/stored.py: derived word lists kept on disk, keyed by the code that derived them."""

from __future__ import annotations

import json

from constraints import stored


def test_a_list_is_derived_once_then_read(tmp_path, monkeypatch):
    monkeypatch.setenv("PEREC_CACHE", str(tmp_path))
    calls = []

    def derive():
        calls.append(1)
        return ["sea", "salt"]

    assert stored.stored_words("t", derive) == ["sea", "salt"]
    assert stored.stored_words("t", derive) == ["sea", "salt"]
    assert len(calls) == 1
    (path,) = (tmp_path / "derived").glob("t-*.json")
    assert stored._fingerprint() in path.name
    assert not list((tmp_path / "derived").glob(".words-*"))  # no half-written file left


def test_a_damaged_file_is_derived_again(tmp_path, monkeypatch):
    monkeypatch.setenv("PEREC_CACHE", str(tmp_path))
    stored.stored_words("t", lambda: ["a"])
    (path,) = (tmp_path / "derived").glob("t-*.json")
    path.write_text('{"not": "a list"')
    assert stored.stored_words("t", lambda: ["b"]) == ["b"]
    assert json.loads(path.read_text()) == ["b"]


def test_a_read_only_cache_still_answers(tmp_path, monkeypatch):
    target = tmp_path / "ro"
    target.write_text("a file where the cache folder would be")
    monkeypatch.setenv("PEREC_CACHE", str(target))
    assert stored.stored_words("t", lambda: ["c"]) == ["c"]


def test_the_writer_lexicon_read_back_is_the_derived_one(tmp_path, monkeypatch):
    from constraints import lexicon

    monkeypatch.setenv("PEREC_CACHE", str(tmp_path))
    lexicon.writer_lexicon.cache_clear()
    first = lexicon.writer_lexicon()
    lexicon.writer_lexicon.cache_clear()
    again = lexicon.writer_lexicon()
    lexicon.writer_lexicon.cache_clear()
    assert again.words == first.words and len(first) > 20000
    assert list((tmp_path / "derived").glob("writer-3-0-*.json"))
