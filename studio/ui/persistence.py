"""Drafts glue: which writer owns which drafts, and the two copies of every draft.

Every change is written twice: to the SQLite store on the server (``studio.ui.drafts``) and
to the browser's localStorage through ``gr.BrowserState``, so a reload, a closed tab or a
restarted Space loses nothing.  On load the copy at the higher revision wins (ties go to
the server's) and the other is brought up to date.

The page keeps a revision token beside the editor (``token``: the draft id and the
revision of the text it shows); every save of the page's text says which revision it is
based on, so the store can tell a stale echo of a streamed piece from the writer's typing
(``studio.ui.drafts.text_decision``).

Owners: on a writer's own machine every tab is the same writer (``local``); in Space mode
each browser gets a random owner id, kept in its own localStorage, so writers never see
each other's drafts.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import threading
import uuid
from collections import deque
from pathlib import Path

from constraints.limits import IMPORT_BYTES, LimitError
from studio.ui.drafts import (LOCAL_OWNER, SETTINGS_FIELDS, TEXT_FIELDS, Draft, DraftError, checked_draft,
                              export_file)

from studio.ui.session import Session
from studio.ui.work import SettingsIn, Studio

EMPTY_BROWSER = {"owner": "", "draft": None}
MAX_REVISION = 2**53  # a revision a browser's copy may claim (JSON's exact integers)
EXPORTS_KEPT = 64  # export folders kept at once: gradio copies a download into its own cache at once
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


def write(studio: Studio, session: Session, text: str | None = None, s: SettingsIn | None = None,
          base: int | None = None) -> Draft:
    """Store the open draft's ``text`` (with the session's rules and title) and/or its
    settings ``s``, and return the row as stored.  Compare-and-set on ``base``, the
    revision the page's values are based on (None: the caller does not say): a late save
    never takes the text back nor reverts settings saved after ``base``, and a settings
    save alone (no ``text``) never touches the text."""
    d = current(studio, session)
    fields: tuple[str, ...] = ()
    if text is not None:
        d.text, d.constraints, d.form = text, list(session.active), session.form
        d.title = session.title or d.title
        fields += TEXT_FIELDS
    if s is not None:
        d.mode = s.mode if s.mode in ("continue", "instruct") else d.mode
        d.model = s.model.strip() if isinstance(s.model, str) else d.model
        d.settings = s.to_dict()
        fields += SETTINGS_FIELDS
    return studio.store.save(d, base=base, fields=fields)


def save(studio: Studio, session: Session, text: str, s: SettingsIn | None = None,
         base: int | None = None) -> dict:
    """``write`` the page's text (its settings too, given ``s``); returns the browser's copy."""
    return browser_copy(session, write(studio, session, text or "", s, base))


def token(d: Draft) -> str:
    """The page's note of the text it shows: ``<draft id>:<revision>``."""
    return f"{d.id}:{d.revision}"


_TOKEN = re.compile(r"([0-9A-Za-z]{1,64}):([0-9]{1,16})")


def based_on(session: Session, tok) -> int | None:
    """The revision of the open draft a page's text is based on, from its token: None for
    no token (a script, or a page that has not heard back yet: the text is taken as based
    on what is stored); 0 for a token of another draft (the text was the page's before
    it opened this one, so it never overwrites this one's edits)."""
    if tok is None or tok == "":
        return None
    m = _TOKEN.fullmatch(tok) if isinstance(tok, str) else None
    if m is None:
        raise DraftError("the page's draft revision is not one this studio writes; reload the page")
    return int(m.group(2)) if m.group(1) == session.draft_id else 0


def browser_copy(session: Session, d: Draft) -> dict:
    return {"owner": session.owner, "draft": d.to_dict()}


