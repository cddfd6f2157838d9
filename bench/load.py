"""Load test: concurrent ``gradio_client`` sessions against a local studio in Space mode.

Loopback only, bounded in count (a fixed script per session) and time (every wait has a
limit).  Each session mixes the scripting endpoints (/generate streamed, /candidates,
/check, /variants, /stop) with the page's own (studio_apply_spec, studio_check,
studio_generate, studio_list_drafts, studio_open_draft) and bad inputs (a bad spec, an
empty draft, an over-cap budget, wrong types), and checks the contract as it goes:

- every request gets its result or one clear error (one line, naming the problem);
- no session sees another's drafts or settings (Space mode owns drafts per browser: each
  client is one browser; it writes a secret draft, then tries to list and open the others').

Figures: p50 / p95 latency per kind of request, with batched decoding (the default,
studio/decode/scheduler.py) and without (PEREC_BATCHING=0: each event decodes alone, two at
a time); and the aggregate tokens/s of 8 concurrent writers against 1, both ways,
interleaved rounds (median, min, max).

    python bench/load.py [--sessions 16] [--rounds 3] [--tokens 24] [--model real|tiny]

Writes bench/results/load-cpu.md.  tests/test_load.py runs the same sessions, smaller, on the
tiny model, and asserts the contract only.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzzing import refusal_problem  # noqa: E402  (one definition of a clean refusal)

LETTERS = "bcdfghjklmnpqrstvwxz"  # one banned letter per session: its own, visible rules
PROMPTS = ["The old house on the hill was", "At dawn the fishing boats", "She opened the letter and",
           "Under the bridge a small", "The market was loud with", "In the library, between shelves,",
           "Our train stopped at a town", "When the snow finally melted"]


@dataclass
class Plan:
    """What each session does: budgets in tokens, and what the server caps."""

    tokens: int = 24  # /generate, /variants, /studio_generate
    stop_tokens: int = 200  # the generation that gets stopped (never reaches it)
    cap: int = 200  # the server's max tokens (Space mode)
    candidates: int = 8
    wait: float = 600  # s: the longest any one request may take before it counts as unanswered


@dataclass
class Call:
    session: int
    kind: str
    seconds: float
    ok: bool  # answered with a result (False: with a clean error)


@dataclass
class Outcome:
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # contract broken: what and where
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def problem(self, session: int, what: str) -> None:
        with self.lock:
            self.problems.append(f"session {session}: {what}")


# ----------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def launch(engine, data: Path, batching: bool, cap: int = 200):
    """The studio in Space mode on 127.0.0.1; batching chosen as a Space would: PEREC_BATCHING."""
    from studio.ui import UiConfig, build_app

    with env(PEREC_BATCHING=int(batching), PEREC_MAX_TOKENS=cap):
        cfg = UiConfig.from_env(space=True, data=data)
    demo = build_app(engine, config=cfg)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def settings(i: int, tokens: int) -> list:
    """The page's settings panel for session i (model, mode, temperature, top_k, top_p,
    repetition penalty, max tokens, seed, search width): its temperature and seed are its own."""
    return ["", "continue", round(0.5 + 0.05 * i, 2), 50, 0.95, 1.1, tokens, 1000 + i, 0]


# ----------------------------------------------------------------- one session


class Session:
    def __init__(self, i: int, url: str, plan: Plan, out: Outcome, shared: dict, gate: threading.Barrier):
        from gradio_client import Client

        self.i, self.plan, self.out, self.shared, self.gate = i, plan, out, shared, gate
        self.client = Client(url, verbose=False)
        self.spec = f"lipogram:{LETTERS[i % len(LETTERS)]}"
        self.prompt = PROMPTS[i % len(PROMPTS)]
        self.secret = f"Draft of session {i}, {uuid.uuid4().hex}: nobody else reads this."
        self.owner = self.draft_id = ""

    # -- calling, timing, judging

    def call(self, kind: str, *args, api_name: str, refused: str | None = None):
        """One request: its result, or None after an error.  ``refused``: the words the
        error must carry (the request is meant to be refused)."""
        from gradio_client.exceptions import AppError

        t = time.perf_counter()
        try:
            job = self.client.submit(*args, api_name=api_name)
            result = job.result(timeout=self.plan.wait)
        except AppError as e:
            self.out.add(Call(self.i, kind, time.perf_counter() - t, False))
            msg = str(e)
            problem = refusal_problem(msg)
            if problem:
                self.out.problem(self.i, f"{kind}: {problem}")
            elif refused is None:
                self.out.problem(self.i, f"{kind}: refused a good request: {msg}")
            elif refused.lower() not in msg.lower():
                self.out.problem(self.i, f"{kind}: refused, but not for {refused!r}: {msg}")
            return None
        except Exception as e:  # noqa: BLE001  (a timeout, a dropped connection: unanswered)
            self.out.add(Call(self.i, kind, time.perf_counter() - t, False))
            self.out.problem(self.i, f"{kind}: no answer ({type(e).__name__}: {str(e)[:200]})")
            return None
        self.out.add(Call(self.i, kind, time.perf_counter() - t, True))
        if refused is not None:
            self.out.problem(self.i, f"{kind}: answered a request that should be refused ({refused})")
        return result

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.out.problem(self.i, what)

    # -- the script

    def run(self) -> None:
        try:
            self.write_secret_draft()
            self.wait("all sessions have written")
            self.stream_generate()
            self.next_words_and_check()
            self.variants()
            self.stop_mid_generation()
            self.bad_inputs()
            self.page_generate()
            self.wait("all sessions have generated")
            self.look_for_other_sessions()
        except threading.BrokenBarrierError:
            self.out.problem(self.i, "another session never reached the same step")

    def wait(self, what: str) -> None:
        try:
            self.gate.wait(timeout=self.plan.wait)
        except threading.BrokenBarrierError:
            self.out.problem(self.i, f"gave up waiting until {what}")
            raise

    def browser_copy(self, text: str):
        out = self.call("studio_check", text, *settings(self.i, self.plan.tokens), api_name="/studio_check")
        return out[-1] if out else None

    def write_secret_draft(self) -> None:
        out = self.call("studio_apply_spec", self.spec, api_name="/studio_apply_spec")
        self.expect(out is not None and out[1] == self.spec, f"own rules not applied: {out and out[1]!r}")
        copy = self.browser_copy(self.secret)
        if not copy:
            return
        d = copy["draft"]
        self.owner, self.draft_id = copy["owner"], d["id"]
        self.expect(d["text"] == self.secret and d["constraints"] == [self.spec]
                    and d["settings"]["temperature"] == settings(self.i, 0)[2], f"saved draft is not its own: {d}")
        self.shared[self.i] = (self.owner, self.draft_id, self.secret)

    def stream_generate(self) -> None:
        t = time.perf_counter()
        job = self.client.submit(self.prompt, "", "", self.plan.tokens, *settings(self.i, 0)[2:6],
                                 1000 + self.i, api_name="/generate")
        first = None
        try:
            for text in job:
                if text and first is None:
                    first = time.perf_counter() - t
            result = job.result(timeout=self.plan.wait)
        except Exception as e:  # noqa: BLE001
            self.out.add(Call(self.i, "generate (streamed)", time.perf_counter() - t, False))
            self.out.problem(self.i, f"generate: no answer ({type(e).__name__}: {str(e)[:200]})")
            return
        self.out.add(Call(self.i, "generate (streamed)", time.perf_counter() - t, True))
        if first is not None:
            self.out.add(Call(self.i, "generate: first piece", first, True))
        self.expect(isinstance(result, str) and result.strip() != "", f"generate wrote nothing: {result!r}")

    def next_words_and_check(self) -> None:
        letter = self.spec.split(":")[1]
        cands = self.call("candidates", self.prompt, self.spec, "", self.plan.candidates, api_name="/candidates")
        if cands is not None:
            self.expect(all(letter not in c["text"].lower() for c in cands), f"a next word breaks {self.spec}: {cands}")
        out = self.call("check", self.secret, self.spec, "", api_name="/check")
        if out is not None:
            banned = sum(ch == letter for ch in self.secret.lower())
            self.expect(len(out["violations"]) == banned, f"check found {len(out['violations'])}, not {banned}")

    def variants(self) -> None:
        texts = self.call("variants", self.prompt, "", "", 2, self.plan.tokens, *settings(self.i, 0)[2:6],
                          1000 + self.i, api_name="/variants")
        self.expect(texts is None or (len(texts) == 2 and all(isinstance(t, str) for t in texts)),
                    f"variants: {texts!r}")

    def stop_mid_generation(self) -> None:
        t = time.perf_counter()
        job = self.client.submit(self.prompt, "", "", self.plan.stop_tokens, *settings(self.i, 0)[2:6],
                                 1000 + self.i, api_name="/generate")
        deadline = time.time() + self.plan.wait
        while time.time() < deadline and not job.done() and not any(job.outputs()):
            time.sleep(0.02)  # until the generation has written its first piece
        n = self.call("stop", api_name="/stop")
        t_stop = time.perf_counter()
        try:
            text = job.result(timeout=self.plan.wait)
        except Exception as e:  # noqa: BLE001
            self.out.problem(self.i, f"the stopped generation got no answer ({type(e).__name__}: {e})")
            return
        self.out.add(Call(self.i, "stop: until the generation ends", time.perf_counter() - t_stop, True))
        self.out.add(Call(self.i, "generate (stopped)", time.perf_counter() - t, True))
        self.expect(isinstance(text, str) and n in (0, 1), f"stop: {n!r}, text {text!r}")

    def bad_inputs(self) -> None:
        p, cap = self.prompt, self.plan.cap
        self.call("bad: spec", p, "nosuch:1", api_name="/generate", refused="unknown constraint")
        self.call("bad: spec", p, "lipogram:e & (", api_name="/generate", refused="bad spec")
        self.call("bad: empty draft", "   ", "", "", 3, api_name="/generate", refused="draft is empty")
        self.call("bad: over the cap", p, "", "", cap + 1, api_name="/generate", refused=f"capped at {cap}")
        self.call("bad: wrong type", p, "", "", 3, "hot", api_name="/generate", refused="temperature must be a number")
        self.call("bad: wrong type", p, "", "", 10**6, api_name="/candidates", refused="n must be from 1 to 50")
        self.call("bad: wrong type", 5, "", api_name="/check", refused="must be text")
        self.call("bad: wrong type", p, "", "", "continue", 0.8, 50, 0.95, 1.1, 3, "x", 0,
                  api_name="/studio_generate", refused="seed (-1 = random) must be a number")
        out = self.call("studio_generate", "", "", *settings(self.i, 3), api_name="/studio_generate")
        self.expect(out is not None and "draft is empty" in out[1], f"empty page draft: {out!r}")

    def page_generate(self) -> None:
        """The page's Generate on the session's own draft: the text grows from the secret."""
        out = self.call("studio_generate", self.secret, "", *settings(self.i, self.plan.tokens),
                        api_name="/studio_generate")
        if out is not None:
            editor, status = out[:2]  # then the page's revision token
            self.expect(editor.startswith(self.secret) and "tokens" in status, f"page generate: {out!r}")
            self.secret = editor  # saved as it streamed (studio/ui/callbacks.py)

    def look_for_other_sessions(self) -> None:
        others = {i: v for i, v in self.shared.items() if i != self.i}
        listed = self.call("studio_list_drafts", api_name="/studio_list_drafts")
        if listed is not None:
            ids = [c[1] for c in listed.get("choices", [])]
            self.expect(ids == [self.draft_id], f"lists drafts {ids}, owns only {self.draft_id}")
            for owner, draft_id, secret in others.values():
                self.expect(all(secret[:30] not in c[0] for c in listed.get("choices", [])),
                            "another session's text is listed")
        for _, draft_id, _ in list(others.values())[:2]:
            view = self.call("studio_open_draft", draft_id, api_name="/studio_open_draft")
            self.expect(view is not None and "no longer exists" in view[-1], f"opened draft {draft_id}: {view and view[-1]}")
        copy = self.browser_copy(self.secret)
        if copy:
            d = copy["draft"]
            self.expect(copy["owner"] == self.owner and d["id"] == self.draft_id and d["text"] == self.secret
                        and d["constraints"] == [self.spec], "its draft or rules changed under it")
        for owner, _, _ in others.values():
            self.expect(owner != self.owner, "two sessions share an owner")


def run_sessions(url: str, n: int, plan: Plan) -> Outcome:
    """``n`` sessions at once, each its own browser; returns what happened."""
    out, shared = Outcome(), {}
    gate = threading.Barrier(n)

    def one(i: int) -> None:
        try:
            Session(i, url, plan, out, shared, gate).run()
        except Exception as e:  # noqa: BLE001  (the harness itself: reported, never hidden)
            out.problem(i, f"the session failed: {type(e).__name__}: {e}")
            gate.abort()

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))
    return out


# ----------------------------------------------------------------- throughput


def throughput(url: str, n: int, tokens: int, wait: float = 600) -> tuple[float, int, float]:
    """``n`` writers generate at once (the page's Generate); (tokens/s over all of them,
    tokens, wall seconds from the common start to the last one done)."""
    from gradio_client import Client

    clients = [Client(url, verbose=False) for _ in range(n)]
    gate = threading.Barrier(n + 1)

    def one(i: int) -> int:
        gate.wait(timeout=wait)
        editor, status, _revision = clients[i].submit(PROMPTS[i % len(PROMPTS)], "", *settings(i, tokens),
                                                      api_name="/studio_generate").result(timeout=wait)
        m = re.search(r"(\d+) tokens", status)
        if not m:
            raise RuntimeError(f"no token count in the status: {status!r}")
        return int(m.group(1))

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        gate.wait(timeout=wait)
        t = time.perf_counter()
        counts = [f.result() for f in futures]
        wall = time.perf_counter() - t
    return sum(counts) / wall, sum(counts), wall


# ----------------------------------------------------------------- figures


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def latency_rows(calls: list[Call]) -> list[str]:
    kinds: dict[str, list[Call]] = {}
    for c in calls:
        kinds.setdefault(c.kind, []).append(c)
    rows = []
    for kind, cs in sorted(kinds.items()):
        s = [c.seconds for c in cs]
        refused = sum(not c.ok for c in cs)
        rows.append(f"  {kind:<32} {len(cs):>4} ({refused:>3} refused)  p50 {percentile(s, .5):7.2f} s"
                    f"  p95 {percentile(s, .95):7.2f} s")
    s = [c.seconds for c in calls]
    rows.append(f"  {'all requests':<32} {len(calls):>4}                p50 {percentile(s, .5):7.2f} s"
                f"  p95 {percentile(s, .95):7.2f} s")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--writers", type=int, default=8, help="concurrent writers for tokens/s (against 1)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the tokens/s runs")
    ap.add_argument("--tokens", type=int, default=24, help="budget of each generation in the session mix")
    ap.add_argument("--throughput-tokens", type=int, default=48)
    ap.add_argument("--model", choices=("real", "tiny"), default="real")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    os.environ.setdefault("PEREC_CACHE", str(ROOT / ".cache" / "perec"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    engine = load_engine(args.model)
    plan = Plan(tokens=args.tokens)
    cmd = "python bench/load.py " + " ".join(sys.argv[1:])
    lines = ["```", f"$ {cmd}",
             f"model {engine.name}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, "
             f"load average before {os.getloadavg()[0]:.1f}; Space mode, loopback"]
    tput: dict[tuple[bool, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        apps = {b: launch(engine, Path(tmp) / f"data-{b}", batching=b, cap=plan.cap) for b in (True, False)}
        for b, (demo, url) in apps.items():
            t = time.perf_counter()
            out = run_sessions(url, args.sessions, plan)
            wall = time.perf_counter() - t
            name = "batched (default)" if b else "not batched (PEREC_BATCHING=0, concurrency 2)"
            lines += ["", f"{args.sessions} sessions, {name}: {len(out.calls)} requests in {wall:.0f} s, "
                          f"{len(out.problems)} contract problems"]
            lines += latency_rows(out.calls)
            lines += [f"  PROBLEM {p}" for p in out.problems[:20]]
        for r in range(args.rounds):  # interleaved: each round measures every configuration once
            for b in (True, False):
                for n in (1, args.writers):
                    tps, toks, wall = throughput(apps[b][1], n, args.throughput_tokens)
                    tput.setdefault((b, n), []).append(tps)
                    print(f"round {r + 1}: batching={b} writers={n}: {toks} tokens in {wall:.1f} s = {tps:.1f} tok/s",
                          flush=True)
        for demo, _ in apps.values():
            demo.close()
    lines += ["", f"aggregate tokens/s, {args.throughput_tokens}-token generations through the page's Generate, "
                  f"{args.rounds} interleaved rounds (median [min, max])"]
    for b in (True, False):
        one, many = tput[(b, 1)], tput[(b, args.writers)]
        ratios = [m / o for m, o in zip(many, one)]
        lines.append(f"  {'batched    ' if b else 'not batched'}  1 writer {fmt(one)}  {args.writers} writers "
                     f"{fmt(many)}  ratio {fmt(ratios, 'x')}")
    lines.append("```")
    from studio.benchmark import write_report

    write_report("\n".join(lines) + "\n", "load", "cpu", args.out)


def fmt(xs: list[float], unit: str = "") -> str:
    return f"{statistics.median(xs):.2f}{unit} [{min(xs):.2f}, {max(xs):.2f}]"


def load_engine(which: str):
    if which == "real":
        import studio

        return studio.load()
    from transformers import AutoTokenizer

    from models.loading import embedded_path
    from studio.decode.engine import Engine
    from tests.conftest import make_tiny_lm

    return Engine(make_tiny_lm(AutoTokenizer.from_pretrained(str(embedded_path()[0]))))


if __name__ == "__main__":
    main()
