"""A tiny FileCheck for printed-IR golden tests.

`filecheck(text, checks)` reads directives from `checks`, one per line (anything before the
directive, such as `//` or `#`, is ignored; lines without one are skipped):
- `CHECK: pat`       pat occurs at or after the end of the previous match;
- `CHECK-NEXT: pat`  pat occurs on the line right after the previous match's line;
- `CHECK-SAME: pat`  pat occurs on the previous match's line, after the previous match;
- `CHECK-NOT: pat`   pat does not occur between the previous match and the next positive
                     match (or the end of the text, or of the current label's section);
- `CHECK-LABEL: pat` like CHECK, but labels are found first and split the text into
                     sections: the checks after a label only match inside its section.
Patterns are plain substrings, with leading and trailing spaces stripped. A failure raises
AssertionError showing the directive, its line in `checks`, and the text with line numbers
and a `>` at the line where the search started.
"""
from __future__ import annotations

import bisect
import re

_DIRECTIVE = re.compile(r"\b(CHECK(?:-NEXT|-NOT|-SAME|-LABEL)?):(.*)$")


def _directives(checks: str) -> list[tuple[str, str, int]]:
    out = []
    for n, line in enumerate(checks.splitlines(), 1):
        m = _DIRECTIVE.search(line)
        if m:
            pat = m.group(2).strip()
            if not pat:
                raise ValueError(f"check line {n}: empty pattern in {line.strip()!r}")
            out.append((m.group(1), pat, n))
    if not out:
        raise ValueError("no CHECK directives found")
    if out[0][0] in ("CHECK-NEXT", "CHECK-SAME"):
        raise ValueError(f"check line {out[0][2]}: {out[0][0]} cannot be the first directive")
    return out


def _fail(text: str, kind: str, pat: str, n: int, line: int, why: str) -> None:
    shown = [f"{'>' if k == line else ' '} {k + 1:4d} | {s}"
             for k, s in enumerate(text.splitlines()) if abs(k - line) <= 12 or k < 3]
    raise AssertionError(f"{kind}: {pat!r} (check line {n}) {why}\n"
                         f"searched from input line {line + 1}:\n" + "\n".join(shown))


def filecheck(text: str, checks: str) -> None:
    directives = _directives(checks)
    starts = [0] + [m.end() for m in re.finditer("\n", text)]  # offset of each line

    def line_of(offset: int) -> int:
        return bisect.bisect_right(starts, offset) - 1

    def line_end(k: int) -> int:
        return starts[k + 1] - 1 if k + 1 < len(starts) else len(text)

    # Labels first: each one bounds the section the directives after it search in.
    labels, pos = [], 0
    for kind, pat, n in directives:
        if kind == "CHECK-LABEL":
            j = text.find(pat, pos)
            if j == -1:
                _fail(text, kind, pat, n, line_of(pos), "not found")
            labels.append(j)
            pos = starts[line_of(j) + 1] if line_of(j) + 1 < len(starts) else len(text)
    ends, li = [], 0
    for kind, _, _ in directives:
        li += kind == "CHECK-LABEL"
        ends.append(starts[line_of(labels[li])] if li < len(labels) else len(text))

    pos, prev_line, li = 0, 0, 0
    nots: list[tuple[str, int]] = []
    for (kind, pat, n), end in zip(directives, ends):
        if kind == "CHECK-NOT":
            nots.append((pat, n))
            continue
        if kind == "CHECK-LABEL":
            j = labels[li]
            li += 1
        elif kind == "CHECK-SAME":
            j = text.find(pat, pos, line_end(prev_line))
            if j == -1:
                _fail(text, kind, pat, n, prev_line, "not found on the line of the previous match")
        elif kind == "CHECK-NEXT":
            k = prev_line + 1
            j = text.find(pat, starts[k], min(line_end(k), end)) if k < len(starts) else -1
            if j == -1:
                _fail(text, kind, pat, n, prev_line, f"not found on the next line ({k + 1})")
        else:
            j = text.find(pat, pos, end)
            if j == -1:
                _fail(text, kind, pat, n, line_of(pos), "not found")
        _check_nots(text, nots, pos, j, line_of)
        pos, prev_line = j + len(pat), line_of(j)
    _check_nots(text, nots, pos, ends[-1], line_of)


def _check_nots(text, nots, lo, hi, line_of) -> None:
    for pat, n in nots:
        j = text.find(pat, lo, hi)
        if j != -1:
            _fail(text, "CHECK-NOT", pat, n, line_of(j),
                  f"found on input line {line_of(j) + 1}, between the surrounding matches")
    nots.clear()


def check_passes(ir: str, passes: list, checks: str) -> str:
    """Parse `ir`, run `passes` with verification on, FileCheck the printed result, return it."""
    from dad.lang.irparser import parse_module
    from dad.lang.passes import PassManager
    from dad.lang.printer import print_module

    out = print_module(PassManager(passes, verify=True).run(parse_module(ir)))
    filecheck(out, checks)
    return out
