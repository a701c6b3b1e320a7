"""Protocol-buffer TEXT format (what ``pipeline.config`` and ``label_map.pbtxt`` files are).

The parser needs no schema and no protobuf runtime: it returns a tree of
:class:`Message` / :class:`Field` / :class:`Scalar` nodes that remember where
they were written (1-based line and column), so every later check can say
``pipeline.config:12:7: ...``.  Supported syntax: ``name { ... }`` and
``name: { ... }`` (also ``< ... >``), ``key: value`` scalars (integers,
floats with exponents or a leading dot, ``inf``/``nan``, identifiers such as
enums and ``true``, single- or double-quoted strings with C escapes, adjacent
strings concatenated), repeated fields (repeated keys or ``key: [a, b]``),
``#`` comments and optional ``,`` / ``;`` separators.  Extension syntax
(``[ext.name]``) and ``Any`` expansion are not supported.

:func:`format_text` writes a tree back (scalars keep their original text, so
parse -> format -> parse gives the same tree) and :func:`replace` edits one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace as _dc_replace
from pathlib import Path
from typing import Iterator, Optional, Union

from .errors import CkptkitError


class TextProtoError(CkptkitError, ValueError):
    """A file that is not valid protobuf text format (message: ``file:line:col: ...``)."""


@dataclass(frozen=True)
class Scalar:
    """A scalar value: ``kind`` is "number", "identifier" or "string"; ``text`` is as written."""

    kind: str
    text: str
    value: Union[int, float, str]
    line: int
    col: int


@dataclass(frozen=True)
class Field:
    """``name: value`` or ``name { ... }``; a ``key: [a, b]`` list gives one Field per element."""

    name: str
    value: Union[Scalar, "Message"]
    line: int
    col: int


@dataclass(frozen=True)
class Message:
    """The fields of a message in file order; ``line``/``col`` are where it opens."""

    fields: tuple[Field, ...] = ()
    line: int = 1
    col: int = 1

    def get(self, name: str) -> list[Field]:
        """Every field called ``name`` (repeated fields give several)."""
        return [f for f in self.fields if f.name == name]

    def first(self, name: str) -> Optional[Field]:
        found = self.get(name)
        return found[0] if found else None


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+|\#[^\n]*) |
    (?P<newline>\n) |
    (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![\w.])) |
    (?P<identifier>-?[A-Za-z_][A-Za-z0-9_]*) |
    (?P<bad>[-+.\d][\w.+-]*) |
    (?P<string>["']) |
    (?P<punct>[{}<>:,;\[\]])
""", re.VERBOSE)
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v",
            "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}
MAX_DEPTH = 100  # nested messages; real configs use ~10, and the parser recurses once per level
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.S)


@dataclass(frozen=True)
class _Token:
    kind: str  # number | identifier | string | punct | eof
    text: str
    line: int
    col: int
    value: object = None


