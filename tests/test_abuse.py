"""The abuse test's small form (issue 16, item 6): bench/abuse.py's attacks, each just past
its cap, against a Space-mode studio on the tiny model, launched in this process on
127.0.0.1, while one ordinary writer generates.  Every loop is bounded in count and every
request in time (Counts.quick: the whole run stays within about a minute here).

Asserted, as the bench reports them: the server is alive after every attack and at the
end, its RSS stays under the bound, and every abusive request is refused in one clean line
that names the cap's setting (or, for a page-only event sent garbage, is refused at all).
The ordinary writer's latency (the 2x criterion) is the bench's figure, never a timed
assert here: bench/results/abuse-cpu.md, on the real model.
"""

from __future__ import annotations

import pytest

gradio_client = pytest.importorskip("gradio_client")

from bench.abuse import RSS_BOUND, Counts, Harness, Server, run  # noqa: E402
from bench.load import launch  # noqa: E402

DRAFTS_CAP = 20  # PEREC_MAX_DRAFTS, small here so the quick form's creations run past it


@pytest.fixture
def space(tiny_engine, tmp_path, monkeypatch):
    from models.loading import PROGRESS

    # The loader's progress is one per process: a Hub id the Space refuses must not leave
    # it "failed" for the tests that run after this one in the same process.
    progress = dict(vars(PROGRESS))
    monkeypatch.setenv("PEREC_MAX_DRAFTS", str(DRAFTS_CAP))
    demo, url = launch(tiny_engine, tmp_path, batching=True, cap=24)
    server = Server(tmp_path, {}, demo=demo, url=url)
    try:
        yield server
    finally:
        server.stop()
        vars(PROGRESS).clear()
        vars(PROGRESS).update(progress)


def test_no_visitor_breaks_the_space(space):
    counts = Counts.quick()
    assert counts.drafts > DRAFTS_CAP  # the creations must run past the cap to test it
    report = run(space, counts, log=lambda line: print(line, flush=True))
    print(report.markdown("pytest tests/test_abuse.py", "-", "tiny, in-process"))

    assert [a.name for a in report.attacks] == list(Harness.ATTACKS)  # every attack was made
    assert not report.deaths, report.deaths
    assert all(a.alive_after for a in report.attacks)
    assert report.peak_rss < RSS_BOUND, f"peak RSS {report.peak_rss / 2**30:.2f} GB"
    failing = {a.name: a.problems for a in report.attacks if a.problems}
    assert not failing, "\n".join(f"{name}: {p}" for name, ps in failing.items() for p in ps)
    # The writer kept writing through it all (whatever it took: the bench times it).
    assert report.unloaded and all(r.status == "answered" for r in report.unloaded)
    assert report.loaded and all(r.status == "answered" for _, r in report.loaded)