def restore(studio: Studio, session: Session, browser: dict | None, notes: list[str] | None = None) -> Draft:
    """On page load: the browser's or the server's copy of the draft the browser had open,
    whichever is at the higher revision (ties go to the server's), or the writer's latest
    draft, or a new one.  A browser copy the server refuses (over a cap) leaves the
    server's copy standing; why goes to ``notes``."""
    browser = browser if isinstance(browser, dict) else {}
    owner = owner_for(studio, session, browser)
    d = None
    raw = browser.get("draft")
    if isinstance(raw, dict) and raw.get("id"):
        mine = browser_draft(raw, owner)
        if mine is not None:
            try:
                d = studio.store.put_newer(mine)
            except ValueError as e:  # LimitError (text, drafts per writer), another owner's id
                log.warning("the browser's copy of draft %s was not stored: %s", mine.id, e)
                if notes is not None:
                    notes.append(f"This browser's copy of a draft was not kept: {e}")
                d = studio.store.get(mine.id, owner)
    if d is None and not studio.config.space:
        d = studio.store.latest(owner)
    if d is None:
        try:
            d = studio.store.create(owner)
        except LimitError as e:  # a writer at the cap on drafts still gets the page: their latest
            d = studio.store.latest(owner)
            if d is None:
                raise
            if notes is not None and not notes:
                notes.append(str(e))
    adopt(session, d)
    return d


def browser_draft(raw: dict, owner: str) -> Draft | None:
    """The draft in the browser's copy, checked like an import (the copy may come from an
    older studio, or have been edited by hand); None, and the server's copy stands, if it
    cannot be used.  A copy from before revisions counts as revision 0 (the server's wins)."""
    problems: list[str] = []
    try:
        d = checked_draft(raw, problems=problems)
        draft_id, created, updated = raw.get("id"), raw.get("created"), raw.get("updated")
        revision = raw.get("revision", 0)
        if not isinstance(draft_id, str) or not 1 <= len(draft_id) <= 64 or not draft_id.isalnum():
            raise DraftError("the draft id is not one this studio writes")
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                   for t in (created, updated)):
            raise DraftError("the draft's times are not numbers")
        if isinstance(revision, bool) or not isinstance(revision, int) or not 0 <= revision <= MAX_REVISION:
            raise DraftError("the draft's revision is not a whole number")
    except DraftError as e:
        log.warning("the browser's copy of a draft was ignored: %s", e)
        return None
    for p in problems:
        log.warning("the browser's copy of draft %s: %s (dropped)", draft_id, p)
    d.id, d.owner, d.created, d.updated, d.revision = draft_id, owner, float(created), float(updated), revision
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


class ExportFolders:
    """Where exports are written: a fresh folder per export (gradio serves the file by
    path, and titles can repeat), the oldest removed once ``keep`` exist.  Removing one is
    safe: gradio copies a returned file into its own cache before the event's answer
    goes out, so the download never reads our folder after that."""

    def __init__(self, keep: int = EXPORTS_KEPT):
        self.keep = keep
        self._lock = threading.Lock()
        self._folders: deque[Path] = deque()
        self.root: Path | None = None

    def new(self) -> Path:
        with self._lock:
            if self.root is None or not self.root.is_dir():
                self.root = Path(tempfile.mkdtemp(prefix="perec-exports-"))
            folder = Path(tempfile.mkdtemp(dir=self.root))
            self._folders.append(folder)
            while len(self._folders) > self.keep:
                shutil.rmtree(self._folders.popleft(), ignore_errors=True)
            return folder


EXPORTS = ExportFolders()  # one per process: the studio's exports, bounded


def export(studio: Studio, session: Session, fmt: str) -> Path:
    return export_file(current(studio, session), fmt, EXPORTS.new())


def import_file(studio: Studio, session: Session, path: str | None) -> Draft:
    if not path:
        raise DraftError("no file was uploaded")
    cap = IMPORT_BYTES.value(studio.config.space)
    with open(path, "rb") as f:
        data = f.read(cap + 1)  # never more than the cap (and one byte to see it is past it)
    IMPORT_BYTES.check(Path(path).stat().st_size if len(data) > cap else len(data), studio.config.space)
    d = studio.store.import_json(data, owner_for(studio, session))
    adopt(session, d)
    return d
