"""User-facing compile errors.

Contract: every mistake in a `.dad` program becomes a `Diagnostic(span, message)`; a phase
collects all of its diagnostics and raises one `CompileError` carrying them (`.diagnostics`),
never a Python traceback. `str(err)` renders each diagnostic as

    file.dad:3:14: error: unknown name 'y'
        let a = y + 1.0;
                ^

with the source line and a caret under the whole span (`^~~~`, first line only).
"""
from __future__ import annotations

from dataclasses import dataclass

from .ast import Span


@dataclass(frozen=True)
class Diagnostic:
    span: Span
    message: str
    severity: str = "error"

    def render(self, source: str | None) -> str:
        s = self.span
        head = f"{s.file}:{s.line}:{s.col}: {self.severity}: {self.message}"
        if source is None:
            return head
        lines = source.splitlines()
        if not (1 <= s.line <= len(lines)):
            return head
        text = lines[s.line - 1].expandtabs(1)
        width = (s.end_col - s.col) if s.end_line == s.line else len(text) - s.col + 1
        width = max(1, width)
        caret = " " * (s.col - 1) + "^" + "~" * (width - 1)
        return f"{head}\n    {text}\n    {caret}"


class CompileError(Exception):
    """One or more diagnostics; `str()` renders them all with source excerpts."""

    def __init__(self, diagnostics: list[Diagnostic], source: str | None = None):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.span.line, d.span.col))
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.source) for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()


class Reporter:
    """Collects diagnostics for one file; `raise_if_any()` ends a phase."""

    def __init__(self, source: str):
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple] = set()

    def error(self, span: Span, message: str) -> None:
        key = (span.line, span.col, message)
        if key not in self._seen:
            self._seen.add(key)
            self.diagnostics.append(Diagnostic(span, message))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise CompileError(self.diagnostics, self.source)
