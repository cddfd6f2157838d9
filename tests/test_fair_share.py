"""One running generation per session: a second one from the same session is refused in
one line while the first runs, and a share is always given back (finished, failed,
cancelled, or a page that closes or abandons its stream).  Tiny random llama, real
tokenizer; the first generation is held open by a controller waiting on an Event."""

import threading
import time

import pytest

from constraints.limits import LimitError
from studio.ui.config import UiConfig
from studio.ui.shares import NEXT_WORDS, Shares
from studio.ui.work import SettingsIn, Studio


class Gate:
    """A controller that holds its row at its first step until ``open`` is set."""

    def __init__(self):
        self.entered, self.open = threading.Event(), threading.Event()

    def adjust(self, scores, generation):
        self.entered.set()
        assert self.open.wait(60), "the test never opened the gate"
        return scores


class Broken:
    def adjust(self, scores, generation):
        raise RuntimeError("controller broke")


def wait_until(cond, timeout=60.0):
    """Wait for something another thread does (a bound on a hang, never on speed)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def studio(tmp_path, tiny_engine):
    return Studio(UiConfig.from_env(space=True, data=tmp_path), engine=tiny_engine)


def started(studio, n=8, *controllers):
    gen, _note, _base = studio.start("The old house", [], "", SettingsIn(max_new_tokens=n, seed=1))
    gen.controllers.extend(controllers)
    return gen


def read_in_thread(stream):
    out = {}

    def read():
        try:
            out["texts"] = list(stream)
        except Exception as e:  # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=read)
    t.start()
    return t, out


def test_a_second_generation_of_a_session_is_refused_while_the_first_runs(studio):
    gate = Gate()
    first = started(studio, 8, gate)
    t, out = read_in_thread(studio.stream(first, "A"))
    try:
        assert gate.entered.wait(60)  # A's row is in the batch, held at its first step
        assert studio.shares.running("A") == 1
        with pytest.raises(LimitError) as info:
            next(studio.stream(started(studio), "A"))
        msg = str(info.value)
        assert "already running in this session" in msg and "PEREC_MAX_SESSION_GENERATIONS" in msg
        assert "\n" not in msg
        with pytest.raises(LimitError, match="PEREC_MAX_SESSION_GENERATIONS"):
            studio.variants("The old house", [], "", SettingsIn(max_new_tokens=4, seed=1), k=2, session="A")
        # Another session is not held back (variants decode in the caller's thread).
        texts, _, _ = studio.variants("The old house", [], "", SettingsIn(max_new_tokens=4, seed=1), k=2,
                                      session="B")
        assert len(texts) == 2
        # The page's own next-word list is counted apart: it never blocks Generate.
        assert studio.candidates("The old", [], "", SettingsIn(), n=3, session="A")
    finally:
        gate.open.set()
        t.join(60)
    assert "error" not in out and out["texts"][-1] == first.result.text
    assert studio.shares.running("A") == 0
    third = started(studio, 4)
    assert list(studio.stream(third, "A"))[-1] == third.result.text  # accepted again


def test_a_failed_or_refused_generation_gives_its_share_back(studio):
    with pytest.raises(RuntimeError, match="controller broke"):
        list(studio.stream(started(studio, 4, Broken()), "A"))
    assert studio.shares.running() == 0
    held = studio.shares.take("A")
    with pytest.raises(LimitError):
        next(studio.stream(started(studio), "A"))
    held.release()
    held.release()  # twice is once
    assert studio.shares.running() == 0
    gen = started(studio, 4)
    assert list(studio.stream(gen, "A"))[-1] == gen.result.text


def test_stop_and_a_closed_page_give_the_share_back(studio):
    gate = Gate()
    gen = started(studio, 40, gate)
    t, out = read_in_thread(studio.stream(gen, "A"))
    assert gate.entered.wait(60)
    assert studio.running.stop("A") == 1
    gate.open.set()
    t.join(60)
    assert gen.result.stop_reason == "cancelled" and studio.shares.running("A") == 0

    # The page goes away mid-stream: gradio closes the generator.
    gen = started(studio, 200)
    stream = studio.stream(gen, "A")
    next(stream)
    assert studio.shares.running("A") == 1
    stream.close()
    assert studio.shares.running("A") == 0 and gen.cancel_event.is_set()


def test_an_abandoned_stream_gives_the_share_back_when_its_row_ends(studio):
    # A reader that stops reading without closing the stream (a client that vanished):
    # the share comes back when the row ends, not when the generator is collected.
    gen = started(studio, 200)
    stream = studio.stream(gen, "A")
    next(stream)
    gen.cancel()  # the row ends at its next step; nobody reads or closes the stream
    assert wait_until(lambda: studio.shares.running("A") == 0)
    other = started(studio, 4)
    assert list(studio.stream(other, "A"))[-1] == other.result.text
    stream.close()


def test_rows_per_session_are_capped(studio, monkeypatch):
    monkeypatch.setenv("PEREC_MAX_SESSION_ROWS", "3")
    with pytest.raises(LimitError, match=r"rows decoding in one session too large: 4 rows .*PEREC_MAX_SESSION_ROWS"):
        studio.variants("The old house", [], "", SettingsIn(max_new_tokens=4), k=4, session="A")
    assert studio.shares.running("A") == 0
    texts, _, _ = studio.variants("The old house", [], "", SettingsIn(max_new_tokens=4, seed=2), k=3, session="A")
    assert len(texts) == 3


def test_next_words_are_one_at_a_time_per_session(studio):
    held = studio.shares.take("A", kind=NEXT_WORDS)
    with pytest.raises(LimitError, match="next words are already being found"):
        studio.candidates("The old", [], "", SettingsIn(), n=3, session="A")
    with pytest.raises(LimitError, match="next words are already being found"):
        studio.one_word("The old", [], "", SettingsIn(seed=1), session="A")
    held.release()
    assert studio.one_word("The old", [], "", SettingsIn(seed=1), session="A")
    assert studio.shares.running("A", NEXT_WORDS) == 0


def test_more_generations_per_session_when_the_setting_allows(monkeypatch):
    monkeypatch.setenv("PEREC_MAX_SESSION_GENERATIONS", "2")
    shares = Shares(space=True)
    a, b = shares.take("s"), shares.take("s")
    with pytest.raises(LimitError, match="the cap is 2"):
        shares.take("s")
    a.release()
    shares.take("s")
    b.release()
