"""Drafts glue: which writer owns which drafts, and the two copies of every draft.

Every change is written twice: to the SQLite store on the server (``studio.ui.drafts``) and
to the browser's localStorage through ``gr.BrowserState``, so a reload, a closed tab or a
restarted Space loses nothing.  On load the newer copy wins and the other is brought up
to date.

Owners: on a writer's own machine every tab is the same writer (``local``); in Space mode
each browser gets a random owner id, kept in its own localStorage, so writers never see
each other's drafts.
"""

from __future__ import annotations

import logging
import math
import tempfile
import uuid
from pathlib import Path

from studio.ui.drafts import LOCAL_OWNER, Draft, DraftError, checked_draft, export_file

from studio.ui.session import Session
from studio.ui.work import SettingsIn, Studio

EMPTY_BROWSER = {"owner": "", "draft": None}
log = logging.getLogger("perec.studio")


def owner_for(studio: Studio, session: Session, browser: dict | None = None) -> str:
    """The session's owner, fixed on first use."""
    if not session.owner:
        if not studio.config.space:
            session.owner = LOCAL_OWNER
        else:
            remembered = (browser or {}).get("owner") or ""
            session.owner = remembered if _looks_like_owner(remembered) else uuid.uuid4().hex
    return session.owner


def _looks_like_owner(s: str) -> bool:
    return isinstance(s, str) and 16 <= len(s) <= 64 and s.isalnum() and s != LOCAL_OWNER


def current(studio: Studio, session: Session) -> Draft:
    """The session's open draft (a new one if it has none, or it was deleted elsewhere)."""
    owner = owner_for(studio, session)
    d = studio.store.get(session.draft_id, owner) if session.draft_id else None
    if d is None:
        d = studio.store.create(owner, constraints=list(session.active), form=session.form)
        adopt(session, d)
    return d


def adopt(session: Session, d: Draft) -> None:
    """Make ``d`` the session's open draft (its rules become the active ones)."""
    session.draft_id, session.title = d.id, d.title
    session.active, session.form = list(d.constraints), d.form
    session.forget_history()
    session.candidates, session.candidates_for = [], None


def save(studio: Studio, session: Session, text: str, s: SettingsIn | None = None) -> dict:
    """Store the open draft as the page shows it (its settings too, given ``s``); returns
    the browser's copy."""
    d = current(studio, session)
    d.text, d.constraints, d.form = text or "", list(session.active), session.form
    d.title = session.title or d.title
    if s is not None:
        d.mode = s.mode if s.mode in ("continue", "instruct") else d.mode
        d.model = s.model.strip() if isinstance(s.model, str) else d.model
        d.settings = s.to_dict()
    studio.store.save(d)
    return browser_copy(session, d)


def browser_copy(session: Session, d: Draft) -> dict:
    return {"owner": session.owner, "draft": d.to_dict()}


def restore(studio: Studio, session: Session, browser: dict | None) -> Draft:
    """On page load: the newer of the browser's and the server's copy of the draft the
    browser had open (or the writer's latest draft, or a new one)."""
    browser = browser if isinstance(browser, dict) else {}
    owner = owner_for(studio, session, browser)
    d = None
    raw = browser.get("draft")
    if isinstance(raw, dict) and raw.get("id"):
        mine = browser_draft(raw, owner)
        if mine is not None:
            stored = studio.store.get(mine.id, owner)
            if stored is None or mine.updated > stored.updated:
                studio.store.save(mine, touch=False)
                stored = studio.store.get(mine.id, owner)
            d = stored
    if d is None and not studio.config.space:
        d = studio.store.latest(owner)
    if d is None:
        d = studio.store.create(owner)
    adopt(session, d)
    return d


def browser_draft(raw: dict, owner: str) -> Draft | None:
    """The draft in the browser's copy, checked like an import (the copy may come from an
    older studio, or have been edited by hand); None, and the server's copy stands, if it
    cannot be used."""
    problems: list[str] = []
    try:
        d = checked_draft(raw, problems=problems)
        draft_id, created, updated = raw.get("id"), raw.get("created"), raw.get("updated")
        if not isinstance(draft_id, str) or not 1 <= len(draft_id) <= 64 or not draft_id.isalnum():
            raise DraftError("the draft id is not one this studio writes")
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                   for t in (created, updated)):
            raise DraftError("the draft's times are not numbers")
    except DraftError as e:
        log.warning("the browser's copy of a draft was ignored: %s", e)
        return None
    for p in problems:
        log.warning("the browser's copy of draft %s: %s (dropped)", draft_id, p)
    d.id, d.owner, d.created, d.updated = draft_id, owner, float(created), float(updated)
    return d


def choices(studio: Studio, session: Session) -> list[tuple[str, str]]:
    owner = owner_for(studio, session)
    return [(f"{d.title} · {_preview(d.text)}", d.id) for d in studio.store.list(owner)]


def _preview(text: str, n: int = 40) -> str:
    t = " ".join(text.split())
    return (t[:n] + "…") if len(t) > n else (t or "empty")


def open_draft(studio: Studio, session: Session, draft_id: str | None) -> Draft:
    if not draft_id or not isinstance(draft_id, str):
        raise DraftError("choose a draft to open")
    d = studio.store.get(draft_id, owner_for(studio, session))
    if d is None:
        raise DraftError("that draft no longer exists")
    adopt(session, d)
    return d


def new_draft(studio: Studio, session: Session, keep_rules: bool = True) -> Draft:
    d = studio.store.create(owner_for(studio, session),
                            constraints=list(session.active) if keep_rules else [],
                            form=session.form if keep_rules else "")
    adopt(session, d)
    return d


def rename(studio: Studio, session: Session, title: str) -> Draft:
    d = studio.store.rename(current(studio, session).id, session.owner, title)
    session.title = d.title
    return d


def delete(studio: Studio, session: Session) -> Draft:
    """Delete the open draft and open the next most recent (or a new one)."""
    studio.store.delete(current(studio, session).id, session.owner)
    d = studio.store.latest(session.owner) or studio.store.create(session.owner)
    adopt(session, d)
    return d


def export(studio: Studio, session: Session, fmt: str) -> Path:
    # A fresh folder per export: gradio serves the file by path, and titles can repeat.
    folder = Path(tempfile.mkdtemp(prefix="perec-export-"))
    return export_file(current(studio, session), fmt, folder)


def import_file(studio: Studio, session: Session, path: str | None) -> Draft:
    if not path:
        raise DraftError("no file was uploaded")
    data = Path(path).read_bytes()
    d = studio.store.import_json(data, owner_for(studio, session))
    adopt(session, d)
    return d
