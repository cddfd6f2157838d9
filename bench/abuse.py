"""Abuse test: what one visitor of a public Space can send, against a Space-mode server.

Loopback only (127.0.0.1), bounded in count and in time (every request has a timeout, every
attack a deadline); it stops by itself.  A Space-mode studio (``PEREC_SPACE=1``, the real
embedded model, its own temporary data folder) is started as a writer's Space runs it,
``python app.py``.  One ordinary writer's first streamed piece is timed unloaded, then the
attacks run one after another while that writer keeps generating (and its first piece is
timed again):

- a 1 MB spec to /check (and to the page's Apply);
- 16 concurrent /check calls with text at the text cap (and one just over it);
- a Hub id as the model (Settings → Load, and /generate's ``model``);
- a 2 MB discriminator upload, a 1 MB contrast (steer) prompt, an oversized word bank, each
  through the steering panel's event and then the page's Generate;
- 10,000 draft creations from one browser (the page's New draft);
- every page ("private") event called by ``fn_index`` with garbage: wrong types, then
  oversized values (text past every cap, a file outside the uploads, a forged browser copy);
- one client opening 32 generations at once, five times over (a new browser each time);
- the page config is read for a secret.

Every request is spoken to over Gradio's own queue protocol (``/gradio_api/queue/join``
and the session's event stream), as the page itself speaks, so private events and several
events of one session at once are reachable exactly as any HTTP client reaches them.
Each abusive request's outcome is kept: refused in one line (the line), accepted, refused
unreadably, or unanswered.  The server's peak RSS (itself and its children) is sampled
throughout; a server that grows past ``--kill-above`` is killed (the machine is shared) and
that is reported.  A server that dies is restarted, so the later attacks are still measured.

Done when: the server never dies, its peak RSS stays under 3 GB, every abusive request is
refused in one line, and the ordinary writer's first streamed piece arrives within 2x its
unloaded time (median of the loaded runs).

    python bench/abuse.py [--quick] [--counts 1.0] [--out FILE]

Writes bench/results/abuse-cpu.md.  tests/test_abuse.py runs the quick form in-process on
the tiny model and asserts the same criteria but the latency one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import PROMPTS, fmt, free_port, launch, load_engine  # noqa: E402
from constraints import limits  # noqa: E402
from tests.fuzzing import refusal_problem  # noqa: E402  (one definition of a clean refusal)
from studio.ui.callbacks import STALE_STREAM  # noqa: E402  (the page's own refusal of a stale stream)

GB = 1 << 30
RSS_BOUND = 3 * GB  # the bound on the server's peak RSS
LATENCY_BOUND = 2.0  # loaded first piece / unloaded first piece
START_S = 300  # the longest a server start may take (a cold conversion is about a minute)

# What a refusal must name to count as the defence at work: a cap's setting from the one
# table (constraints/limits.py).  Any cap of the table will do: one input may meet an outer
# cap first (a 1 MB steer text is one value no page sends before it is a steer text), and
# the report shows each line, so which cap spoke is there to read.  A refusal for another
# reason is still clean, but the report says no cap spoke.
CAP_SETTINGS = tuple(c.setting for c in limits.ALL)
MODEL_SETTINGS = ("PEREC_MODELS",)
GARBAGE_MARK = "garbage-4f1c"  # in every garbage value: an answer that shows it let the garbage in  # the Space's model allow-list


@dataclass(frozen=True)
class Counts:
    """How big each attack is (``scaled`` multiplies the counts, never the byte sizes)."""

    spec_bytes: int = 1 << 20
    checks: int = 16
    hub_ids: tuple = ("gpt2", "meta-llama/Llama-3.1-8B")
    disc_bytes: int = 2_000_000 - 100_000  # A's file: just under the Space's 2 MB upload cap
    steer_bytes: int = 1 << 20
    bank_words: int = 100_000
    drafts: int = 10_000
    generations: int = 32
    generation_rounds: int = 5  # bursts, one after another (each a new browser): the writer's runs meanwhile need a median
    oversize: int = 200_000  # characters in an oversized garbage text
    every_private: bool = True  # False: one page-only event per handler (the page wires one to many)
    writer_tokens: int = 24
    unloaded_runs: int = 5
    attack_tokens: int = 8  # budget of each of the 32 generations
    wait: float = 180  # s: one request unanswered after this long is a hang
    drafts_s: float = 300  # s: the draft creations stop here, however many were made
    kill_above: int = 4 * GB  # the harness kills a server past this (the machine is shared)

    def scaled(self, k: float) -> "Counts":
        return replace(self, checks=max(1, round(self.checks * k)), drafts=max(1, round(self.drafts * k)),
                       generations=max(2, round(self.generations * k)))

    @classmethod
    def quick(cls) -> "Counts":
        """The small form (tests/test_abuse.py): each attack just past its cap, so a missing
        defence shows without a small machine paying for the full one."""
        return cls(spec_bytes=2 * limits.SPEC_CHARS.value(True), checks=4, hub_ids=("gpt2",),
                   disc_bytes=60_000, steer_bytes=2 * limits.STEER_CHARS.value(True), bank_words=2 * limits.BANK_WORDS.value(True),
                   drafts=40, generations=6, oversize=limits.TEXT_CHARS.value(True) + 1_000, writer_tokens=6,
                   unloaded_runs=2, attack_tokens=4, wait=60, drafts_s=20, every_private=False,
                   generation_rounds=1)


# ----------------------------------------------------------------- one reply


@dataclass
class Reply:
    """What one request got back."""

    status: str  # answered | refused | unclean | no answer | not callable
    line: str = ""  # the refusal (or error) line
    data: list | None = None  # the final outputs
    seconds: float = 0.0
    first_piece: float | None = None  # s from the request to the first streamed text
    streaming: tuple[float, float] | None = None  # (first piece, end), perf_counter times

    @property
    def refused(self) -> bool:
        return self.status in ("refused", "not callable")


def judge(msgs: list, t0: float, prompt: str | None) -> Reply:
    """A reply from the event's messages: refused (an error or a warning, one clean line),
    answered, or unclean.  ``prompt``: the text a generation starts from (its pieces are
    the editor's value past it)."""
    from gradio_client.utils import apply_diff

    warnings, value, first, t_end = [], None, None, None
    for t, m in msgs:
        kind = m.get("msg")
        if kind == "log" and m.get("level") in ("warning", "error"):
            warnings.append(str(m.get("log")))
        if kind in ("process_generating", "process_completed") and m.get("success", True):
            out = (m.get("output") or {}).get("data")
            # A generator's first message holds every output whole, each later one the
            # changes to each (Gradio's diffs); the last holds them whole again.
            if kind == "process_generating" and value is not None and out is not None:
                value = [apply_diff(v, d) for v, d in zip(value, out)]
            else:
                value = out
            if prompt is not None and first is None and value and isinstance(value[0], str) \
                    and len(value[0]) > len(prompt):
                first = t
        if kind == "process_completed":
            t_end = t
            if not m.get("success", False):
                err = (m.get("output") or {}).get("error")
                msg = "" if err is None else str(err)
                problem = refusal_problem(msg)
                return Reply("unclean" if problem else "refused", problem or msg, None, t - t0)
    seconds = (t_end or time.perf_counter()) - t0
    streaming = (first, t_end) if first is not None and t_end is not None else None
    first_s = first - t0 if first is not None else None
    for w in warnings:
        problem = refusal_problem(w)
        return Reply("unclean" if problem else "refused", problem or w, value, seconds, first_s, streaming)
    shown = [v for v in value or [] if isinstance(v, str) and v.lstrip().startswith("⚠")]
    if shown:  # a handler that reports in the status line only
        line = shown[0].lstrip()[1:].strip()
        problem = refusal_problem(line)
        return Reply("unclean" if problem else "refused", problem or line, value, seconds, first_s, streaming)
    return Reply("answered", "", value, seconds, first_s, streaming)


# ----------------------------------------------------------------- a browser


class Page:
    """One browser (one Gradio session) speaking the queue protocol.  Several events may
    run at once: one reader takes the session's event stream and hands each message to its
    event."""

    def __init__(self, url: str, config: dict):
        import httpx

        self.url, self.config = url, config
        self.session_hash = uuid.uuid4().hex[:11]
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0),
                                 limits=httpx.Limits(max_connections=80, max_keepalive_connections=20))
        self.cond = threading.Condition()
        self.msgs: dict[str, list] = {}
        self.pending = 0
        self.reader: threading.Thread | None = None
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.http.close()

    # -- the protocol

    def call(self, fn_index: int, data: list, wait: float, prompt: str | None = None) -> Reply:
        t0 = time.perf_counter()
        with self.cond:
            self.pending += 1
        try:
            try:
                r = self.http.post(self.url + "gradio_api/queue/join",
                                   json={"data": data, "event_data": None, "fn_index": fn_index,
                                         "trigger_id": None, "session_hash": self.session_hash})
            except Exception as e:  # noqa: BLE001  (the server is gone, or refused the connection)
                return Reply("no answer", f"{type(e).__name__}: {str(e)[:160]}", seconds=time.perf_counter() - t0)
            if r.status_code != 200:
                detail = _detail(r)
                problem = refusal_problem(detail)
                return Reply("unclean" if problem else "not callable", problem or detail,
                             seconds=time.perf_counter() - t0)
            event_id = r.json().get("event_id")
            self._ensure_reader()
            deadline = time.monotonic() + wait
            with self.cond:
                while True:
                    got = self.msgs.get(event_id, [])
                    if any(m.get("msg") == "process_completed" for _, m in got):
                        msgs = self.msgs.pop(event_id)
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.msgs.pop(event_id, None)
                        return Reply("no answer", f"no reply within {wait:g} s", seconds=time.perf_counter() - t0)
                    self.cond.wait(min(left, 1.0))
            return judge(msgs, t0, prompt)
        finally:
            with self.cond:
                self.pending -= 1

    def _ensure_reader(self) -> None:
        with self.cond:
            if self.reader is None or not self.reader.is_alive():
                self.reader = threading.Thread(target=self._read, daemon=True)
                self.reader.start()

    def _read(self) -> None:
        """The session's stream, reopened while events are pending (Gradio closes it when
        none are left, and one may have joined in between)."""
        while not self.closed:
            try:
                with self.http.stream("GET", self.url + "gradio_api/queue/data",
                                      params={"session_hash": self.session_hash}) as s:
                    for line in s.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        m = json.loads(line[5:])
                        if m.get("msg") == "close_stream":
                            break
                        with self.cond:
                            self.msgs.setdefault(m.get("event_id"), []).append((time.perf_counter(), m))
                            self.cond.notify_all()
            except Exception:  # noqa: BLE001  (a dropped stream: reopened below while needed)
                time.sleep(0.2)
            with self.cond:
                if self.pending == 0:
                    self.reader = None
                    return

    def upload(self, name: str, content: bytes) -> dict | Reply:
        """A file as the page uploads it: its FileData, or the refusal."""
        try:
            r = self.http.post(self.url + "gradio_api/upload", files={"files": (name, content)})
        except Exception as e:  # noqa: BLE001
            return Reply("no answer", f"{type(e).__name__}: {str(e)[:160]}")
        if r.status_code != 200:
            detail = _detail(r)
            problem = refusal_problem(detail)
            return Reply("unclean" if problem else "refused", problem or detail)
        return {"path": r.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    # -- the page's events, found by name in the config

    def dep(self, api_name: str) -> dict | None:
        return next((d for d in self.config["dependencies"] if d.get("api_name") == api_name), None)

    def component(self, cid: int) -> dict:
        return component(self.config, cid)

    def fill(self, dep: dict, **over) -> list:
        """The event's inputs as the page would send them untouched (each component's value
        in the config), with ``over`` by elem_id (dashes as underscores) or label."""
        out = []
        for cid in dep["inputs"]:
            c = self.component(cid)
            props = c.get("props", {})
            keys = {str(props.get("elem_id") or "").replace("-", "_"), str(props.get("label") or "")}
            hit = [k for k in keys if k and k in over]
            if hit:
                out.append(over[hit[0]])
            elif c["type"] == "state":
                out.append(None)  # the server keeps the session's own
            else:
                out.append(props.get("value"))
        return out

    def generate(self, prompt: str, tokens: int, wait: float, seed: int = 7) -> Reply:
        """The page's Generate (studio_generate: the writer's own path) on ``prompt``."""
        dep = self.dep("studio_generate")
        data = self.fill(dep, editor=prompt, max_tokens=tokens, seed=seed)
        return self.call(dep["id"], data, wait, prompt=prompt)


def component(config: dict, cid: int) -> dict:
    return next(c for c in config["components"] if c["id"] == cid)


def _none_of(names: tuple) -> str:
    return "no cap's setting" if names == CAP_SETTINGS else "none of " + ", ".join(names)


def _handler(dep: dict) -> str:
    """The handler behind an event: Gradio names the events of one function f, f_1, f_2, ..."""
    return re.sub(r"_\d+$", "", str(dep.get("api_name")))


def _detail(r) -> str:
    try:
        body = r.json()
        msg = body.get("detail") or body.get("error") or body
    except Exception:  # noqa: BLE001
        msg = r.text
    return f"HTTP {r.status_code}: {str(msg).strip()[:300]}"


def api(page: Page, name: str, *args, wait: float) -> Reply:
    """A scripting endpoint (gr.api) by name, with positional arguments."""
    dep = page.dep(name)
    if dep is None:
        return Reply("not callable", f"no endpoint named {name}")
    args = list(args) + [None] * (len(dep["inputs"]) - len(args))
    return page.call(dep["id"], args, wait)


# ----------------------------------------------------------------- the server


def read_rss(pid: int) -> tuple[int, int]:
    """(RSS now of ``pid`` and its children, the largest high-water mark among them), bytes."""
    try:
        import psutil

        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
        now = 0
        for q in procs:
            try:
                now += q.memory_info().rss
            except psutil.Error:
                pass
        pids = [q.pid for q in procs]
    except ImportError:
        pids = [pid] + _children(pid)
        now = sum(_status_kb(q, "VmRSS") for q in pids) * 1024
    except Exception:  # noqa: BLE001  (the process is gone)
        return 0, 0
    return now, max((_status_kb(q, "VmHWM") for q in pids), default=0) * 1024


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        kids = [int(x) for t in Path(f"/proc/{pid}/task").iterdir()
                for x in (t / "children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


class Server:
    """A studio to attack: ``python app.py`` in a subprocess (the bench), or one launched in
    this process (the test: ``demo`` given; RSS is then this process's)."""

    def __init__(self, data: Path, env: dict, demo=None, url: str = "", log: Path | None = None):
        self.data, self.env, self.demo, self.url, self.log = data, env, demo, url, log
        self.proc: subprocess.Popen | None = None
        self.deaths: list[str] = []

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else os.getpid()

    def start(self) -> "Server":
        if self.demo is not None:
            return self
        port = free_port()
        env = dict(os.environ, **self.env, PEREC_SPACE="1", GRADIO_SERVER_NAME="127.0.0.1",
                   GRADIO_SERVER_PORT=str(port), PEREC_DATA=str(self.data), GRADIO_ANALYTICS_ENABLED="False")
        env.pop("SPACE_ID", None)
        log = open(self.log, "a") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + START_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the studio exited with {self.proc.returncode} at start; see {self.log}")
            if self.answers() and self.model_ready():
                return self
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"the studio did not answer within {START_S} s; see {self.log}")

    def answers(self, timeout: float = 10.0) -> bool:
        import httpx

        try:
            return httpx.get(self.url + "config", timeout=timeout).status_code == 200
        except Exception:  # noqa: BLE001
            return False

    def model_ready(self) -> bool:
        page = Page(self.url, self.config())
        try:
            r = api(page, "status", wait=30)
        finally:
            page.close()
        return r.status == "answered" and bool(r.data) and bool(r.data[0].get("ready"))

    def config(self) -> dict:
        import httpx

        return httpx.get(self.url + "config", timeout=30).json()

    def alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return False
        return self.answers()

    def stop(self) -> None:
        if self.demo is not None:
            self.demo.close()
        elif self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)


class Memory:
    """Samples the server's RSS every ``every`` seconds: the peak overall and per attack;
    kills a subprocess server past ``kill_above`` (the harness's own guard)."""

    def __init__(self, server: Server, kill_above: int, every: float = 0.05):
        self.server, self.kill_above, self.every = server, kill_above, every
        self.label = "start"
        self.peak = 0
        self.peaks: dict[str, int] = {}
        self.killed: list[str] = []
        self.baseline = read_rss(server.pid)[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            now, hwm = read_rss(self.server.pid)
            top = max(now, hwm if self.server.proc is not None else now)
            self.peak = max(self.peak, top)
            self.peaks[self.label] = max(self.peaks.get(self.label, 0), now)
            if now > self.kill_above and self.server.proc is not None and self.server.proc.poll() is None:
                self.killed.append(f"{self.label}: killed by the harness at {now / GB:.2f} GB")
                self.server.kill()


# ----------------------------------------------------------------- the attacks


@dataclass
class Attack:
    name: str
    what: str  # what was sent
    replies: list[Reply] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why it does not pass
    notes: list[str] = field(default_factory=list)  # figures, kept beside the outcome
    seconds: float = 0.0
    peak_rss: int = 0
    alive_after: bool = True

    @property
    def passed(self) -> bool:
        return not self.problems and self.alive_after

    def expect_refused(self, r: Reply, what: str, names: tuple = ()) -> None:
        """``r`` must be a clean refusal that (given ``names``) names one of the settings."""
        self.replies.append(r)
        if r.status == "answered":
            self.problems.append(f"{what}: accepted")
        elif not r.refused:
            self.problems.append(f"{what}: {r.status} ({r.line})")
        elif names and not any(n in r.line for n in names):
            self.problems.append(f"{what}: refused, but naming {_none_of(names)}: {r.line}")

    def expect_clean(self, r: Reply, what: str, names: tuple = ()) -> None:
        """``r`` is answered, or refused cleanly (naming one of ``names`` when given)."""
        self.replies.append(r)
        if r.status in ("answered",):
            return
        if not r.refused:
            self.problems.append(f"{what}: {r.status} ({r.line})")
        elif names and not any(n in r.line for n in names):
            self.problems.append(f"{what}: refused, but naming {_none_of(names)}: {r.line}")


class Harness:
    def __init__(self, server: Server, counts: Counts, log=print):
        self.server, self.counts, self.log = server, counts, log
        self.config = server.config()
        self.attacks: list[Attack] = []
        self.restarts = 0

    def page(self) -> Page:
        return Page(self.server.url, self.config)

    # -- the attacks, each its own method: what it sends and what it must get

    def big_spec(self, a: Attack) -> None:
        spec = _ban_spec(self.counts.spec_bytes)
        a.what = f"a {len(spec):,}-character ban: spec to /check and to the page's Apply"
        p = self.page()
        try:
            a.expect_refused(api(p, "check", "A short text to check.", spec, "", wait=self.counts.wait),
                             "/check", CAP_SETTINGS)
            dep = p.dep("studio_apply_spec")
            if dep is None:
                a.problems.append("the page's Apply (studio_apply_spec) was not found")
            else:
                a.expect_refused(p.call(dep["id"], p.fill(dep, spec=spec), self.counts.wait),
                                 "studio_apply_spec", CAP_SETTINGS)
        finally:
            p.close()

    def checks_at_cap(self, a: Attack) -> None:
        n, cap = self.counts.checks, limits.TEXT_CHARS.value(True)
        spec = _ban_spec(min(limits.SPEC_CHARS.value(True), 2 * limits.ARG_CHARS.value(True)) - 16,
                         arg_chars=limits.ARG_CHARS.value(True) - 16)
        words = [w for part in spec.split("&") for w in part.split(":", 1)[1].strip().split(",")]
        text = _text_of(words, cap)
        a.what = (f"{n} concurrent /check calls, each {len(text):,} characters (the text cap) under a "
                  f"{len(spec):,}-character ban: spec; then one of {cap + 1:,} characters")
        pages = [self.page() for _ in range(n)]
        gate = threading.Barrier(n)

        def one(p: Page) -> Reply:
            gate.wait(timeout=60)
            return api(p, "check", text, spec, "", wait=self.counts.wait)

        try:
            with ThreadPoolExecutor(n) as pool:
                replies = list(pool.map(one, pages))
            most = limits.VIOLATIONS.value(True)
            over = []
            for r in replies:
                a.expect_clean(r, "/check at the cap", CAP_SETTINGS)
                if r.status == "answered" and r.data and isinstance(r.data[0], dict):
                    got = len(r.data[0].get("violations", []))
                    over += [got] if got > most else []
            if over:
                a.problems.append(f"{len(over)} /check replies returned {max(over):,} violations (the cap is "
                                  f"{most}; {limits.VIOLATIONS.setting})")
            done = [r.seconds for r in replies if r.status == "answered"]
            a.notes.append(f"{len(done)} answered, {sum(r.refused for r in replies)} refused"
                           + (f"; answered in {fmt(done, ' s')}" if done else ""))
            a.expect_refused(api(pages[0], "check", text + "x", spec, "", wait=self.counts.wait),
                             "/check past the text cap", CAP_SETTINGS)
        finally:
            for p in pages:
                p.close()

    def hub_model(self, a: Attack) -> None:
        ids = self.counts.hub_ids
        a.what = "a Hub id as the model: " + ", ".join(ids) + " (Settings → Load; /generate's model)"
        p = self.page()
        try:
            dep = p.dep("studio_load_model")
            for hub in ids:
                if dep is not None:
                    a.expect_refused(p.call(dep["id"], p.fill(dep, model=hub), self.counts.wait),
                                     f"Load {hub}", MODEL_SETTINGS)
            gen = p.dep("generate")
            if gen is not None:
                args = ["Once upon a time", "", "", 4, 0.8, 50, 0.95, 1.1, -1, "continue", ids[-1], 0]
                a.expect_refused(p.call(gen["id"], args, self.counts.wait), f"/generate model={ids[-1]}",
                                 MODEL_SETTINGS)
            status = api(p, "status", wait=self.counts.wait)
            phase = status.data[0].get("phase") if status.status == "answered" and status.data else None
            a.notes.append(f"the model's phase after: {phase}")
            if phase == "failed" or not (status.data and status.data[0].get("ready")):
                a.problems.append(f"the default model is not ready for everyone after (phase {phase})")
        finally:
            p.close()

    def _steered(self, a: Attack, what: str, names: tuple, **over) -> None:
        """The steering panel's event (the one the page chains before Generate) with
        ``over``, then the page's Generate: one of the two must refuse, naming ``names``."""
        p = self.page()
        try:
            gen = p.dep("studio_generate")
            sync = next((d for d in self.config["dependencies"] if gen and d["id"] == gen.get("trigger_after")), None)
            if sync is None:
                a.notes.append("no steering event is chained before Generate: nothing to send it through")
                return
            r = p.call(sync["id"], p.fill(sync, **over), self.counts.wait)
            if r.status == "not callable":  # closed to scripts: nothing reaches the steering
                a.replies.append(r)
                a.notes.append(f"the steering event is not callable from outside ({r.line})")
                return
            if r.refused or r.status != "answered":
                a.expect_refused(r, f"{what} (steering event)", names)
                return
            a.expect_refused(p.generate("The harbour at night", 4, self.counts.wait), f"{what} (Generate)", names)
        finally:
            p.close()

    def discriminator(self, a: Attack) -> None:
        lines = _examples(self.counts.disc_bytes)
        n = lines.count(b"\n")
        a.what = (f"a discriminator upload: A {len(lines):,} bytes ({n:,} examples), "
                  f"B {len(lines) // 20:,} bytes, then Generate")
        p = self.page()
        try:
            fa, fb = p.upload("toward.txt", lines), p.upload("away.txt", lines[: len(lines) // 20])
        finally:
            p.close()
        for f in (fa, fb):
            if isinstance(f, Reply):  # the upload itself was refused: that is the outcome
                a.expect_refused(f, "the upload")
                return
        self._steered(a, "discriminator", CAP_SETTINGS, disc_a=fa, disc_b=fb)

    def steer_prompt(self, a: Attack) -> None:
        text = _words(self.counts.steer_bytes)
        a.what = f"a {len(text):,}-character contrast (steer) prompt, then Generate"
        self._steered(a, "steer text", CAP_SETTINGS, steer_text=text)

    def word_bank(self, a: Attack) -> None:
        words = " ".join(_letters(i) for i in range(self.counts.bank_words))
        a.what = f"a word bank of {self.counts.bank_words:,} words ({len(words):,} characters), then Generate"
        self._steered(a, "word bank", CAP_SETTINGS, bank_words=words)

    def drafts(self, a: Attack) -> None:
        n, cap = self.counts.drafts, limits.DRAFTS_PER_OWNER.value(True)
        a.what = (f"{n:,} draft creations from one browser (the page's New draft), stopped after "
                  f"{self.counts.drafts_s:g} s")
        p = self.page()
        dep = p.dep("studio_new_draft")
        if dep is None:
            a.problems.append("the page's New draft (studio_new_draft) was not found")
            p.close()
            return
        made = refused = other = 0
        lines: dict[str, int] = {}
        times: list[float] = []
        deadline = time.monotonic() + self.counts.drafts_s
        try:
            for _ in range(n):
                if time.monotonic() > deadline:
                    break
                r = p.call(dep["id"], p.fill(dep), min(self.counts.wait, 60))
                times.append(r.seconds)
                if r.status == "answered":
                    made += 1
                elif r.refused:
                    refused += 1
                    lines[r.line] = lines.get(r.line, 0) + 1
                else:
                    other += 1
                    if other <= 3:
                        a.problems.append(f"draft {made + refused + other}: {r.status} ({r.line})")
                    if r.status == "no answer" and not self.server.alive():
                        break
        finally:
            p.close()
        tried = made + refused + other
        a.notes.append(f"{tried:,} tried: {made:,} made, {refused:,} refused, {other:,} other"
                       + (f"; first call {times[0]:.3f} s, last {times[-1]:.3f} s" if times else ""))
        a.notes += [f"refused {k:,}×: {line}" for line, k in lines.items()]
        a.replies += [Reply("answered")] * made + [Reply("refused", line) for line, k in lines.items()
                                                   for _ in range(k)]
        if other > 3:
            a.problems.append(f"{other:,} creations in all neither made nor refused cleanly")
        if tried < n:
            a.notes.append(f"stopped at the deadline after {tried:,} of {n:,}")
        if made > cap:
            a.problems.append(f"{made:,} drafts made by one browser (the cap is {cap:,}; "
                              f"{limits.DRAFTS_PER_OWNER.setting})")
        if refused and not all(limits.DRAFTS_PER_OWNER.setting in line for line in lines):
            a.problems.append("a refusal that does not name " + limits.DRAFTS_PER_OWNER.setting)

    def private_events(self, a: Attack) -> None:
        deps = [d for d in self.config["dependencies"] if d.get("api_visibility") == "private"]
        if not self.counts.every_private:
            first: dict[str, dict] = {}
            for d in deps:
                first.setdefault(_handler(d), d)
            deps = list(first.values())
        a.what = (f"{'every' if self.counts.every_private else 'one per handler:'} page-only (private) event, "
                  f"{len(deps)}, by fn_index: wrong types, then oversized "
                  f"values ({self.counts.oversize:,} characters, a file outside the uploads, a forged browser copy)")
        p = self.page()
        # One line per handler, way and outcome: the page wires one handler to many events
        # (edited, edited_1, ...), and a report of seventy copies of one line says less.
        grouped: dict[tuple, list[int]] = {}
        try:
            for d in deps:
                for how in ("types", "sizes"):
                    data = [self._garbage(self.component(cid), how) for cid in d["inputs"]] or [["garbage"]]
                    r = p.call(d["id"], data, self.counts.wait)
                    a.replies.append(r)
                    if r.refused or (r.status == "answered" and self._harmless(d, r)):
                        continue
                    outcome = "accepted garbage" if r.status == "answered" else f"{r.status}: {r.line[:160]}"
                    grouped.setdefault((_handler(d), how, outcome), []).append(d["id"])
                if not self.server.alive():
                    a.problems.append(f"the server died at {d.get('api_name')}")
                    break
        finally:
            p.close()
        for (base, how, outcome), ids in grouped.items():
            a.problems.append(f"{base} ({how}; {len(ids)} event{'s' * (len(ids) > 1)}, fn_index "
                              f"{', '.join(map(str, ids[:4]))}{' …' if len(ids) > 4 else ''}): {outcome}")

    def component(self, cid: int) -> dict:
        return component(self.config, cid)

    def _harmless(self, dep: dict, r: Reply) -> bool:
        """An answer to garbage that is still right: an event that takes no inputs (nothing
        to check), or the page's load with an unreadable browser copy, ignored (a corrupt
        localStorage must not stop the page), so long as none of the forged draft came back."""
        if not dep["inputs"]:
            return True
        loads_copy = any(self.component(cid)["type"] == "browserstate" for cid in dep["inputs"])
        shown = json.dumps(r.data, ensure_ascii=False)
        return loads_copy and GARBAGE_MARK not in shown and "é" * 100 not in shown

    def _garbage(self, c: dict, how: str):
        if how == "types":
            return {"garbage": [1, None, GARBAGE_MARK], "nested": {"a": [[[]]]}}
        big = "é" * self.counts.oversize
        return {"textbox": big, "dropdown": big, "radio": big, "slider": 1e308, "number": -1e308,
                "file": {"path": "/etc/passwd", "orig_name": "passwd", "meta": {"_type": "gradio.FileData"}},
                "uploadbutton": {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
                "dataframe": {"headers": ["x"] * 1000, "data": [["y"] * 1000] * 100, "metadata": None},
                "browserstate": {"owner": "a" * 32, "draft": {"id": "x" * 64, "text": GARBAGE_MARK + big}},
                "dataset": 10 ** 12}.get(c["type"], big)

    def generations(self, a: Attack) -> None:
        n, per = self.counts.generations, limits.GENERATIONS_PER_SESSION.value(True)
        rounds = self.counts.generation_rounds
        a.what = (f"one browser opens {n} generations at once ({self.counts.attack_tokens} tokens each), "
                  f"{rounds} times, a new browser each time")
        replies: list[Reply] = []
        most = 0  # the most of one browser's generations streaming at once, over the bursts
        for _ in range(rounds):
            p = self.page()
            gate = threading.Barrier(n)

            def one(i: int) -> Reply:
                gate.wait(timeout=60)
                return p.generate(PROMPTS[i % len(PROMPTS)], self.counts.attack_tokens, self.counts.wait, seed=i)

            try:
                with ThreadPoolExecutor(n) as pool:
                    burst = list(pool.map(one, range(n)))
            finally:
                p.close()
            replies += burst
            spans = [r.streaming for r in burst if r.streaming]
            most = max([most] + [sum(s <= t < e for s, e in spans) for t, _ in spans])
        for r in replies:
            # A generation the queue held until the browser's first one had ended finds the
            # draft moved on under the text it was sent with: refusing it for that is right.
            a.expect_clean(r, "a generation", CAP_SETTINGS + (STALE_STREAM,))
        a.notes.append(f"{sum(r.status == 'answered' for r in replies)} answered, "
                       f"{sum(r.refused for r in replies)} refused; at most {most} streaming at once")
        if most > per:
            a.problems.append(f"{most} generations of one browser streamed at once (the cap is {per}; "
                              f"{limits.GENERATIONS_PER_SESSION.setting})")
        if not any(r.refused for r in replies) and not any(r.streaming for r in replies):
            a.problems.append("no generation streamed and none was refused")

    def secret(self, a: Attack) -> None:
        """The page config holds none of the server's secrets: the keys it keeps in its data
        folder or is given (PEREC_BROWSER_SECRET)."""
        a.what = "the page config searched for the server's secrets (its data folder's keys, PEREC_BROWSER_SECRET)"
        config = json.dumps(self.server.config(), ensure_ascii=False)
        kept = [os.environ.get("PEREC_BROWSER_SECRET", "")] + _small_texts(self.server.data)
        leaked = [k for k in kept if len(k) >= 16 and k in config]
        a.notes.append(f"{len([k for k in kept if len(k) >= 16])} server-held keys looked for")
        keys = [c["props"]["secret"] for c in self.config["components"] if c.get("props", {}).get("secret")]
        a.notes += [f"the page's BrowserState key (public by design if it is no server secret): {k!r}" for k in keys]
        if leaked:
            a.problems.append(f"the page config carries a server secret ({len(leaked[0])} characters, "
                              f"kept by the server as a key)")

    ATTACKS = ("big_spec", "checks_at_cap", "hub_model", "discriminator", "steer_prompt", "word_bank", "drafts",
               "private_events", "generations", "secret")

    # -- running them

    def run(self, memory: Memory, on_attack=lambda name: None) -> list[Attack]:
        for name in self.ATTACKS:
            a = Attack(name, "")
            memory.label = name
            on_attack(name)
            t = time.perf_counter()
            try:
                getattr(self, name)(a)
            except Exception as e:  # noqa: BLE001  (the harness itself: reported, never hidden)
                a.problems.append(f"the harness failed: {type(e).__name__}: {str(e)[:200]}")
            a.seconds = time.perf_counter() - t
            a.peak_rss = memory.peaks.get(name, 0)
            a.alive_after = self.server.alive()
            if not a.alive_after:
                why = next((k for k in memory.killed if k.startswith(name)), "the server died")
                self.server.deaths.append(f"{name}: {why}")
                self.log(f"{name}: the server is down ({why})")
                if self.server.proc is not None:
                    self.restarts += 1
                    self.server.start()  # the later attacks still measured, on a fresh server
                    self.config = self.server.config()
            self.log(f"{name}: {'pass' if a.passed else 'FAIL'} in {a.seconds:.1f} s"
                     + (f": {a.problems[0]}" if a.problems else ""))
            self.attacks.append(a)
        memory.label = "end"
        return self.attacks


# ----------------------------------------------------------------- the ordinary writer


class Writer:
    """One writer generating through the page, timing each first streamed piece."""

    def __init__(self, harness: Harness, counts: Counts):
        self.h, self.counts = harness, counts
        self.runs: list[tuple[str, Reply]] = []  # (the attack running meanwhile, the reply)
        self.now = Harness.ATTACKS[0]  # the label of the attack running while a run starts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def once(self, i: int) -> Reply:
        p = self.h.page()
        try:
            return p.generate(PROMPTS[i % len(PROMPTS)], self.counts.writer_tokens, self.counts.wait, seed=100 + i)
        finally:
            p.close()

    def unloaded(self) -> list[Reply]:
        self.once(0)  # the first generation after start pays for warm-up: not counted
        return [self.once(i + 1) for i in range(self.counts.unloaded_runs)]

    def start(self) -> "Writer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.counts.wait + 30)

    def _loop(self) -> None:
        i = 100
        while not self._stop.is_set():
            label = self.now
            r = self.once(i)
            self.runs.append((label, r))
            if r.status != "answered":
                self._stop.wait(0.5)  # a server that is down: ask again soon, not in a tight loop
            i += 1


# ----------------------------------------------------------------- the whole run


@dataclass
class Report:
    attacks: list[Attack]
    peak_rss: int
    baseline_rss: int
    unloaded: list[Reply]
    loaded: list[tuple[str, Reply]]
    deaths: list[str]
    killed: list[str]
    wall: float

    def first_pieces(self, replies) -> list[float]:
        return [r.first_piece for r in replies if r.first_piece is not None]

    def slowdowns(self) -> dict[str, float]:
        """Per attack: the median first piece of the writer's runs that started during it,
        over the unloaded median (an attack that stalls the writer shows in its own runs,
        not diluted by the runs of the attacks that do not)."""
        unl = self.first_pieces(self.unloaded)
        if not unl:
            return {}
        base = statistics.median(unl)
        out = {}
        for name in dict.fromkeys(lab for lab, _ in self.loaded):
            xs = self.first_pieces(r for lab, r in self.loaded if lab == name)
            if xs:
                out[name] = statistics.median(xs) / base
        return out

    def criteria(self) -> list[tuple[str, bool, str]]:
        slow = self.slowdowns()
        worst = max(slow, key=slow.get) if slow else None
        bad = [a.name for a in self.attacks if a.problems]
        writer_fail = [r for r in self.unloaded + [r for _, r in self.loaded] if r.status != "answered"]
        over = [f"{name} {x:.2f}x" for name, x in slow.items() if x > LATENCY_BOUND]
        return [
            ("the server never dies", not self.deaths, "; ".join(self.deaths) or "alive after every attack"),
            (f"peak RSS < {RSS_BOUND / GB:.0f} GB", self.peak_rss < RSS_BOUND, f"{self.peak_rss / GB:.2f} GB"),
            ("every abusive request refused in one line", not bad,
             "all attacks pass" if not bad else "failing: " + ", ".join(bad)),
            (f"the writer's first piece within {LATENCY_BOUND:g}x unloaded (median of its runs during each attack)",
             worst is not None and not over and not writer_fail,
             (f"worst {slow[worst]:.2f}x (during {worst})" if worst else "not measured")
             + (f"; over the bound: {', '.join(over)}" if over else "")
             + (f"; {len(writer_fail)} writer runs failed" if writer_fail else "")),
        ]

    def markdown(self, command: str, commit: str, model: str) -> str:
        unl = self.first_pieces(self.unloaded)
        lod = [(lab, r.first_piece) for lab, r in self.loaded if r.first_piece is not None]
        out = ["# Abuse test (issue 16, item 6)", "", "```", f"$ {command}", f"commit {commit}",
               f"model {model}; Space mode (PEREC_SPACE=1), loopback; {os.cpu_count()} cores, "
               f"load average before {os.getloadavg()[0]:.1f}; wall {self.wall:.0f} s", "```", "",
               "## Done when", "", "| criterion | result | measured |", "|---|---|---|"]
        out += [f"| {c} | {'PASS' if ok else 'FAIL'} | {m} |" for c, ok, m in self.criteria()]
        out += ["", "## Caps in force (constraints/limits.py, Space values)", "", "```"]
        out += [f"{c.setting:<34} {c.value(True):>10,}  {c.what}" for c in limits.ALL]
        for k in ("PEREC_MAX_TOKENS", "PEREC_MAX_UPLOAD", "PEREC_CONCURRENCY", "PEREC_BATCHING"):
            out.append(f"{k:<34} {os.environ.get(k, '(default)'):>10}")
        out += ["```", "", "## Attacks", "",
                "Past a cap, only a refusal in one clean line that names a cap's setting passes (the Hub id: "
                "the allow-list's, PEREC_MODELS; the drafts: PEREC_MAX_DRAFTS). Within the caps (checks at "
                "the text cap, generations of one browser) an answer is right too; what counts there is "
                "memory, the caps on what comes back, and one generation streaming per browser. A page-only "
                "event sent garbage must refuse it (an event with no inputs has nothing to refuse; the page's "
                "load may ignore an unreadable browser copy, if none of it comes back).", ""]
        for a in self.attacks:
            kinds: dict[str, int] = {}
            for r in a.replies:
                kinds[r.status] = kinds.get(r.status, 0) + 1
            out += [f"### {a.name}: {'PASS' if a.passed else 'FAIL'}", "", f"- sent: {a.what}",
                    f"- outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"),
                    f"- {a.seconds:.1f} s; server RSS peak during it {a.peak_rss / GB:.2f} GB; "
                    f"alive after: {'yes' if a.alive_after else 'NO'}"]
            lines = sorted({r.line for r in a.replies if r.refused and r.line})
            out += [f"- refused with: `{line}`" for line in lines[:6]]
            out += [f"- {n}" for n in a.notes if not n.startswith(("refused ", "a refusal"))]
            out += [f"- PROBLEM: {p}" for p in a.problems]
            out.append("")
        out += ["## The ordinary writer", "",
                f"first streamed piece, unloaded: {_fmt(unl)}; runs " + ", ".join(f"{x:.2f}" for x in unl),
                f"first streamed piece, under attack: {_fmt([x for _, x in lod])}", "", "```"]
        slow = self.slowdowns()
        for name in dict.fromkeys(lab for lab, _ in self.loaded):
            xs = [x for lab, x in lod if lab == name]
            failed = [r for lab, r in self.loaded if lab == name and r.status != "answered"]
            ratio = f"{slow[name]:6.2f}x" if name in slow else "      -"
            out.append(f"  during {name:<15} {len(xs):>3} runs {_fmt(xs):<26} {ratio}  every run: "
                       + " ".join(f"{x:.2f}" for x in xs))
            out += [f"  during {name:<15} {r.status}: {r.line[:200]}" for r in failed]
        out += ["```", "", f"server RSS: {self.baseline_rss / GB:.2f} GB at start, peak {self.peak_rss / GB:.2f} GB "
                f"(sampled every 50 ms, with the kernel's high-water mark of a subprocess server)"]
        if self.killed:
            out += [f"harness guard: {k}" for k in self.killed]
        return "\n".join(out) + "\n"


def _fmt(xs: list[float]) -> str:
    return fmt(xs, " s") if xs else "none"


def run(server: Server, counts: Counts, log=print) -> Report:
    """The whole abuse run against a started ``server``: unloaded writer, then the attacks
    with the writer generating meanwhile."""
    t0 = time.perf_counter()
    h = Harness(server, counts, log)
    writer = Writer(h, counts)
    with Memory(server, counts.kill_above) as mem:
        unloaded = writer.unloaded()
        log("unloaded first pieces: " + ", ".join(f"{r.first_piece:.2f}" if r.first_piece else r.status
                                                  for r in unloaded))
        writer.start()

        def on_attack(name: str) -> None:
            writer.now = name

        try:
            attacks = h.run(mem, on_attack)
        finally:
            writer.stop()
        if not server.alive():
            server.deaths.append("end: the server is down")
    return Report(attacks, mem.peak, mem.baseline, unloaded, writer.runs, server.deaths, mem.killed,
                  time.perf_counter() - t0)


# ----------------------------------------------------------------- helpers


def _words(n: int) -> str:
    base = "the sea was grey and the gulls cried over the harbour wall at dusk "
    return (base * (n // len(base) + 1))[:n]


def _examples(n: int) -> bytes:
    line = "A calm example sentence about the quiet sea and its small boats, number {}.\n"
    out, i, size = [], 0, 0
    while size < n:
        s = line.format(i)
        out.append(s)
        size += len(s)
        i += 1
    return "".join(out).encode()


def _small_texts(folder: Path) -> list[str]:
    """Each small text file's content under ``folder`` (where the server keeps its keys)."""
    out = []
    for f in sorted(Path(folder).rglob("*")) if Path(folder).exists() else []:
        try:
            if f.is_file() and f.stat().st_size <= 4096:
                text = f.read_text().strip()
                if "\x00" not in text:  # a binary file (the drafts database) holds no key
                    out.append(text)
        except (OSError, UnicodeDecodeError):
            pass
    return out


def _letters(i: int) -> str:
    """The ``i``-th word made of letters only (a, b, ..., z, ba, bb, ...)."""
    out = ""
    while True:
        out = chr(ord("a") + i % 26) + out
        i //= 26
        if not i:
            return out


def _ban_spec(chars: int, arg_chars: int | None = None) -> str:
    """A ``ban:`` spec of about ``chars`` characters; split into rules of at most
    ``arg_chars`` characters each when given."""
    words = [f"w{i:x}z" for i in range(chars // 5 + 1)]
    rules, cur, size = [], [], 0
    limit = arg_chars or chars
    total = 0
    for w in words:
        if size + len(w) + 1 > limit:
            rules.append(cur)
            cur, size = [], 0
        cur.append(w)
        size += len(w) + 1
        total += len(w) + 1
        if total >= chars:
            break
    rules.append(cur)
    return " & ".join("ban:" + ",".join(r) for r in rules if r)


def _text_of(words: list[str], n: int) -> str:
    s = " ".join(words) + " "
    return (s * (n // len(s) + 1))[:n]


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the small form (each attack just past its cap)")
    ap.add_argument("--counts", type=float, default=1.0, help="scale the counts (drafts, checks, generations)")
    ap.add_argument("--model", choices=("real", "tiny"), default="real",
                    help="real: python app.py; tiny: an in-process studio on a tiny random model")
    ap.add_argument("--kill-above", type=float, default=4.0, help="GB: the harness kills a server past this")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    os.environ.setdefault("PEREC_CACHE", str(ROOT / ".cache" / "perec"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    counts = (Counts.quick() if args.quick else Counts()).scaled(args.counts)
    counts = replace(counts, kill_above=int(args.kill_above * GB))
    command = "python bench/abuse.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        if args.model == "real":
            server = Server(data, {}, log=Path(tmp) / "server.log").start()
            model = "the embedded SmolLM2-135M-Instruct (python app.py)"
        else:
            demo, url = launch(load_engine("tiny"), data, batching=True, cap=24)
            server = Server(data, {}, demo=demo, url=url)
            model = "a tiny random llama, in-process"
        try:
            report = run(server, counts)
        finally:
            server.stop()
        if args.model == "real" and (Path(tmp) / "server.log").exists():
            tail = (Path(tmp) / "server.log").read_text(errors="replace").splitlines()[-5:]
            print("server log (last lines):\n" + "\n".join(tail))
    from studio.benchmark import write_report

    write_report(report.markdown(command, commit(), model), "abuse", "cpu", args.out)
    sys.exit(0 if all(ok for _, ok, _ in report.criteria()) else 1)


if __name__ == "__main__":
    main()
