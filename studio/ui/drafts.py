"""Writers' drafts, persisted: nothing typed is ever lost.

Drafts live in one SQLite file in the user data dir (``PEREC_DATA`` overrides it).
Each draft belongs to an owner: ``local`` for the writer on their own machine, a random
per-browser id on a shared server (Space mode), so two writers never see each other's
drafts.  A draft carries what made it: the text, the active constraints (spec strings),
the poetic form, the mode and the sampling settings.

Export writes .txt / .md / .json atomically (temp file + rename); import reads that .json
back, validating everything before anything is stored, so a bad file changes nothing.

Drafts never go backwards.  Every row carries a revision that grows by one on every
accepted write, and every write is compare-and-set on it: a save says which revision the
page's text is based on, and the store decides in one transaction (``text_decision``)
whether the text is written, is already there, is an older state of the row (a late echo
of a streamed piece: dropped, never written), or cannot be merged (refused, nothing
written, and the caller learns the current draft).  The row also keeps the revisions at
which its *text* and its *settings* last changed, so a settings or rules save in between
never makes the page's text look stale, and a late text save never reverts settings saved
after the revision it is based on.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from constraints.base import shown
from constraints.limits import DRAFTS_PER_OWNER, IMPORT_BYTES, TEXT_CHARS

FORMAT = "perec-draft"
FORMAT_VERSION = 1
LOCAL_OWNER = "local"
MAX_TITLE = 200  # characters: a title is a name, not a place to paste text


class DraftError(ValueError):
    """A draft operation that cannot be done; the message says why."""


class DraftImportError(DraftError):
    """An import file that is not a Perec draft (nothing was stored)."""


class DraftConflict(DraftError):
    """A text save that cannot be merged with the row (nothing was written); ``current``
    is the draft as stored."""

    def __init__(self, msg: str, current: "Draft"):
        super().__init__(msg)
        self.current = current


# What a compare-and-set save does with the text it was given (text_decision).
WRITE = "write"  # the text becomes the row's
SAME = "same"  # the row already holds exactly this text
OLDER = "older"  # an older state of the row's text: dropped, never written


def text_decision(stored: str, text_revision: int, text: str, base: int | None) -> str:
    """What a save of ``text``, based on revision ``base``, does to a row whose text is
    ``stored`` and last changed at ``text_revision``.  The rule never lets the row go
    backwards and never drops typed text silently:

    - the same text: nothing to write;
    - no base (a script, which calls one thing after another), or a base at or after the
      text's last change (the writer edited exactly what is stored): written;
    - the row's text starts with it: an older state of the row (the editor's echo of
      streamed piece k arriving after piece k+1 was stored): dropped, never written;
    - it starts with the row's text: it holds all of the row and more (typing at the end
      while the text changed under it): written, nothing of the row is lost;
    - anything else is a real edit of a text that changed since: DraftConflict.
    """
    if text == stored:
        return SAME
    if base is None or base >= text_revision:
        return WRITE
    if stored.startswith(text):
        return OLDER
    if text.startswith(stored):
        return WRITE
    return "conflict"


def data_dir() -> Path:
    env = os.environ.get("PEREC_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("perec"))


@dataclass
class Draft:
    id: str
    owner: str = LOCAL_OWNER
    title: str = "Untitled"
    text: str = ""
    constraints: list[str] = field(default_factory=list)  # spec strings, ANDed
    form: str = ""  # a form spec (constraints.forms.parse_form), "" for none
    mode: str = "continue"
    model: str = ""  # "" for the embedded default
    settings: dict = field(default_factory=dict)  # studio.decode.settings.Settings fields
    created: float = 0.0
    updated: float = 0.0
    revision: int = 0  # accepted writes so far (the store's column; 0: never stored)

    @property
    def spec(self) -> str:
        return " & ".join(f"({c})" if "|" in c else c for c in self.constraints)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Draft":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def new_id() -> str:
    return uuid.uuid4().hex[:12]


ALL_FIELDS = ("title", "text", "constraints", "form", "mode", "model", "settings")
TEXT_FIELDS = ("title", "text", "constraints", "form")  # what the editor's saves change
SETTINGS_FIELDS = ("mode", "model", "settings")  # what the settings panel's saves change


class DraftStore:
    """Drafts in SQLite.  Every method opens its own connection, so the store is safe to
    share between the server's worker threads; each write is one transaction, and every
    write is compare-and-set on the row's revision (see ``save``).

    Saves are frequent (every change, every streamed piece of a generation), so they must
    be cheap: commits use ``synchronous=NORMAL``, which in WAL mode keeps every committed
    save through a crash of the server process (kill -9: the log is in the OS's hands) and
    risks only the last ones to a crash of the machine itself; and the store holds one idle
    reader open, because the last connection to close checkpoints the log with an fsync
    (about 25 ms a save here, against 0.5 ms).

    ``space``: the caps of a shared Space (limits.TEXT_CHARS, DRAFTS_PER_OWNER,
    IMPORT_BYTES) instead of a writer's own machine's."""

    def __init__(self, path: str | Path | None = None, space: bool = False):
        self.path = Path(path) if path else data_dir() / "drafts.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.space = space
        self._lock = threading.Lock()
        with self._connect(write=True) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS drafts (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                "title TEXT NOT NULL, body TEXT NOT NULL, created REAL, updated REAL, "
                "revision INTEGER NOT NULL DEFAULT 0, text_revision INTEGER NOT NULL DEFAULT 0, "
                "settings_revision INTEGER NOT NULL DEFAULT 0)"
            )
            # A database from before revisions: its rows start at revision 0 (a browser
            # copy without a revision then ties, and the server's copy stands).
            have = {r[1] for r in con.execute("PRAGMA table_info(drafts)")}
            for col in ("revision", "text_revision", "settings_revision"):
                if col not in have:
                    con.execute(f"ALTER TABLE drafts ADD COLUMN {col} INTEGER NOT NULL DEFAULT 0")
            con.execute("CREATE INDEX IF NOT EXISTS drafts_owner ON drafts(owner, updated)")
        self._idle = sqlite3.connect(self.path, check_same_thread=False)
        self._idle.execute("SELECT 1 FROM drafts LIMIT 1").fetchall()  # a connection counts once it has read

    def _connect(self, write: bool = False) -> "_Tx":
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        con.execute("PRAGMA synchronous=NORMAL")
        return _Tx(con, write)

    # ------------------------------------------------------------- reading

    def get(self, draft_id: str, owner: str) -> Draft | None:
        with self._connect() as con:
            row = con.execute("SELECT body, revision FROM drafts WHERE id=? AND owner=?",
                              (draft_id, owner)).fetchone()
        return _draft(row) if row else None

    def list(self, owner: str) -> list[Draft]:
        """The owner's drafts, most recently changed first."""
        with self._connect() as con:
            rows = con.execute("SELECT body, revision FROM drafts WHERE owner=? ORDER BY updated DESC",
                               (owner,)).fetchall()
        return [_draft(r) for r in rows]

    def latest(self, owner: str) -> Draft | None:
        drafts = self.list(owner)
        return drafts[0] if drafts else None

    def count(self, owner: str) -> int:
        with self._connect() as con:
            return con.execute("SELECT COUNT(*) FROM drafts WHERE owner=?", (owner,)).fetchone()[0]

    # ------------------------------------------------------------- writing

    def create(self, owner: str, title: str = "", text: str = "", **fields) -> Draft:
        # Refused before naming it: a writer at the cap who keeps clicking New costs one
        # COUNT, not a read of every draft (the insert checks again, in its transaction).
        DRAFTS_PER_OWNER.check(self.count(owner) + 1, self.space)
        now = time.time()
        d = Draft(id=new_id(), owner=owner, title=title.strip() or self._next_title(owner),
                  text=text, created=now, updated=now, **fields)
        return self._insert(d)

    def save(self, draft: Draft, base: int | None = None, fields: tuple[str, ...] = ALL_FIELDS) -> Draft:
        """Write ``draft``'s ``fields`` over the stored row (or store it, if it is new) and
        return the row as stored, with its new revision.

        Compare-and-set, in one transaction: the text is written, kept, dropped as an older
        state of the row, or refused with DraftConflict (nothing written), by
        ``text_decision`` on ``base``, the revision the caller's text is based on (None: a
        caller that says nothing, e.g. a script, based on whatever is stored).  The other
        fields are the caller's own (the session's rules, the title) and are written as
        given, but the settings (SETTINGS_FIELDS) only if none were saved after ``base``: a
        late save never reverts the settings panel's own later save.  A save that changes
        nothing writes nothing, so the page's echo of what the server just stored never
        moves the revision under a generation."""
        with self._lock, self._connect(write=True) as con:
            row = con.execute("SELECT owner, body, revision, text_revision, settings_revision FROM drafts "
                              "WHERE id=?", (draft.id,)).fetchone()
            if row is None:
                return self._insert(draft, con)
            owner, body, revision, text_revision, settings_revision = row
            if owner != draft.owner:
                raise DraftError(f"no draft '{draft.id}'")  # another writer's: never theirs to write
            stored = _draft((body, revision))
            new = Draft.from_dict(stored.to_dict())
            newer_settings = base is not None and base < settings_revision
            for name in fields:
                if name != "text" and not (name in SETTINGS_FIELDS and newer_settings):
                    setattr(new, name, getattr(draft, name))
            settings_changed = any(getattr(new, n) != getattr(stored, n) for n in SETTINGS_FIELDS)
            text_changed = False
            if "text" in fields:
                decision = text_decision(stored.text, text_revision, draft.text, base)
                if decision == "conflict":
                    raise DraftConflict("this draft changed since the page's copy of it (in another tab, "
                                        "or while Generate wrote it): your edit was not saved", stored)
                if decision == WRITE:
                    TEXT_CHARS.check(len(draft.text), self.space)
                    new.text, text_changed = draft.text, True
            if new.to_dict() == stored.to_dict():
                return stored
            new.revision, new.updated = revision + 1, time.time()
            cur = con.execute(
                "UPDATE drafts SET title=?, body=?, updated=?, revision=?, text_revision=?, settings_revision=? "
                "WHERE id=? AND owner=? AND revision=?",
                (new.title, _body(new), new.updated, new.revision, new.revision if text_changed else text_revision,
                 new.revision if settings_changed else settings_revision, new.id, owner, revision))
            if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; a CAS never writes blind
                raise DraftError("the draft changed while it was being saved; nothing was written")
            return new

    def put_newer(self, draft: Draft) -> Draft:
        """A copy of ``draft`` kept elsewhere (the browser's) becomes the row if it is newer
        by revision: a row that is missing, or at a lower revision, is replaced by it, at
        its revision; otherwise the row stands (ties go to the server).  Returns the row."""
        with self._lock, self._connect(write=True) as con:
            row = con.execute("SELECT owner, body, revision FROM drafts WHERE id=?", (draft.id,)).fetchone()
            if row is None:
                draft.revision = max(1, draft.revision)
                return self._insert(draft, con)
            owner, body, revision = row
            if owner != draft.owner:
                raise DraftError(f"no draft '{draft.id}'")
            if draft.revision <= revision:
                return _draft((body, revision))
            TEXT_CHARS.check(len(draft.text), self.space)
            con.execute("UPDATE drafts SET title=?, body=?, updated=?, revision=?, text_revision=?, "
                        "settings_revision=? WHERE id=? AND owner=? AND revision=?",
                        (draft.title, _body(draft), draft.updated, draft.revision, draft.revision, draft.revision,
                         draft.id, owner, revision))
            return draft

    def _insert(self, draft: Draft, con: sqlite3.Connection | None = None) -> Draft:
        """Store a new row (revision 1, or the copy's own), within the owner's cap on drafts."""
        if con is None:
            with self._lock, self._connect(write=True) as con:
                return self._insert(draft, con)
        TEXT_CHARS.check(len(draft.text), self.space)
        n = con.execute("SELECT COUNT(*) FROM drafts WHERE owner=?", (draft.owner,)).fetchone()[0]
        DRAFTS_PER_OWNER.check(n + 1, self.space)
        draft.revision = max(1, draft.revision)
        if not draft.created:
            draft.created = draft.updated = time.time()
        con.execute(
            "INSERT INTO drafts (id, owner, title, body, created, updated, revision, text_revision, "
            "settings_revision) VALUES (?,?,?,?,?,?,?,?,?)",
            (draft.id, draft.owner, draft.title, _body(draft), draft.created, draft.updated,
             draft.revision, draft.revision, draft.revision))
        return draft

    def rename(self, draft_id: str, owner: str, title: str) -> Draft:
        title = check_title(title)
        d = self._must_get(draft_id, owner)
        d.title = title
        return self.save(d, fields=("title",))

    def delete(self, draft_id: str, owner: str) -> None:
        self._must_get(draft_id, owner)
        with self._lock, self._connect(write=True) as con:
            con.execute("DELETE FROM drafts WHERE id=? AND owner=?", (draft_id, owner))

    def _must_get(self, draft_id: str, owner: str) -> Draft:
        d = self.get(draft_id, owner)
        if d is None:
            raise DraftError(f"no draft '{draft_id}'")
        return d

    def _next_title(self, owner: str) -> str:
        with self._connect() as con:  # the titles alone: no draft's body is read
            titles = {t for (t,) in con.execute("SELECT title FROM drafts WHERE owner=?", (owner,))}
        n = 1
        while f"Draft {n}" in titles:
            n += 1
        return f"Draft {n}"

    # ------------------------------------------------------------- import

    def import_json(self, data: str | bytes, owner: str) -> Draft:
        """Store a draft read from an exported .json as a new draft of ``owner``."""
        d = parse_export(data, self.space)
        d.id, d.owner, d.revision = new_id(), owner, 0
        d.created = d.updated = time.time()
        return self._insert(d)


def _body(d: Draft) -> str:
    """The row's JSON body: the draft without its revision (the column holds that)."""
    obj = d.to_dict()
    obj.pop("revision")
    return json.dumps(obj, ensure_ascii=False)


def _draft(row) -> Draft:
    body, revision = row
    d = Draft.from_dict(json.loads(body))
    d.revision = revision
    return d


class _Tx:
    """A connection used as ``with``: one transaction (COMMIT, or ROLLBACK on error), then
    close.  Writers take the write lock up front, so two writers never interleave."""

    def __init__(self, con: sqlite3.Connection, write: bool):
        self.con, self.write = con, write

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE" if self.write else "BEGIN")
        return self.con

    def __exit__(self, exc_type, *_):
        try:
            self.con.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.con.close()


def check_title(title) -> str:
    if not isinstance(title, str) or not title.strip():
        raise DraftError("a draft needs a title")
    title = " ".join(title.split())  # one line: it names the draft in lists and file names
    if len(title) > MAX_TITLE:
        raise DraftError(f"a title has at most {MAX_TITLE} characters (this one has {len(title)})")
    return title


# ----------------------------------------------------------------- export / import


def export_text(draft: Draft, fmt: str) -> str:
    """The draft as .txt (the text), .md (title, text, the rules that made it) or .json."""
    if fmt == "txt":
        return draft.text
    if fmt == "md":
        lines = [f"# {draft.title}", "", draft.text.rstrip(), ""]
        rules = []
        if draft.spec:
            rules.append(f"- Constraints: `{draft.spec}`")
        if draft.form:
            rules.append(f"- Form: `{draft.form}`")
        if rules:
            lines += ["---", "", "Written with Perec under:", "", *rules, ""]
        return "\n".join(lines)
    if fmt == "json":
        d = draft.to_dict()
        for k in ("owner", "revision"):  # who wrote it on this server, and how often: not the work
            d.pop(k)
        return json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **d}, ensure_ascii=False, indent=2)
    raise DraftError(f"unknown export format '{fmt}' (use txt, md or json)")


