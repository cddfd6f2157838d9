"""The llama.cpp probe (models/llama_probe.py): a build that dies on its first forward is
found in a child process, remembered per build, and the torch engine runs instead."""

import json

import torch

from models import llama_probe
from models.loading import embedded_gguf, pick_backend

CRASH = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
FAIL = "import sys; sys.stderr.write('ggml: no backend\\n'); sys.exit(3)"


def test_a_child_that_crashes_is_named_by_its_signal():
    why = llama_probe.run_probe(embedded_gguf(), child=CRASH)
    assert "crashes on this CPU" in why and "SIGSEGV" in why and "make llama-rebuild" in why


def test_a_child_that_fails_says_its_last_line():
    why = llama_probe.run_probe(embedded_gguf(), child=FAIL)
    assert "failed its first forward" in why and "ggml: no backend" in why


def test_the_verdict_is_kept_per_build(tmp_path, monkeypatch):
    calls = []

    def probe(gguf, child=llama_probe._CHILD):
        calls.append(gguf)
        return "this build of llama-cpp-python crashes on this CPU (SIGSEGV on its first forward)"

    monkeypatch.setattr(llama_probe, "run_probe", probe)
    first = llama_probe.probe_failure(embedded_gguf(), tmp_path)
    again = llama_probe.probe_failure(embedded_gguf(), tmp_path)
    assert first == again and "SIGSEGV" in first and len(calls) == 1  # asked once, then read back
    [record] = tmp_path.glob("llama-probe-*.json")
    assert json.loads(record.read_text()) == {"failure": first}


def test_a_crashing_build_leaves_the_torch_engine_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PEREC_CACHE", str(tmp_path))
    monkeypatch.setattr(llama_probe, "run_probe", lambda gguf, child=None: "this build crashes (SIGSEGV)")
    monkeypatch.delenv("PEREC_BACKEND", raising=False)
    backend, line = pick_backend(None, torch.device("cpu"))
    assert backend == "torch" and line.startswith("The slower torch engine runs: this build crashes (SIGSEGV)")
