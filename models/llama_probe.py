"""Whether this machine's build of llama.cpp survives a forward, asked once per build.

A build of llama-cpp-python can import and still kill the process on its first forward:
ggml built for the CPU it was compiled on uses every instruction that CPU lists, and some
machines list one they cannot run (on this project's CI machines, the AMX tile
instructions under a VM: ``ldtilecfg`` faults in ``ggml_backend_amx_mul_mat``).  A Space
that loaded it would die on the first request.  So before the engine is chosen, a child
process loads a GGUF file and decodes two tokens; if it dies, the torch engine runs and the
studio says why in one line.  The verdict is kept on disk per build of the library (its
files' sizes and times), so the child runs once, not at every start.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

PROBE_TIMEOUT = 120  # seconds: loading a small GGUF and two tokens take about one

# Runs in the child: load the file, decode two tokens of one sequence.
_CHILD = r"""
import sys
import llama_cpp
m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_batch=8, verbose=False)
m.eval(m.tokenize(b"The sea")[:2])
print("ok")
"""


def _build_key() -> str | None:
    """A name for the installed build of the library (its shared objects' sizes and times)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(list(spec.submodule_search_locations)[0]) / "lib"
    files = sorted(lib.glob("*.so*")) if lib.is_dir() else []
    stamp = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files]
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]


def run_probe(gguf: Path, child: str = _CHILD) -> str | None:
    """Load ``gguf`` and decode in a child process: None when it works, else why not."""
    try:
        out = subprocess.run([sys.executable, "-c", child, str(gguf)], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    except subprocess.TimeoutExpired:
        return f"llama.cpp did not finish a two-token forward in {PROBE_TIMEOUT} s on this machine"
    if out.returncode < 0:
        try:
            name = signal.Signals(-out.returncode).name
        except ValueError:
            name = f"signal {-out.returncode}"
        return (f"this build of llama-cpp-python crashes on this CPU ({name} on its first forward; "
                "`make llama-rebuild` builds it again without what crashed)")
    if out.returncode != 0 or "ok" not in out.stdout:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return f"llama-cpp-python failed its first forward here ({last[:200]})"
    return None


def probe_failure(gguf: Path, cache: Path) -> str | None:
    """Why llama.cpp cannot run ``gguf`` here (None: it can), from the verdict kept in
    ``cache`` for this build, else from a new probe (then kept)."""
    key = _build_key()
    if key is None:
        return "llama-cpp-python is not installed"
    record = cache / f"llama-probe-{key}.json"
    try:
        return json.loads(record.read_text())["failure"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    failure = run_probe(gguf)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"failure": failure}))
        os.replace(tmp, record)  # whole or not at all: a reader never sees half a verdict
    except OSError:
        pass  # a read-only cache: probe again next start
    return failure


__all__ = ["probe_failure", "run_probe", "PROBE_TIMEOUT"]
