"""IFEval's own checker (lm-eval's ``lm_eval/tasks/ifeval``), unpatched.  Bench-only.

``lm-eval`` is installed ``--no-deps`` (Makefile setup) with ``langdetect`` and
``immutabledict`` (the ``bench`` extra): the checker needs only those and nltk.  Its three
modules (``instructions_util``, ``instructions``, ``instructions_registry``) and
``utils.test_instruction_following_strict`` / ``_loose`` import each other as
``lm_eval.tasks.ifeval.*``; but ``lm_eval/tasks/__init__.py`` imports lm-eval's task
manager, which needs datasets, sacrebleu, evaluate and the rest of the harness.  So this
module registers ``lm_eval.tasks`` as a bare package (its folder, its ``__init__`` not run)
and imports the ifeval modules from it: the checker's code runs as shipped.

Sentences: ``instructions_util.count_sentences`` loads ``tokenizers/punkt/english.pickle``,
which NLTK 3.10 serves from the trained ``punkt_tab/english`` data that
bench/judges/punkt_data.py writes (``install``, before the import, so lm-eval's own
``download_nltk_resources`` finds the data and downloads nothing).  Languages: langdetect,
seeded (``DetectorFactory.seed``) so that a verdict does not change from run to run.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import sys
import types
from pathlib import Path

from bench.judges.punkt_data import install


def _load():
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("IFEval's checker needs lm-eval: pip install --no-deps lm-eval langdetect immutabledict")
    tasks = Path(list(spec.submodule_search_locations)[0]) / "tasks"
    if "lm_eval.tasks" not in sys.modules:
        importlib.import_module("lm_eval")
        pkg = types.ModuleType("lm_eval.tasks")
        pkg.__path__ = [str(tasks)]
        sys.modules["lm_eval.tasks"] = pkg
    install()
    # langdetect samples at random unless seeded: the same answer must get the same verdict
    # in every run (the checker's code is unchanged; this fixes only its random draws).
    import langdetect

    langdetect.DetectorFactory.seed = 0
    return importlib.import_module("lm_eval.tasks.ifeval.utils")


_utils = _load()


def _example(record: dict):
    return _utils.InputExample(key=record["key"], instruction_id_list=record["instruction_id_list"],
                               prompt=record["prompt"], kwargs=record["kwargs"])


def judge(record: dict, response: str) -> dict:
    """IFEval's verdict on ``response`` for one prompt: {"strict": [bool per instruction],
    "loose": [...]} (loose also tries the response without its first / last line and
    without asterisks, as the paper's loose accuracy does)."""
    inp = _example(record)
    # The checker draws at random where an argument is not one it takes (a "letter" such
    # as '#' becomes a random letter): seeded per prompt, so a verdict is reproducible.
    random.seed(f"ifeval:{record['key']}")
    strict = _utils.test_instruction_following_strict(inp, response)
    loose = _utils.test_instruction_following_loose(inp, response)
    return {"strict": list(strict.follow_instruction_list), "loose": list(loose.follow_instruction_list)}


def instruction_types() -> list[str]:
    """Every instruction id the checker knows."""
    from lm_eval.tasks.ifeval import instructions_registry

    return sorted(instructions_registry.INSTRUCTION_DICT)
