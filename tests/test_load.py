"""The load test's contract, bounded: concurrent gradio_client sessions against a local
studio in Space mode (loopback), on the tiny model with budgets of a few tokens; sixteen
with batched decoding, eight without (the old path decodes two at a time; the whole file
stays within about a minute here).  Each session runs bench/load.py's script: /generate
streamed, /candidates, /check, /variants, /stop mid-generation, the page's own endpoints,
and bad inputs; the contract:

- every request gets its result or one clear error (one line that names the problem);
- no session sees another's drafts or settings.

The figures (latency, tokens/s on the real model) are bench/load.py's, in bench/results/.
"""

from __future__ import annotations

import pytest

gradio_client = pytest.importorskip("gradio_client")

from bench.load import Plan, latency_rows, launch, run_sessions  # noqa: E402

# A request that has not answered after this long is unanswered (a hang, not slowness).
PLAN = Plan(tokens=4, stop_tokens=24, cap=24, candidates=5, wait=120)
# What each session's script asks (bench/load.py Session.run), refused or answered.
PER_SESSION = {"studio_apply_spec": 1, "studio_check": 2, "generate (streamed)": 1, "candidates": 1, "check": 1,
               "variants": 1, "stop": 1, "stop: until the generation ends": 1, "generate (stopped)": 1,
               "bad: spec": 2, "bad: empty draft": 1, "bad: over the cap": 1, "bad: wrong type": 4,
               "studio_generate": 2, "studio_list_drafts": 1, "studio_open_draft": 2}


@pytest.mark.parametrize("batching, sessions", [(True, 16), (False, 8)], ids=["batched", "not-batched"])
def test_concurrent_sessions_keep_the_contract(tiny_engine, tmp_path, batching, sessions):
    demo, url = launch(tiny_engine, tmp_path, batching=batching, cap=PLAN.cap)
    try:
        out = run_sessions(url, sessions, PLAN)
    finally:
        demo.close()
    print("\n".join(latency_rows(out.calls)))
    assert not out.problems, "\n".join(out.problems)
    asked: dict[str, int] = {}
    for c in out.calls:
        if c.kind != "generate: first piece":
            asked[c.kind] = asked.get(c.kind, 0) + 1
    assert asked == {k: sessions * v for k, v in PER_SESSION.items()}
    refused = {c.kind for c in out.calls if not c.ok}
    assert refused == {"bad: spec", "bad: empty draft", "bad: over the cap", "bad: wrong type"}
