"""The Space installs requirements.txt, not the project: every runtime dependency of the
project must be there, or the Space fails at its first import."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_requirements_txt_holds_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]} - {"gradio"}  # the Space's sdk_version
    lines = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith(("#", "-"))]
    have = {_name(ln) for ln in lines}
    assert wanted <= have, f"missing from requirements.txt: {sorted(wanted - have)}"
    # The CPU engine too: without it a free Space runs the slower torch engine.
    assert "llama-cpp-python" in have
