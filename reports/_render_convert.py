"""Text and Markdown for mapping and conversion reports."""
from __future__ import annotations

from tabulate import tabulate

from ._convert import ConvertReport, MappingReport
from ._format import human_bytes, shape_text
from ._group import group_names


def mapping_text(r: MappingReport, markdown: bool) -> str:
    head, style = ("## ", "github") if markdown else ("", "simple")
    s = r.summary
    out = [f"{'# ' if markdown else ''}Mapping {r.source} -> {r.target} (rules: {r.rule_set})",
           "  ".join(f"{k}: {v}" for k, v in s.items())]
    out += [f"warning: {w}" for w in r.warnings]
    if r.mapped:
        out += ["", f"{head}Mapped, by rule ({len(r.mapped)}; --format json lists every pair)",
                tabulate(_by_rule(r.mapped), ["rule", "tensors", "transform", "source", "target"], tablefmt=style)]
    for title, names in (("Unmapped source", r.unmapped_source), ("Unmapped target", r.unmapped_target),
                         ("Target left freshly initialised (--restore)", r.left_out_target)):
        if names:
            out += ["", f"{head}{title} ({len(names)})"] + [f"  {g}" for g in group_names(names)]
    if r.initialised:
        reasons: dict[str, list[str]] = {}
        for name, reason in r.initialised.items():
            reasons.setdefault(reason, []).append(name)
        out += ["", f"{head}Set to constants ({len(r.initialised)})"]
        out += [f"  {reason}: " + "; ".join(group_names(names, max_items=4)) for reason, names in reasons.items()]
    if r.shape_mismatches:
        rows = [[m.source, shape_text(m.source_shape), m.target, shape_text(m.target_shape), m.rule] for m in r.shape_mismatches]
        out += ["", f"{head}Shape mismatches", tabulate(rows, ["source", "shape", "target", "shape", "rule"], tablefmt=style)]
    if r.ambiguous:
        rows = [[", ".join(a.sources), ", ".join(a.candidates), a.reason] for a in r.ambiguous]
        out += ["", f"{head}Ambiguous", tabulate(rows, ["sources", "candidates", "reason"], tablefmt=style)]
    if r.dropped:
        reasons: dict[str, list[str]] = {}
        for name, reason in r.dropped.items():
            reasons.setdefault(reason, []).append(name)
        out += ["", f"{head}Left out ({len(r.dropped)})"]
        for reason, names in sorted(reasons.items()):
            out.append(f"  {reason} ({len(names)}): " + "; ".join(group_names(names, max_items=4)))
    return "\n".join(out)


def convert_text(r: ConvertReport, markdown: bool) -> str:
    head = "## " if markdown else ""
    out = [f"{'# ' if markdown else ''}Converted {r.source} -> {r.output}",
           f"mode: {r.mode}   layout: {r.layout}   verified: {r.verified} tensors   "
           f"reused: {human_bytes(r.bytes_reused)}   written: {human_bytes(r.bytes_written)}   time: {r.seconds:.2f} s",
           "shards: " + ", ".join(f"{name} ({kind})" for name, kind in r.shards.items())]
    if r.parity is not None:
        p = r.parity
        verdict = {"failed": f"FAILED (first divergence: {p.first_divergence})",
                   "inconclusive": "INCONCLUSIVE (the output does not depend on the input)"}.get(p.verdict, p.verdict)
        out += ["", f"{head}Parity ({p.reference}, {p.inputs}): {verdict}"]
        rows = [[e.name, f"{e.max_abs:.3g}", f"{e.max_rel:.3g}", _share(e.spread), _share(e.zero_fraction)]
                for e in p.outputs + p.layers]
        out.append(tabulate(rows, ["output/layer", "max abs", "max rel", "input spread", "zeros"],
                            tablefmt="github" if markdown else "simple"))
        if p.explanation:
            out.append(p.explanation)
    if r.pipeline_config is not None:
        c = r.pipeline_config
        out += ["", f"{head}TF2 pipeline.config: {c.path} (from {c.source or 'the checkpoint alone'})"]
        out += [f"ERROR: {e}" for e in c.errors] + [f"- {change}" for change in c.changes]
    return "\n".join(out + ["", mapping_text(r.mapping, markdown)])


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _by_rule(mapped) -> list[list]:
    """One row per (rule, transform): counts and prefix-grouped names, so 300 pairs read at a glance."""
    groups: dict[tuple[str, str], list] = {}
    for m in mapped:
        groups.setdefault((_rule_head(m.rule), m.transform), []).append(m)
    return [[rule, len(items), transform, "; ".join(group_names([m.source for m in items], max_items=3)),
             "; ".join(group_names([m.target for m in items], max_items=3))]
            for (rule, transform), items in groups.items()]


def _rule_head(rule: str) -> str:
    """``file.toml:12 (structural #3, unique shape)`` -> ``file.toml:12 (structural)``."""
    head, _, detail = rule.partition(" (")
    return f"{head} (structural)" if detail.startswith("structural") else head
