"""Typed result of ``ckpt-finetune validate`` (the dry run of ``train``) and its text and Markdown rendering."""
from __future__ import annotations

from dataclasses import dataclass

from tabulate import tabulate

from ._finetune import ConfigNote


@dataclass(frozen=True)
class ValidateReport:
    """Every finding about one pipeline.config, in the order to fix them (model support first).

    ``findings`` hold the checks ``train`` makes before touching data and the
    reader's notes; ``where`` is ``file:line:col``.  ``passed``: no finding of
    severity error (warnings and notes do not stop a run).
    """

    config: str
    task: str
    findings: tuple[ConfigNote, ...] = ()

    kind = "validate"

    def count(self, severity: str) -> int:
        return sum(f.severity == severity for f in self.findings)

    @property
    def passed(self) -> bool:
        return self.count("error") == 0


def validate_text(r: ValidateReport, markdown: bool) -> str:
    style = "github" if markdown else "simple"
    verdict = "ready to train" if r.passed else "fix the errors below before training"
    out = [f"{'# ' if markdown else ''}pipeline.config check: {r.config} ({r.task})",
           f"{r.count('error')} error(s), {r.count('warning')} warning(s), {r.count('info')} note(s): {verdict}"]
    if r.findings:
        rows = [[f.severity, f.where, f.path, f.message] for f in r.findings]
        wrap = {} if markdown else {"maxcolwidths": [None, None, None, 64]}  # a terminal; Markdown cells stay whole
        out += ["", tabulate(rows, ["severity", "where", "setting", "message"], tablefmt=style, **wrap)]
    return "\n".join(out)
