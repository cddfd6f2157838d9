"""Per-session state: which draft a writer has open, their rules, and the undo history of
generated insertions; plus the running generations, so Stop can reach the decoder.

One ``Session`` lives in each browser tab's ``gr.State`` (gradio keeps it per session
hash), so two writers never share rules, settings or history.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from studio.decode.generation import Generation


@dataclass
class Edit:
    """One generated insertion: ``text`` inserted at ``pos``."""

    pos: int
    text: str


@dataclass
class Session:
    owner: str = ""  # whose drafts (see persistence.owner_for)
    draft_id: str = ""
    title: str = ""
    active: list[str] = field(default_factory=list)  # spec strings, ANDed
    form: str = ""
    undo: list[Edit] = field(default_factory=list)
    redo: list[Edit] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)  # the next-word list on screen
    candidates_for: str | None = None  # the draft text they were computed for
    last_stop: str = ""  # why the last generation stopped (max_tokens, cancelled, ...)
    steering: Any = None  # the Steering tab as of the last Generate (steering.SteeringIn), None: off
    steering_error: str = ""  # why that tab's values could not be read (shown by Generate)
    variants: list[str] = field(default_factory=list)  # the continuations on screen
    variants_for: str | None = None  # the draft they continue
    variants_base: str = ""  # the text they follow in the draft (the draft, maybe a line break)

    # ------------------------------------------------------------- undo / redo

    def inserted(self, pos: int, text: str) -> None:
        if text:
            self.undo.append(Edit(pos, text))
            self.redo.clear()

    def undo_last(self, draft: str) -> tuple[str, str]:
        """(new draft, message).  Removes the last insertion where it still stands, even
        if the writer typed elsewhere since; refuses if it was edited."""
        if not self.undo:
            return draft, "Nothing to undo."
        e = self.undo[-1]
        pos = _find(draft, e)
        if pos is None:
            return draft, "The last generated text was edited since, so it cannot be undone."
        self.undo.pop()
        self.redo.append(Edit(pos, e.text))
        return draft[:pos] + draft[pos + len(e.text):], f"Undid {_words(e.text)}."

    def redo_last(self, draft: str) -> tuple[str, str]:
        if not self.redo:
            return draft, "Nothing to redo."
        e = self.redo.pop()
        pos = min(e.pos, len(draft))
        self.undo.append(Edit(pos, e.text))
        return draft[:pos] + e.text + draft[pos:], f"Redid {_words(e.text)}."

    def forget_history(self) -> None:
        self.undo.clear()
        self.redo.clear()


def _find(draft: str, e: Edit) -> int | None:
    if draft[e.pos:e.pos + len(e.text)] == e.text:
        return e.pos
    # The writer typed before it: the insertion moved; accept it if it is unambiguous.
    if draft.count(e.text) == 1:
        return draft.index(e.text)
    return None


def _words(text: str) -> str:
    n = len(text.split())
    return f"{n} word{'s' if n != 1 else ''}" if n else "the insertion"


# ----------------------------------------------------------------- running generations


class Running:
    """Generations in flight, by gradio session hash.  Stop cancels the session's own
    generations only: ``Generation.cancel()`` sets the event the decode loop checks
    before every step, so decoding ends within one step, not only the UI event."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_session: dict[str, set[Generation]] = {}
        self.cancelled: dict[str, int] = {}  # session -> generations stopped (for tests/status)

    def add(self, session: str, gen: Generation) -> None:
        with self._lock:
            self._by_session.setdefault(session, set()).add(gen)

    def discard(self, session: str, gen: Generation) -> None:
        with self._lock:
            gens = self._by_session.get(session)
            if gens:
                gens.discard(gen)
                if not gens:
                    del self._by_session[session]

    def stop(self, session: str) -> int:
        with self._lock:
            gens = list(self._by_session.get(session, ()))
        for g in gens:
            g.cancel()
        if gens:
            with self._lock:
                self.cancelled[session] = self.cancelled.get(session, 0) + len(gens)
        return len(gens)

    def count(self, session: str | None = None) -> int:
        with self._lock:
            if session is None:
                return sum(len(g) for g in self._by_session.values())
            return len(self._by_session.get(session, ()))
