"""Writers' drafts, persisted: nothing typed is ever lost.

Drafts live in one SQLite file in the user data dir (``PEREC_DATA`` overrides it).
Each draft belongs to an owner: ``local`` for the writer on their own machine, a random
per-browser id on a shared server (Space mode), so two writers never see each other's
drafts.  A draft carries what made it: the text, the active constraints (spec strings),
the poetic form, the mode and the sampling settings.

Export writes .txt / .md / .json atomically (temp file + rename); import reads that .json
back, validating everything before anything is stored, so a bad file changes nothing.
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

FORMAT = "perec-draft"
FORMAT_VERSION = 1
LOCAL_OWNER = "local"
MAX_IMPORT_BYTES = 5_000_000
MAX_TITLE = 200  # characters: a title is a name, not a place to paste text


class DraftError(ValueError):
    """A draft operation that cannot be done; the message says why."""


class DraftImportError(DraftError):
    """An import file that is not a Perec draft (nothing was stored)."""


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


class DraftStore:
    """Drafts in SQLite.  Every method opens its own connection, so the store is safe to
    share between the server's worker threads; each write is one transaction.

    Saves are frequent (every change, every streamed piece of a generation), so they must
    be cheap: commits use ``synchronous=NORMAL``, which in WAL mode keeps every committed
    save through a crash of the server process (kill -9: the log is in the OS's hands) and
    risks only the last ones to a crash of the machine itself; and the store holds one idle
    reader open, because the last connection to close checkpoints the log with an fsync
    (about 25 ms a save here, against 0.5 ms)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else data_dir() / "drafts.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect(write=True) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS drafts (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                "title TEXT NOT NULL, body TEXT NOT NULL, created REAL, updated REAL)"
            )
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
            row = con.execute("SELECT body FROM drafts WHERE id=? AND owner=?", (draft_id, owner)).fetchone()
        return Draft.from_dict(json.loads(row[0])) if row else None

    def list(self, owner: str) -> list[Draft]:
        """The owner's drafts, most recently changed first."""
        with self._connect() as con:
            rows = con.execute("SELECT body FROM drafts WHERE owner=? ORDER BY updated DESC",
                               (owner,)).fetchall()
        return [Draft.from_dict(json.loads(r[0])) for r in rows]

    def latest(self, owner: str) -> Draft | None:
        drafts = self.list(owner)
        return drafts[0] if drafts else None

    # ------------------------------------------------------------- writing

    def create(self, owner: str, title: str = "", text: str = "", **fields) -> Draft:
        now = time.time()
        d = Draft(id=new_id(), owner=owner, title=title.strip() or self._next_title(owner),
                  text=text, created=now, updated=now, **fields)
        return self.save(d, touch=False)

    def save(self, draft: Draft, touch: bool = True) -> Draft:
        """Insert or replace ``draft`` (``touch`` stamps it as changed now)."""
        if touch:
            draft.updated = time.time()
        if not draft.created:
            draft.created = draft.updated or time.time()
        body = json.dumps(draft.to_dict(), ensure_ascii=False)
        with self._lock, self._connect(write=True) as con:
            con.execute(
                "INSERT INTO drafts (id, owner, title, body, created, updated) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET title=excluded.title, body=excluded.body, "
                "updated=excluded.updated WHERE drafts.owner=excluded.owner",
                (draft.id, draft.owner, draft.title, body, draft.created, draft.updated),
            )
        return draft

    def rename(self, draft_id: str, owner: str, title: str) -> Draft:
        title = check_title(title)
        d = self._must_get(draft_id, owner)
        d.title = title
        return self.save(d)

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
        titles = {d.title for d in self.list(owner)}
        n = 1
        while f"Draft {n}" in titles:
            n += 1
        return f"Draft {n}"

    # ------------------------------------------------------------- import

    def import_json(self, data: str | bytes, owner: str) -> Draft:
        """Store a draft read from an exported .json as a new draft of ``owner``."""
        d = parse_export(data)
        d.id, d.owner = new_id(), owner
        d.created = d.updated = time.time()
        return self.save(d, touch=False)


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
        d.pop("owner")  # who wrote it on this server is not part of the work
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


def parse_export(data: str | bytes) -> Draft:
    """Validate an exported .json and return its draft.  Raises DraftImportError naming
    the first problem; constraints and settings are checked the way generation would."""
    if isinstance(data, bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise DraftImportError("the file is too large to be a Perec draft")
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


__all__ = ["Draft", "DraftStore", "DraftError", "DraftImportError", "export_text", "export_file",
           "parse_export", "atomic_write", "data_dir", "LOCAL_OWNER"]
