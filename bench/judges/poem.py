"""A field-style judge of whole poems (haiku, limerick, sonnet, ...), independent of
constraints/: the FUDGE metric's reading (bench/judges/fudge.py) applied line by line.

- **lines**: the poem has the form's number of non-empty lines;
- **syllables**: each line's count by first CMU pronunciations (fudge.count_syllables);
- **rhyme**: lines sharing a letter end in words of one perfect-rhyme group (phyme's,
  fudge.rhymes), and in different words;
- **metre** (iambic forms only): each line is iambic by fudge.is_iambic.

``judge(poem, syllables, scheme, iambic)`` gives the reasons a poem fails ([] = it passes).
"""

from __future__ import annotations

from judges.fudge import count_syllables, is_iambic, last_piece, rhymes

FORMS = {  # name: (syllables per line, rhyme scheme, iambic)
    "haiku": ((5, 7, 5), "---", False),
    "limerick": ((8, 8, 5, 5, 8), "AABBA", False),
    "sonnet": ((10,) * 14, "ABABCDCDEFEFGG", False),
    "sonnet-iambic": ((10,) * 14, "ABABCDCDEFEFGG", True),
}


def judge(poem: str, syllables: tuple[int, ...], scheme: str, iambic: bool = False) -> list[str]:
    lines = [ln for ln in poem.split("\n") if ln.strip()]
    if len(lines) != len(syllables):
        return [f"{len(lines)} lines, not {len(syllables)}"]
    reasons = []
    for i, (ln, n) in enumerate(zip(lines, syllables), 1):
        got = count_syllables(ln)
        if got != n:
            reasons.append(f"line {i}: {got} syllables, not {n}")
        if iambic and not is_iambic(ln):
            reasons.append(f"line {i}: not iambic")
    groups: dict[str, list[int]] = {}
    for i, letter in enumerate(scheme):
        if letter != "-":
            groups.setdefault(letter, []).append(i)
    for letter, idx in groups.items():
        first = lines[idx[0]]
        words = [last_piece(lines[i]).lower() for i in idx]
        for i in idx[1:]:
            if not rhymes(first, lines[i]):
                reasons.append(f"line {i + 1} does not rhyme ({letter}): {words[0]!r} / {last_piece(lines[i])!r}")
        if len(set(words)) < len(words):
            reasons.append(f"rhyme {letter} repeats a word: {words}")
    return reasons