def export_file(draft: Draft, fmt: str, folder: str | Path) -> Path:
    """Write the export into ``folder`` atomically and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in draft.title).strip() or "draft"
    target = folder / f"{safe}.{fmt}"
    atomic_write(target, export_text(draft, fmt))
    return target


def atomic_write(path: Path, text: str) -> None:
    """Write beside the target and rename over it: a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_export(data: str | bytes, space: bool = False) -> Draft:
    """Validate an exported .json and return its draft.  Raises DraftImportError naming
    the first problem (LimitError past limits.IMPORT_BYTES, before anything is read);
    constraints and settings are checked the way generation would."""
    IMPORT_BYTES.check(len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass")), space)
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DraftImportError("the file is not UTF-8 text (expected a Perec .json export)") from None
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise DraftImportError(f"the file is not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DraftImportError("the file is not a Perec draft export (no \"format\": \"perec-draft\")")
    if obj.get("version") != FORMAT_VERSION or isinstance(obj.get("version"), bool):
        raise DraftImportError(f"unsupported draft version {obj.get('version')!r} (this Perec reads {FORMAT_VERSION})")
    return checked_draft(obj, DraftImportError)


def checked_draft(obj: dict, error: type[DraftError] = DraftError, problems: list[str] | None = None) -> Draft:
    """The draft held in ``obj`` (an export, or the browser's copy), every field checked the
    way the studio will use it.  Raises ``error`` naming the first problem; given a
    ``problems`` list, keeps the text whatever else is wrong instead (a bad rule or setting
    is dropped and its problem listed), for a copy that may be the only one left."""
    from constraints.forms import parse_form
    from constraints.spec import parse_spec

    from studio.decode.settings import Settings
    from studio.ui.values import settings_record
    from studio.ui.work import MAX_SEARCH

    def bad(msg: str) -> None:
        if problems is None:
            raise error(msg)
        problems.append(msg)

    text = obj.get("text")
    if not isinstance(text, str):
        raise error("the draft has no \"text\" string")
    title, form, model = (obj.get(k) or "" for k in ("title", "form", "model"))
    if not all(isinstance(x, str) for x in (title, form, model)):
        bad("\"title\", \"form\" and \"model\" must be strings")
        title, form, model = (x if isinstance(x, str) else "" for x in (title, form, model))
    try:
        title = check_title(title or "Imported draft")
    except DraftError as e:
        bad(str(e))
        title = " ".join(title.split())[:MAX_TITLE] or "Imported draft"
    mode = obj.get("mode") or "continue"
    if mode not in ("continue", "instruct"):
        bad(f"unknown mode {shown(mode)} (continue or instruct)")
        mode = "continue"
    constraints = obj.get("constraints") or []
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        bad("\"constraints\" must be a list of spec strings")
        constraints = [c for c in constraints if isinstance(c, str)] if isinstance(constraints, list) else []
    kept = []
    for c in constraints:
        try:
            parse_spec(c)
            kept.append(c)
        except ValueError as e:  # SpecError, ImpossibleConstraint
            bad(f"constraint {shown(c)} is not valid here: {e}")
    if form:
        try:
            parse_form(form)
        except ValueError as e:
            bad(f"form {shown(form)} is not valid: {e}")
            form = ""
    settings = obj.get("settings") or {}
    try:
        settings = settings_record(settings)
        search = settings.get("search", 0)
        if not 0 <= search <= MAX_SEARCH:
            raise ValueError(f"search must be a whole number from 0 to {MAX_SEARCH} (got {search})")
        Settings.from_dict({k: v for k, v in settings.items() if k != "search"})
    except ValueError as e:
        bad(f"bad settings: {e}")
        settings = {}
    return Draft(id="", title=title, text=text, constraints=kept, form=form, mode=mode, model=model,
                 settings=settings)


__all__ = ["Draft", "DraftStore", "DraftError", "DraftImportError", "DraftConflict", "text_decision",
           "export_text", "export_file", "parse_export", "atomic_write", "data_dir", "LOCAL_OWNER"]
