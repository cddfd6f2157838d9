"""Bulk generation: a JSONL file of requests in, a JSONL file of results out.

Each input line is a request (studio.request.Request.from_dict): prompt, constraints, form,
given, mode, settings, steering, variants, and an ``id``.  Each output line holds the same
fields as ``perec generate --json`` plus the request's ``id`` (with variants:
``{"id", "variants": [...]}``); a request that cannot run becomes ``{"id", "error"}``.

Resuming: the ids already in the output are skipped, so a run that stopped (Ctrl-C, a
crash, kill -9) goes on where it was.  Lines are written whole and flushed one at a time;
a last line cut short by a crash is dropped on resume.  Lines come out in the order the
requests finish.

The default backend is our engine with batched rows (studio/decode/loop.py): up to
``rows`` requests decode together, and a finished one's place goes to the next request at
once (continuous batching).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from studio.request import Prepared, Request, RequestError, prepare

DEFAULT_ROWS = 8


@dataclass
class Line:
    """One input line: its id and the request, or why it cannot run."""

    id: str
    request: Request | None = None
    error: str = ""


def read_requests(path: str | Path) -> Iterator[Line]:
    """The requests of a JSONL file, line by line; a bad line becomes an error Line (its id
    is the one it gives, or ``line-N``)."""
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise RequestError(f"no such file: {path}") from None
    with f:
        seen: set[str] = set()
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            rid = f"line-{n}"
            try:
                d = json.loads(raw)
            except json.JSONDecodeError as e:
                yield Line(rid, error=f"line {n} is not JSON: {e.msg} at column {e.colno}")
                continue
            if isinstance(d, dict) and d.get("id") is not None:
                rid = str(d["id"])
            if rid in seen:
                yield Line(f"{rid}#line-{n}", error=f"line {n}: the id {rid!r} is used by an earlier line")
                continue
            seen.add(rid)
            try:
                req = Request.from_dict(d)
            except (ValueError, TypeError) as e:
                yield Line(rid, error=f"line {n}: {e}")
                continue
            req.id = rid
            yield Line(rid, req)


def finished_ids(out: str | Path) -> set[str]:
    """The ids already written to ``out``; a last line cut short by a crash is removed."""
    p = Path(out)
    if not p.exists():
        return set()
    data = p.read_bytes()
    good_end = data.rfind(b"\n") + 1
    if good_end < len(data):  # a partial last line: drop it, keep every whole one
        with open(p, "r+b") as f:
            f.truncate(good_end)
        data = data[:good_end]
    ids = set()
    for raw in data.decode("utf-8", errors="replace").splitlines():
        try:
            d = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(d, dict) and "id" in d:
            ids.add(str(d["id"]))
    return ids


class Writer:
    """Appends one whole JSON line per result, flushed to disk before the next."""

    def __init__(self, path: str | Path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, obj: dict) -> None:
        self.f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


@dataclass
class Progress:
    """Counts for the progress line: requests done, tokens, seconds."""

    total: int
    done: int = 0
    errors: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def tokens_per_second(self) -> float:
        dt = time.perf_counter() - self.started
        return self.tokens / dt if dt > 0 else 0.0


def result_line(rid: str, prepared: Prepared, results) -> dict:
    results = [prepared.finish(r) for r in results]
    if prepared.request.variants > 1:
        return {"id": rid, "variants": [r.to_dict() for r in results]}
    return dict(results[0].to_dict(), id=rid)


def run_engine(lines: list[Line], engine, writer: Writer, progress: Progress, rows: int = DEFAULT_ROWS,
               on_update: Callable[[Progress], None] | None = None) -> None:
    """Decode ``lines`` with our engine, ``rows`` at a time in one batch."""
    from studio.decode.loop import Decoder

    decoder = Decoder(engine)
    todo = iter(lines)
    live: dict[str, tuple[Prepared, list]] = {}  # id -> (prepared, its rows)

    def fail(rid: str, msg: str) -> None:
        writer.write({"id": rid, "error": msg})
        progress.done += 1
        progress.errors += 1

    def admit() -> bool:
        for line in todo:
            if line.request is None:
                fail(line.id, line.error)
                continue
            try:
                prepared = prepare(line.request, engine)
                gens = engine.variant_rows(prepared.prompt, prepared.constraint, prepared.settings,
                                           line.request.mode, line.request.variants, **prepared.steer)
                decoder.add_copies(gens)
            except (ValueError, TypeError) as e:
                fail(line.id, str(e))
                continue
            for g in gens:
                g.batch_id = line.id
            live[line.id] = (prepared, gens)
            return True
        return False

    while True:
        while len(decoder) < rows and admit():
            pass
        if not len(decoder):
            break
        for g in decoder.step():
            progress.tokens += g.result.tokens if g.result is not None else 0
            if g.batch_id not in live:
                continue  # its request's line is written (its variants finished in one step)
            prepared, gens = live[g.batch_id]
            if not all(x.done for x in gens):
                continue
            live.pop(g.batch_id, None)
            errors = [x.error for x in gens if x.error is not None]
            if errors:
                fail(g.batch_id, f"{type(errors[0]).__name__}: {errors[0]}")
            else:
                writer.write(result_line(g.batch_id, prepared, [x.result for x in gens]))
                progress.done += 1
            if on_update:
                on_update(progress)


def run_batch(in_path: str | Path, out_path: str | Path, engine=None, backend: str = "perec",
              rows: int = DEFAULT_ROWS, model: str | None = None, show: bool = True) -> Progress:
    """Run every request of ``in_path`` not yet in ``out_path``; returns the counts."""
    if rows < 1:
        raise RequestError(f"rows must be >= 1 (got {rows})")
    if Path(out_path).resolve() == Path(in_path).resolve():
        raise RequestError("--out must not be the input file")
    done = finished_ids(out_path)
    lines = [ln for ln in read_requests(in_path) if ln.id not in done]
    progress = Progress(total=len(lines))
    bar = _bar(progress, len(done)) if show else None
    writer = Writer(out_path)
    try:
        if backend == "perec":
            if engine is None:
                from studio.api import load

                engine = load(model)
            run_engine(lines, engine, writer, progress, rows, on_update=bar)
        elif backend == "vllm":
            run_vllm(lines, writer, progress, model, on_update=bar)
        else:
            raise RequestError(f"unknown backend '{backend}' (perec or vllm)")
    finally:
        writer.close()
        if bar:
            bar(progress, final=True)
    return progress


def run_vllm(lines: list[Line], writer: Writer, progress: Progress, model: str | None = None,
             on_update: Callable[[Progress], None] | None = None) -> None:
    """The same lines through vLLM with Perec's rules as its logits processor
    (studio/bridges/vllm.py); requests it cannot honour come back as error lines."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise RequestError(f"the vLLM backend needs vLLM ({e}): run `make vllm` and use .venv-vllm") from None
    from studio.bridges.vllm import make_llm, run_batch

    for line in lines:
        if line.request is None:
            writer.write({"id": line.id, "error": line.error})
            progress.done += 1
            progress.errors += 1
    good = [ln.request for ln in lines if ln.request is not None]
    if good:
        for obj in run_batch(good, llm=make_llm(model)):
            writer.write(obj)
            progress.done += 1
            progress.errors += "error" in obj
            progress.tokens += obj.get("tokens", 0)
            if on_update:
                on_update(progress)


def _bar(progress: Progress, skipped: int):
    """A progress line on stderr: requests done, errors, tokens/s."""
    import sys

    from tqdm import tqdm

    t = tqdm(total=progress.total, unit="req", file=sys.stderr, dynamic_ncols=True,
             desc=f"perec batch ({skipped} done before)" if skipped else "perec batch")

    def update(p: Progress, final: bool = False) -> None:
        t.n = p.done
        t.set_postfix(tok_s=f"{p.tokens_per_second:.1f}", errors=p.errors, refresh=False)
        t.refresh()
        if final:
            t.close()

    return update
