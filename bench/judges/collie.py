"""COLLIE's own checker (``collie-bench`` on PyPI), fed COLLIE's constraint trees.

COLLIE (Yao et al. 2023) judges a text with its ``collie.constraints`` objects: a leaf
``Constraint(InputLevel, TargetLevel, Transformation, Relation, Reduction)`` and the
logic nodes ``All`` / ``And`` / ``Or``.  Our data (../shared/data/collie-dev.jsonl) keeps
each instance's constraint as a JSON tree; ``build`` turns it back into those objects and
``judge`` calls their own ``check(text, targets)``.  Nothing here decides what passes:
that is COLLIE's code, so this is the field's yardstick beside our own checker.

COLLIE splits with NLTK's ``sent_tokenize`` / ``word_tokenize`` (the trained English
Punkt, then Treebank).  Its checker runs unpatched: bench/judges/punkt_data.py writes NLTK's
``punkt_tab/english`` files from the ``punkt`` package (the same trained parameters Perec's
rules split with, constraints/units.py) and puts them on ``nltk.data.path``, so NLTK serves
``sent_tokenize`` itself, offline.  (Until issue 17 this module replaced the two functions
by an untrained Punkt; bench/results/collie.md keeps the figures judged that way.)
"""

from __future__ import annotations

import collie.constraints as C

from bench.judges.punkt_data import install

LEVELS = (None, "character", "word", "sentence", "paragraph", "passage")
RELATIONS = ("==", "!=", "<", ">", "<=", ">=", "in", "not in")
REDUCTIONS = ("all", "any", "at least", "at most", "exactly")

# NLTK's trained punkt data where nltk.sent_tokenize looks for it (written once, offline).
install()


class TreeError(ValueError):
    """A constraint tree this module cannot rebuild; the message names the node."""


# ------------------------------------------------------------------ the tree

def _where(path: str) -> str:
    return path or "the root"


def _transformation(node, path: str):
    """{"count": t} / {"position": p} / {"for_each": inner|null} / {"aggregate": inner} /
    {"max": inner} -> COLLIE's Transformation object."""
    if not isinstance(node, dict) or len(node) != 1:
        raise TreeError(f"transformation at {_where(path)} must be one-key object, got {node!r}")
    (kind, arg), = node.items()
    here = f"{path}.{kind}"
    if kind == "count":
        return C.Count(arg)
    if kind == "position":
        if not (isinstance(arg, int) or (isinstance(arg, list) and all(isinstance(i, int) for i in arg))):
            raise TreeError(f"position at {here} must be an integer or a list of integers, got {arg!r}")
        return C.Position(arg)
    if kind == "for_each":
        return C.ForEach(Ellipsis if arg is None else _transformation(arg, here))
    if kind == "aggregate":
        return C.Aggregate(_transformation(arg, here))
    if kind == "max":
        return C.Max(_transformation(arg, here))
    raise TreeError(f"unknown transformation {kind!r} at {_where(path)}")


def _leaf(node: dict, path: str) -> C.Constraint:
    for key in ("input_level", "target_level", "transformation", "relation", "reduction"):
        if key not in node:
            raise TreeError(f"constraint leaf at {_where(path)} has no {key!r}")
    for key in ("input_level", "target_level"):
        if node[key] not in LEVELS:
            raise TreeError(f"unknown {key} {node[key]!r} at {_where(path)}")
    if node["relation"] not in RELATIONS:
        raise TreeError(f"unknown relation {node['relation']!r} at {_where(path)}")
    red = node["reduction"]
    if red is not None:
        if not (isinstance(red, list) and len(red) == 2 and red[0] in REDUCTIONS):
            raise TreeError(f"bad reduction {red!r} at {_where(path)}")
        reduction = C.Reduction(red[0], red[1])
    else:
        reduction = None
    return C.Constraint(
        C.InputLevel(node["input_level"]),
        C.TargetLevel(node["target_level"]),
        _transformation(node["transformation"], f"{path}.transformation".lstrip(".")),
        C.Relation(node["relation"]),
        reduction,
    )


def build(node, path: str = ""):
    """A COLLIE constraint object from the JSON tree of ../shared/data/README.md."""
    if not isinstance(node, dict):
        raise TreeError(f"constraint node at {_where(path)} must be an object, got {node!r}")
    if "all" in node:
        return C.All(*[build(c, f"{path}.all[{i}]".lstrip(".")) for i, c in enumerate(node["all"])])
    for key, cls in (("and", C.And), ("or", C.Or)):
        if key in node:
            parts = node[key]
            if not (isinstance(parts, list) and len(parts) == 2):
                raise TreeError(f"'{key}' at {_where(path)} needs exactly two children")
            return cls(*[build(c, f"{path}.{key}[{i}]".lstrip(".")) for i, c in enumerate(parts)])
    return _leaf(node, path)


def judge(text: str, record: dict) -> bool:
    """COLLIE's verdict on ``text`` for one instance (its ``constraint`` and ``targets``)."""
    return bool(build(record["constraint"]).check(text, record["targets"]))

