"""A manifest (CSV or JSONL: source, target, options) may replace discovery."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import CkptkitError
from ._discover import ZooItem

KNOWN_OPTIONS = {"use_ema", "keep_optimizer", "keep_global_step", "join_partitions", "restore", "classes", "parity"}


class ManifestError(CkptkitError, ValueError):
    """A manifest line that cannot be used."""


def read_manifest(path: Path, root: Path) -> list[ZooItem]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e})") from e
    rows = _jsonl(path, text) if path.suffix in (".jsonl", ".json") else _csv(path, text)
    items, seen = [], {}
    try:
        for number, row in rows:
            item = _item(path, number, row, Path(root))
            if item.rel in seen:  # two workers would write one output at the same time
                raise ManifestError(f"{path}:{number}: source {item.rel!r} is listed twice (line {seen[item.rel]})")
            seen[item.rel] = number
            items.append(item)
    except csv.Error as e:  # e.g. a field longer than the csv module's limit
        raise ManifestError(f"{path}: not a readable CSV manifest ({e})") from e
    return items


def _jsonl(path: Path, text: str):
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than json can follow
                raise ManifestError(f"{path}:{number}: not a JSON object ({e})") from e
            if not isinstance(row, dict):
                raise ManifestError(f"{path}:{number}: expected a JSON object with source, target, options")
            yield number, row


def _csv(path: Path, text: str):
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "source" not in reader.fieldnames:
        raise ManifestError(f"{path}:1: CSV header must name a 'source' column (and optionally target, options)")
    for number, row in enumerate(reader, 2):
        options = {}
        for pair in filter(None, (row.get("options") or "").split(";")):
            key, sep, value = pair.partition("=")
            if not sep:
                raise ManifestError(f"{path}:{number}: option {pair!r} is not KEY=VALUE")
            options[key.strip()] = _value(value.strip())
        yield number, {"source": row["source"], "target": row.get("target") or None, "options": options}


def _value(text: str):
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    return int(text) if text.isdigit() else text


def _item(path: Path, number: int, row: dict, root: Path) -> ZooItem:
    source = row.get("source")
    if not source:
        raise ManifestError(f"{path}:{number}: no source")
    for key, kind, name in (("source", str, "a string"), ("target", (str, type(None)), "a string"),
                            ("options", (dict, type(None)), "an object of KEY: VALUE")):
        if not isinstance(row.get(key), kind):
            raise ManifestError(f"{path}:{number}: {key} must be {name}, not {type(row.get(key)).__name__}")
    options = dict(row.get("options") or {})
    unknown = set(options) - KNOWN_OPTIONS
    if unknown:
        raise ManifestError(f"{path}:{number}: unknown option(s) {', '.join(sorted(unknown))}; known: "
                            f"{', '.join(sorted(KNOWN_OPTIONS))}")
    if row.get("target"):
        options["target"] = row["target"]
    full = Path(source) if Path(source).is_absolute() else root / source
    return ZooItem(full, Path(source).as_posix(), options)