class _Lexer:
    def __init__(self, text: str, filename: str):
        self.text, self.filename = text, filename

    def error(self, line: int, col: int, detail: str) -> TextProtoError:
        return TextProtoError(f"{self.filename}:{line}:{col}: {detail}")

    def tokens(self) -> Iterator[_Token]:
        text, pos, line, line_start = self.text, 0, 1, 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            col = pos - line_start + 1
            if match is None:
                raise self.error(line, col, f"unexpected character {text[pos]!r}; "
                                 "expected a field name, a value, '{', '}' or ':'")
            kind = match.lastgroup
            if kind == "newline":
                line, line_start = line + 1, match.end()
            elif kind == "bad":
                raise self.error(line, col, f"invalid number {match.group()!r}; "
                                 "write e.g. 3, -0.5, .08 or 3.99e-05")
            elif kind == "string":
                end, value = self._string(pos, line, col)
                yield _Token("string", text[pos:end], line, col, value)
                pos = end
                continue
            elif kind != "space":
                yield _Token(kind, match.group(), line, col)
            pos = match.end()
        yield _Token("eof", "", line, len(text) - line_start + 1)

    def _string(self, start: int, line: int, col: int) -> tuple[int, str]:
        quote, pos, text = self.text[start], start + 1, self.text
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise self.error(line, col, "unterminated string; close it with "
                                 f"{quote} on the same line")
            if text[pos] == "\\":
                pos += 2
            elif text[pos] == quote:
                break
            else:
                pos += 1
        return pos + 1, self._unescape(text[start + 1:pos], line, col)

    def _unescape(self, body: str, line: int, col: int) -> str:
        def one(m: re.Match) -> str:
            octal, hex2, u4, u8, other = m.groups()
            if octal or hex2:
                return chr(int(octal, 8) if octal else int(hex2, 16))  # a byte, re-encoded below
            if u4 or u8:
                code = int(u4 or u8, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise self.error(line, col, f"invalid unicode escape '{m.group()}' in string")
                return chr(code).encode("utf-8").decode("latin-1")
            if other in _ESCAPES:
                return _ESCAPES[other].decode("latin-1")
            raise self.error(line, col, f"invalid escape '\\{other}' in string")

        raw = _ESCAPE.sub(one, body.encode("utf-8").decode("latin-1"))
        try:
            return raw.encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            raise self.error(line, col, "string escapes do not form valid UTF-8") from None


class _Parser:
    def __init__(self, text: str, filename: str):
        self.lexer = _Lexer(text, filename)
        self.stream = self.lexer.tokens()
        self.token = next(self.stream)
        self.depth = 0

    def advance(self) -> _Token:
        current, self.token = self.token, next(self.stream)
        return current

    def expected(self, what: str, context: str = "") -> TextProtoError:
        tok = self.token
        found = "end of file" if tok.kind == "eof" else repr(tok.text)
        return self.lexer.error(tok.line, tok.col, f"expected {what}, found {found}{context}")

    def message(self, close: Optional[str], opened: Optional[_Token], owner: str) -> Message:
        if opened is not None and self.depth >= MAX_DEPTH:
            raise self.lexer.error(opened.line, opened.col, f"messages nested more than {MAX_DEPTH} levels deep; "
                                   "a pipeline.config or label map is never this deep")
        self.depth += 1
        try:
            return self._fields(close, opened, owner)
        finally:
            self.depth -= 1

    def _fields(self, close: Optional[str], opened: Optional[_Token], owner: str) -> Message:
        fields: list[Field] = []
        while True:
            tok = self.token
            if close is None and tok.kind == "eof":
                break
            if close is not None and tok.kind == "punct" and tok.text == close:
                self.advance()
                break
            if tok.kind != "identifier" or tok.text.startswith("-"):
                if close is None:
                    raise self.expected("a field name", "; is there one '}' too many?"
                                        if tok.text in ("}", ">") else "")
                context = ""
                if tok.kind == "eof":
                    context = f" (the {owner!r} message opened at {opened.line}:{opened.col} is not closed)"
                raise self.expected(f"a field name or {close!r}", context)
            fields.extend(self.field())
        start = opened or _Token("eof", "", 1, 1)
        return Message(tuple(fields), start.line, start.col)

    def field(self) -> list[Field]:
        name = self.advance()
        colon = self.token.kind == "punct" and self.token.text == ":"
        if colon:
            self.advance()
        tok = self.token
        if tok.kind == "punct" and tok.text in "{<":
            self.advance()
            value = self.message("}" if tok.text == "{" else ">", tok, name.text)
            values = [value]
        elif colon and tok.kind == "punct" and tok.text == "[":
            values = self.list(name.text)
        elif colon:
            values = [self.scalar(name.text)]
        else:
            raise self.expected(f"':' or '{{' after field name {name.text!r}")
        if self.token.kind == "punct" and self.token.text in ",;":
            self.advance()
        return [Field(name.text, v, name.line, name.col) for v in values]

    def list(self, name: str) -> list:
        self.advance()
        values: list = []
        while not (self.token.kind == "punct" and self.token.text == "]"):
            if values:
                if not (self.token.kind == "punct" and self.token.text == ","):
                    raise self.expected(f"',' or ']' in the list of {name!r}")
                self.advance()
            tok = self.token
            if tok.kind == "punct" and tok.text in "{<":
                self.advance()
                values.append(self.message("}" if tok.text == "{" else ">", tok, name))
            else:
                values.append(self.scalar(name))
        self.advance()
        return values

    def scalar(self, name: str) -> Scalar:
        tok = self.token
        if tok.kind == "number":
            try:
                value = _number(tok.text)
            except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
                raise self.lexer.error(tok.line, tok.col, f"number {tok.text[:20]}... has {len(tok.text)} "
                                       "characters; too long to be a setting") from None
            self.advance()
            return Scalar("number", tok.text, value, tok.line, tok.col)
        if tok.kind == "identifier":
            self.advance()
            return Scalar("identifier", tok.text, tok.text, tok.line, tok.col)
        if tok.kind == "string":
            parts, texts = [], []
            while self.token.kind == "string":  # "a" 'b' is "ab", as in C
                parts.append(self.token.value)
                texts.append(self.advance().text)
            return Scalar("string", " ".join(texts), "".join(parts), tok.line, tok.col)
        raise self.expected(f"a value for {name!r} (a number, a name or a quoted string)")


def _number(text: str) -> Union[int, float]:
    body = text[:-1] if text[-1] in "fF" and not text.lower().startswith(("0x", "-0x")) else text
    if body.lower().lstrip("-").startswith("0x"):
        return int(body, 16)
    if any(c in body for c in ".eE") or body != text:
        return float(body)
    return int(body)


def parse_text(text: str, filename: str = "<text>") -> Message:
    """Parse protobuf text format into a :class:`Message` tree; errors name ``filename:line:col``."""
    return _Parser(text, filename).message(None, None, "")


def parse_file(path) -> Message:
    """Read and parse a text-format file; unreadable files raise :class:`TextProtoError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TextProtoError(f"{path}: cannot read the file ({e}); check the path") from e
    return parse_text(text, str(path))


def scalar_text(value) -> str:
    """How a Python value is written in text format (strings double-quoted and escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def format_text(message: Message, indent: int = 0) -> str:
    """Text format of ``message``, two spaces per level; scalars keep their original text."""
    lines = []
    pad = "  " * indent
    for f in message.fields:
        if isinstance(f.value, Message):
            lines.append(f"{pad}{f.name} {{")
            body = format_text(f.value, indent + 1)
            if body:
                lines.append(body.rstrip("\n"))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{f.name}: {f.value.text}")
    return "\n".join(lines) + ("\n" if lines else "")


def make_scalar(value) -> Scalar:
    """A :class:`Scalar` for a Python value; strings starting with '@' are written as identifiers (enums)."""
    if isinstance(value, str) and value.startswith("@"):
        return Scalar("identifier", value[1:], value[1:], 0, 0)
    kind = "string" if isinstance(value, str) else ("identifier" if isinstance(value, bool) else "number")
    return Scalar(kind, scalar_text(value), value, 0, 0)


def find(message: Message, path: str) -> Optional[Field]:
    """The first field at dotted ``path`` (``model.ssd.num_classes``), or None."""
    node, found = message, None
    for name in path.split("."):
        if not isinstance(node, Message):
            return None
        found = node.first(name)
        if found is None:
            return None
        node = found.value
    return found


def replace(message: Message, path: str, value) -> Message:
    """A copy of ``message`` with the field at dotted ``path`` set.

    ``value`` is a Python scalar (``"@NAME"`` for an enum), a :class:`Message`,
    a list (the field becomes repeated with those values) or ``None`` (the
    field is removed).  Missing parent messages are created.
    """
    head, _, rest = path.partition(".")
    if rest:
        existing = message.first(head)
        child = existing.value if existing is not None and isinstance(existing.value, Message) else Message()
        return _set(message, head, [replace(child, rest, value)])
    values = [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
    return _set(message, head, [v if isinstance(v, Message) else make_scalar(v) for v in values])


def _set(message: Message, name: str, values: list) -> Message:
    fields, placed = [], False
    for f in message.fields:
        if f.name != name:
            fields.append(f)
        elif not placed:
            fields.extend(Field(name, v, f.line, f.col) for v in values)
            placed = True
    if not placed:
        fields.extend(Field(name, v, 0, 0) for v in values)
    return _dc_replace(message, fields=tuple(fields))
