"""The engines a studio keeps besides the default one, least recently used first.

Settings → Model loads another model; each one kept costs its weights (and its vocabulary
index), so at most ``MODELS_KEPT`` models stay loaded, the default one included: loading
one more unloads the one used longest ago that nothing uses now.  An engine is in use
while a call holds it (``using``, ``lease``) or while its scheduler has rows; one in use
is never unloaded, and when every kept one is in use a new model is refused in one line,
before anything is loaded.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Collection, Iterator

from constraints.limits import MODELS_KEPT, LimitError
from models.loading import ModelLoadError, check_allowed, load_model, unload
from studio.decode.engine import Engine


class ModelGone(ModelLoadError):
    """The model was unloaded to make room between preparing a generation and running it."""


class EngineShelf:
    def __init__(self, allowed: Collection[str] | None = None, allow_local: bool = True, space: bool = False):
        self.allowed = allowed  # None: any model (a writer's own machine)
        self.allow_local = allow_local
        self.space = space
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Engine] = OrderedDict()  # least recently used first
        self._loading: dict[str, int] = {}  # name -> calls loading it now (one place kept for it)
        self._leases: dict[int, int] = {}  # id(engine) -> calls using it now
        self._gone: weakref.WeakSet[Engine] = weakref.WeakSet()  # unloaded while something held it
        self.evictions = 0  # models unloaded to make room so far

    @property
    def room(self) -> int:
        """Models this shelf may hold: the cap less the default model's place."""
        return MODELS_KEPT.value(self.space) - 1

    def names(self) -> list[str]:
        with self._lock:
            return list(self._kept)

    # ------------------------------------------------------------------ getting one

    def get(self, name: str) -> Engine:
        """The engine for ``name``, loading it (and unloading an idle one) if need be."""
        eng = self.acquire(name)
        self.release(eng)
        return eng

    @contextmanager
    def using(self, name: str) -> Iterator[Engine]:
        """The engine for ``name``, held (never unloaded) for the block."""
        eng = self.acquire(name)
        try:
            yield eng
        finally:
            self.release(eng)

    def acquire(self, name: str) -> Engine:
        """The engine for ``name``, held until ``release``: loaded if need be, after
        unloading the least recently used idle one when the shelf is full."""
        with self._lock:
            eng = self._kept.get(name)
            if eng is not None:
                self._kept.move_to_end(name)
                self._hold(eng)
                return eng
        return self._load(name)  # comes back held

    def release(self, eng: Engine) -> None:
        with self._lock:
            n = self._leases.get(id(eng), 0) - 1
            if n > 0:
                self._leases[id(eng)] = n
            else:
                self._leases.pop(id(eng), None)

    @contextmanager
    def lease(self, eng: Engine) -> Iterator[None]:
        """Hold ``eng`` for the block (a stream decoding on it); an engine this shelf does
        not keep (the default one) needs no lease, unless it was unloaded meanwhile."""
        with self._lock:
            if eng in self._gone:
                raise ModelGone(f"the model '{eng.name}' was unloaded to make room for another "
                                "since this generation was prepared; run it again")
            kept = self._kept.get(eng.name) is eng
            if kept:
                self._hold(eng)
        try:
            yield
        finally:
            if kept:
                self.release(eng)

    # ------------------------------------------------------------------ loading, unloading

    def _load(self, name: str) -> Engine:
        check_allowed(name, self.allowed)  # before anything is unloaded for it
        with self._lock:
            if name not in self._loading:
                self._make_room()
            self._loading[name] = self._loading.get(name, 0) + 1
        try:
            # Refused before any download when not allowed; a per-model lock inside, so a
            # second caller of the same name waits for this load instead of repeating it.
            lm = load_model(name, allow_local=self.allow_local, allowed=self.allowed)
            fresh = Engine(lm)
            with self._lock:
                eng = self._kept.get(name)
                if eng is None or eng.lm is not lm:
                    eng = self._kept[name] = fresh
                self._kept.move_to_end(name)
                self._hold(eng)
                return eng
        finally:
            with self._lock:
                self._loading[name] -= 1
                if not self._loading[name]:
                    del self._loading[name]

    def _make_room(self) -> None:
        """(Under the lock.) Unload idle engines, least recently used first, until one
        more fits; refuse if every place is taken by one in use."""
        while len(self._kept) + len(self._loading) + 1 > self.room:
            idle = next((n for n, e in self._kept.items() if not self._busy(e)), None)
            if idle is None:
                why = ("every kept model is in use now; try again when a generation ends" if self.room > 0
                       else "only the default model is kept here")
                raise LimitError(f"{MODELS_KEPT.message(len(self._kept) + len(self._loading) + 2, self.space)}: {why}")
            self._unload(idle)

    def _unload(self, name: str) -> None:
        eng = self._kept.pop(name)
        self.evictions += 1
        if eng._scheduler is not None:
            eng._scheduler.close()
        unload(eng.lm)
        self._gone.add(eng)

    def _busy(self, eng: Engine) -> bool:
        sched = eng._scheduler
        return bool(self._leases.get(id(eng))) or (sched is not None and (sched.active or sched.waiting))

    def _hold(self, eng: Engine) -> None:
        self._leases[id(eng)] = self._leases.get(id(eng), 0) + 1
