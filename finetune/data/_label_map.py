"""OD API label maps: ``item { id: 1 name: 'circle' display_name: 'Circle' }`` in text format.

Rules (those of ``label_map_util``, stated as errors with their line): every
item has an ``id`` and a ``name`` or ``display_name``; ids are positive and
unique (id 0 is allowed only for an item named ``background``, which is then
left out: background is implicit); names are unique.  Every problem of a file
is reported in one :class:`LabelMapError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from migrate.textproto import Message, Scalar, parse_file, parse_text, scalar_text
from migrate.errors import CkptkitError

_ITEM_FIELDS = {"id": int, "name": str, "display_name": str}
MAX_ID = 2 ** 31 - 1  # StringIntLabelMapItem.id is an int32 (and TensorFlow holds ids as int32)
_IGNORED_ITEM_FIELDS = ("keypoints", "ancestor_ids", "descendant_ids", "frequency", "instance_count")


class LabelMapError(CkptkitError, ValueError):
    """A label map that is not valid, or that does not fit the data or the model."""


@dataclass(frozen=True)
class LabelMapItem:
    id: int
    name: str
    display_name: str = ""
    line: int = 0

    @property
    def text(self) -> str:
        """What detections are labelled with: the display name, else the name."""
        return self.display_name or self.name


@dataclass(frozen=True)
class LabelMap:
    """Items sorted by id; ``source`` is the file read (empty when built in code)."""

    items: tuple[LabelMapItem, ...]
    source: str = ""

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "LabelMap":
        """Ids 1, 2, ... for ``names`` in order (display names capitalised)."""
        return cls(tuple(LabelMapItem(i, n, n[:1].upper() + n[1:]) for i, n in enumerate(names, start=1)))

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(item.id for item in self.items)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.items)

    @property
    def max_id(self) -> int:
        """The OD API's ``num_classes`` for this map (ids need not be contiguous)."""
        return max(self.ids)

    def item(self, class_id: int) -> LabelMapItem:
        for item in self.items:
            if item.id == class_id:
                return item
        raise KeyError(class_id)

    def id_of(self, text: str, use_display_name: bool = False) -> Optional[int]:
        """The id whose name (or display name) is ``text``; None if there is none."""
        for item in self.items:
            if (item.display_name if use_display_name else item.name) == text:
                return item.id
        return None

    def dense_index(self, class_id: int) -> int:
        """Position of ``class_id`` among the sorted ids (0-based, for a softmax without background)."""
        return self.ids.index(class_id)

    def check_num_classes(self, num_classes: int, config: str = "pipeline.config") -> None:
        """The model's ``num_classes`` must cover every id of the map."""
        if self.max_id > num_classes:
            raise LabelMapError(
                f"{self.source or 'label map'}: ids go up to {self.max_id} but {config} has num_classes "
                f"{num_classes}; set num_classes to at least {self.max_id} or use the matching label map")

    def to_text(self) -> str:
        lines = []
        for item in self.items:
            lines += ["item {", f"  id: {item.id}", f"  name: {scalar_text(item.name)}"]
            if item.display_name:
                lines.append(f"  display_name: {scalar_text(item.display_name)}")
            lines.append("}")
        return "\n".join(lines) + "\n"

    def write(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_text())
        return path


def load_label_map(path) -> LabelMap:
    """Read and validate a ``label_map.pbtxt``."""
    path = Path(path)
    if not path.is_file():
        raise LabelMapError(f"{path}: label map not found; check label_map_path in the pipeline.config "
                            "or pass --label-map-path")
    return _from_tree(parse_file(path), str(path))


def read_label_map(text: str, filename: str = "label_map.pbtxt") -> LabelMap:
    return _from_tree(parse_text(text, filename), filename)


def _from_tree(tree: Message, filename: str) -> LabelMap:
    problems: list[tuple[int, int, str]] = []
    items = []
    for fld in tree.fields:
        if fld.name != "item" or not isinstance(fld.value, Message):
            problems.append((fld.line, fld.col, f"expected 'item {{ ... }}', found {fld.name!r}"))
            continue
        item = _item(fld.value, fld.line, fld.col, problems)
        if item is not None:
            items.append(item)
    _check_unique(items, problems)
    if not problems and not items:
        problems.append((1, 1, "the label map has no items; add 'item { id: 1 name: \"...\" }' per class"))
    if problems:
        problems.sort()
        if len(problems) == 1:
            line, col, text = problems[0]
            raise LabelMapError(f"{filename}:{line}:{col}: {text}")
        shown = "; ".join(f"{line}:{col} {text}" for line, col, text in problems[:8])
        raise LabelMapError(f"{filename}: {len(problems)} problems: {shown}{'; ...' if len(problems) > 8 else ''}")
    items = [i for i in items if i.id != 0]  # background, implicit in every OD API model
    return LabelMap(tuple(sorted(items, key=lambda i: i.id)), filename)


def _item(msg: Message, line: int, col: int, problems: list) -> Optional[LabelMapItem]:
    values: dict = {}
    invalid = False
    for fld in msg.fields:
        kind = _ITEM_FIELDS.get(fld.name)
        if kind is None:
            if fld.name not in _IGNORED_ITEM_FIELDS:
                problems.append((fld.line, fld.col, f"unknown item field {fld.name!r}; "
                                 "items hold id, name and display_name"))
            continue
        node = fld.value
        if fld.name in values:
            problems.append((fld.line, fld.col, f"{fld.name} is set twice in one item"))
        elif not isinstance(node, Scalar) or (kind is int) != (node.kind == "number") \
                or (kind is int and not isinstance(node.value, int)) or (kind is str and node.kind != "string"):
            want = "an integer" if kind is int else "a quoted string"
            found = "a message" if isinstance(node, Message) else node.text
            problems.append((fld.line, fld.col, f"{fld.name} must be {want}, found {found}"))
            invalid = True
        else:
            values[fld.name] = node.value
    if invalid:
        return None
    if "id" not in values:
        problems.append((line, col, "item has no id; give every item a positive 'id'"))
        return None
    name, display = values.get("name", ""), values.get("display_name", "")
    if values["id"] > MAX_ID:
        problems.append((line, col, f"id {values['id']} does not fit the label map's int32 ids (at most {MAX_ID})"))
        return None
    if values["id"] < 0 or (values["id"] == 0 and "background" not in (name, display)):
        problems.append((line, col, f"id {values['id']} is not positive; ids start at 1 "
                         "(0 is reserved for background)"))
        return None
    if not name and not display:
        problems.append((line, col, f"item {values['id']} has no name; add name: '...'"))
        return None
    return LabelMapItem(values["id"], name or display, display, line)


def _check_unique(items: list, problems: list) -> None:
    for attr in ("id", "name"):
        first: dict = {}
        for item in items:
            key = getattr(item, attr)
            if key in first:
                problems.append((item.line, 1, f"{attr} {key!r} is used twice (items at lines {first[key]} "
                                 f"and {item.line}); {attr}s must be unique"))
            else:
                first[key] = item.line
