"""Perec: write under constraints with a language model.

The headless API (see studio/api.py):

    from studio import generate, stream, candidates, check, score, logits_processor

Names are imported on first use (none of them shares a name with a module of the package,
which would shadow it once imported), so ``perec check`` and ``perec constraints`` (which need
no model) never import torch or transformers.
"""

from importlib import import_module

_EXPORTS = {
    "generate": "studio.api", "stream": "studio.api", "candidates": "studio.api",
    "check": "studio.api", "score": "studio.api", "load": "studio.api",
    "logits_processor": "studio.api", "as_constraint": "studio.api", "variants": "studio.api",
    "run": "studio.api",
    "Engine": "studio.decode.engine", "Generation": "studio.decode.engine",
    "Result": "studio.decode.engine", "PromptError": "studio.decode.engine",
    "Settings": "studio.decode.settings",
    "Request": "studio.request", "Steering": "studio.request",
    "parse_spec": "constraints.spec", "parse_specs": "constraints.spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'studio' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
