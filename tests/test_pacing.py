"""Pacing of each session's page events (studio/ui/pacing.py): a burst passes at once, then
events wait their turn at the cap's rate, one that would wait too long is refused in one line
naming the setting, and sessions never share a bucket.  A frozen clock, no sleeps."""

from __future__ import annotations

import uuid

import pytest

from constraints.limits import SESSION_EVENTS, LimitError
from studio.ui.pacing import BURST_S, Pacer
from tests.test_access import _index, call, space_server  # noqa: F401  (space_server: the fixture)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Key:  # a session's state object: any object a weak reference can hold
    pass


def test_a_burst_passes_then_events_wait_their_turn_at_the_rate(monkeypatch):
    monkeypatch.setenv(SESSION_EVENTS.setting, "10")
    clock, key = Clock(), Key()
    pacer = Pacer(space=True, clock=clock)
    burst = round(10 * BURST_S)
    assert [pacer.delay(key) for _ in range(burst)] == [0.0] * burst
    waits = [pacer.delay(key) for _ in range(5)]
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    clock.t += 10.0  # a quiet spell refills the bucket, never past one burst
    assert [pacer.delay(key) for _ in range(burst)] == [0.0] * burst
    assert pacer.delay(key) == pytest.approx(0.1)


def test_an_event_that_would_wait_too_long_is_refused_naming_the_setting_and_takes_no_turn(monkeypatch):
    monkeypatch.setenv(SESSION_EVENTS.setting, "2")
    clock, key = Clock(), Key()
    pacer = Pacer(space=True, clock=clock, max_wait=1.0)
    waits = [pacer.delay(key) for _ in range(8)]  # 6 at once, then 0.5 s and 1 s
    assert waits[-2:] == pytest.approx([0.5, 1.0])
    with pytest.raises(LimitError) as e:
        pacer.delay(key)
    assert SESSION_EVENTS.setting in str(e.value) and "\n" not in str(e.value)
    clock.t += 0.5  # the refused event took no turn: half a second later one waits 1 s again
    assert pacer.delay(key) == pytest.approx(1.0)


def test_sessions_never_share_a_bucket(monkeypatch):
    monkeypatch.setenv(SESSION_EVENTS.setting, "1")
    pacer = Pacer(space=True, clock=Clock(), max_wait=0.0)
    a, b = Key(), Key()
    for _ in range(round(BURST_S)):
        pacer.delay(a)
    with pytest.raises(LimitError):
        pacer.delay(a)
    assert pacer.delay(b) == 0.0


def test_a_writers_own_machine_is_not_paced_by_default():
    pacer = Pacer(space=False, clock=Clock())
    key = Key()
    assert max(pacer.delay(key) for _ in range(10_000)) == 0.0


def test_the_space_paces_a_flooding_session_and_answers_the_others(space_server, monkeypatch):
    """Through the server: a session past its burst is refused in one line (a frozen clock and
    no wait allowed, so nothing sleeps); another session's event is answered meanwhile."""
    demo, url = space_server
    monkeypatch.setenv(SESSION_EVENTS.setting, "1")
    before = demo.studio.pacer
    demo.studio.pacer = Pacer(space=True, clock=Clock(), max_wait=0.0)
    try:
        new = _index(demo, "studio_new_draft")
        flood = uuid.uuid4().hex
        answers = [call(url, new, [None], flood) for _ in range(round(BURST_S) + 1)]
        assert [k for k, _ in answers[:-1]] == ["ok"] * round(BURST_S)
        kind, line = answers[-1]
        assert kind == "error" and SESSION_EVENTS.setting in line and "\n" not in line
        assert call(url, new, [None], uuid.uuid4().hex)[0] == "ok"
    finally:
        demo.studio.pacer = before
