"""Perec: write under constraints with a language model.

The headless API (see studio/api.py):

    from studio import generate, stream, candidates, check, score, logits_processor
"""

from .api import as_constraint, candidates, check, generate, load, logits_processor, score, stream
from .engine import Engine, Generation, PromptError, Result
from .sampling import Settings
from .spec import parse_spec, parse_specs

__all__ = [
    "generate", "stream", "candidates", "check", "score", "load", "logits_processor",
    "as_constraint", "parse_spec", "parse_specs", "Engine", "Generation", "Result", "Settings",
    "PromptError",
]
