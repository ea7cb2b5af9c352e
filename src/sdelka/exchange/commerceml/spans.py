"""Catalogue products and offers cut out of the file as bytes, before any XML parser sees them.

An unchanged re-upload is decided by the digest of each ``Товар`` / ``Предложение``. Building an lxml tree for
every element only to serialise and hash it cost several times a bare parse; instead :class:`SpanSplitter` sits
between the file and lxml: it walks the markup outside those elements (the classifier, the headers: a few
thousand tags), finds each product's and offer's byte range with ``bytes.find`` and hands lxml a *skeleton* in
which that range is replaced by ``<_sdelka_raw n="…"/>`` plus as many newlines as it held (line numbers stay
true). lxml parses and checks the skeleton as before; each cut element (:class:`Span`) is hashed as bytes and
parsed (``parse_fragment``) only when its digest differs, i.e. when it has never been read before in the same
encoding and namespace context — identical bytes were well-formed then, so the file is checked as a whole.

An element is cut only where that is certain: a ``Товар`` whose parent is ``Товары`` in ``Каталог``, an
``Предложение`` in ``Предложения``, with a well-formed start tag, its end tag within ``MAX_SPAN`` bytes, and no
comment, CDATA section, processing instruction or nested element of the same name inside. Anything else goes to
lxml untouched (and is read as before); a DOCTYPE or a tag this scanner cannot follow switches it off for the
rest of the file.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import IO

PLACEHOLDER = "_sdelka_raw"
CHUNK = 1024 * 1024
MAX_SPAN = 64 * 1024 * 1024  # a bigger element goes to lxml whole (its own limits apply)
MAX_TAG = 64 * 1024
READ_AHEAD = 2 * 1024 * 1024  # bytes of cut elements one read() may leave pending for the reader

_START_TAG = re.compile(rb"<([^\s/>!?<]+)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>")
_XMLNS = re.compile(rb"\s(xmlns(?::[^\s=]+)?)\s*=\s*(\"[^\"]*\"|'[^']*')")
_END_REST = re.compile(rb"\s*>")
_TERMINATORS = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"))


@dataclass(frozen=True, slots=True)
class Span:
    """One cut element: ``kind`` ("product" / "offer"), its bytes as in the file, where its content starts (after
    the start tag), and ``context``: the namespace declarations in scope (attribute text such as
    `` xmlns="urn:1C.ru:commerceml_2"``) to parse it with."""

    kind: str
    data: bytes
    body: int
    context: bytes


class _Names:
    """The tag names the splitter looks for, in the file's encoding."""

    def __init__(self, encoding: str) -> None:
        self.product, self.products, self.catalogue, self.offer, self.offers = (
            name.encode(encoding) for name in ("Товар", "Товары", "Каталог", "Предложение", "Предложения")
        )


def _known_encoding(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
        "Товар".encode(encoding)
    except (LookupError, UnicodeError):
        return False
    return True


class SpanSplitter:
    """A binary stream for lxml: ``stream`` with catalogue products and offers cut out (see the module doc).
    The reader takes each cut element back with :meth:`take` when lxml reports its placeholder."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self.stream = stream
        self.encoding = encoding
        self.enabled = _known_encoding(encoding)
        self.names = _Names(encoding) if self.enabled else None
        self.buf = b""
        self.pos = 0
        self.eof = False
        # Open elements outside the cut ones: (local name, namespace declarations in scope).
        self.stack: list[tuple[bytes, bytes]] = []
        self.spans: dict[str, list[tuple[Span, int]]] = {}
        self.count = 0

    # --- the stream lxml reads ---

    def read(self, size: int = -1) -> bytes:
        size = size if size and size > 0 else CHUNK
        pieces: list[bytes] = []
        total = 0
        cut = 0
        group: list[tuple[Span, int]] | None = None  # cut elements in a row share one placeholder (one lxml event)
        lines = 0  # newlines in the group before the next element
        while total < size and cut < READ_AHEAD:
            piece = self._next()
            if piece is None:
                break
            if isinstance(piece, Span):
                cut += len(piece.data)
                if group is None:
                    group, lines = [], 0
                    pieces.append(self._placeholder(group))
                group.append((piece, lines))
                newlines = piece.data.count(b"\n")
                lines += newlines
                piece = b"\n" * newlines
            elif group is not None and piece.isspace():  # between two cut elements: only its newlines matter
                newlines = piece.count(b"\n")
                lines += newlines
                piece = b"\n" * newlines
            else:
                group = None
            pieces.append(piece)
            total += len(piece)
        return b"".join(pieces)

    def take(self, number: str | None) -> list[tuple[Span, int]]:
        """The cut elements behind placeholder ``number``, each with how many lines after the placeholder's it starts
        (none for an element that only looks like a placeholder)."""
        return self.spans.pop(number, []) if number is not None else []

    def _placeholder(self, group: list[tuple[Span, int]]) -> bytes:
        self.count += 1
        number = str(self.count)
        self.spans[number] = group
        return f'<{PLACEHOLDER} n="{number}"/>'.encode("ascii")

    # --- buffer ---

    def _more(self) -> bool:
        """Append the next chunk of the file (positions stay valid); False at the end of the file."""
        if self.eof:
            return False
        block = self.stream.read(CHUNK)
        if not block:
            self.eof = True
            return False
        self.buf += block
        return True

    def _ensure(self, count: int) -> None:
        """At least `count` bytes after pos (or the end of the file); drops what was consumed."""
        if self.pos > CHUNK:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        while len(self.buf) - self.pos < count and self._more():
            pass

    def _emit(self, end: int) -> bytes:
        piece = self.buf[self.pos : end]
        self.pos = end
        return piece

    # --- tokens ---

    def _next(self) -> bytes | Span | None:
        self._ensure(MAX_TAG)
        buf, pos = self.buf, self.pos
        if pos >= len(buf):
            return None
        if not self.enabled:
            return self._emit(len(buf))
        lt = buf.find(b"<", pos)
        if lt < 0:
            return self._emit(len(buf))
        if lt > pos:
            return self._emit(lt)
        second = buf[pos + 1 : pos + 2]
        if second in (b"!", b"?"):
            return self._special()
        if second == b"/":
            end = buf.find(b">", pos)
            if end < 0:
                return self._give_up()
            if self.stack:
                self.stack.pop()
            return self._emit(end + 1)
        match = _START_TAG.match(buf, pos)
        if match is None:
            return self._give_up()
        return self._start(match)

    def _special(self) -> bytes:
        """A comment, CDATA section or processing instruction outside the cut elements: passed on whole."""
        for opening, closing in _TERMINATORS:
            if self.buf.startswith(opening, self.pos):
                end = self.buf.find(closing, self.pos + len(opening))
                while end < 0 and self._more():
                    end = self.buf.find(closing, self.pos + len(opening))
                if end < 0:
                    return self._give_up()
                return self._emit(end + len(closing))
        return self._give_up()  # <!DOCTYPE …>: lxml refuses it; nothing more is cut

    def _give_up(self) -> bytes:
        self.enabled = False
        return self._emit(len(self.buf))

    def _start(self, match: re.Match[bytes]) -> bytes | Span:
        qname, attributes, empty = match.group(1), match.group(2), match.group(3)
        local = qname.rpartition(b":")[2]
        context = self.stack[-1][1] if self.stack else b""
        if b"xmlns" in attributes:
            context = _merge(context, attributes)
        if empty:
            return self._emit(match.end())
        kind = self._cut_kind(local)
        if kind is not None:
            span = self._span(kind, qname, match.end(), context)
            if span is not None:
                return span
        self.stack.append((local, context))
        return self._emit(match.end())

    def _cut_kind(self, local: bytes) -> str | None:
        names = self.names
        assert names is not None
        stack = self.stack
        if local == names.product and len(stack) >= 2:
            if stack[-1][0] == names.products and stack[-2][0] == names.catalogue:
                return "product"
        elif local == names.offer and stack and stack[-1][0] == names.offers:
            return "offer"
        return None

    def _span(self, kind: str, qname: bytes, body: int, context: bytes) -> Span | None:
        """The element from pos to its end tag, when it can be cut safely (see the module doc); else None."""
        closing = b"</" + qname
        start = self.pos
        search = body
        while True:
            end = self.buf.find(closing, search)
            if end < 0:
                if self.eof or len(self.buf) - start > MAX_SPAN or not self._more():
                    return None
                continue
            rest = _END_REST.match(self.buf, end + len(closing))
            if rest is None:
                if len(self.buf) - end < MAX_TAG and self._more():
                    continue  # the end tag may be cut by the chunk: look again with more bytes
                search = end + 1
                continue
            break
        buf = self.buf
        if _has_markup(buf, body, end, b"!") or _has_markup(buf, body, end, b"?"):
            return None
        nested = buf.find(b"<" + qname, body, end)
        if nested >= 0:
            return None
        self.pos = rest.end()
        return Span(kind, buf[start : self.pos], body - start, context)


def _has_markup(buf: bytes, start: int, end: int, mark: bytes) -> bool:
    """Whether ``<`` + mark (a comment, CDATA section, declaration or processing instruction) occurs in the
    range; '!' and '?' are rare in 1C's text, so this is a memchr per occurrence."""
    index = buf.find(mark, start, end)
    while index >= 0:
        if buf[index - 1 : index] == b"<":
            return True
        index = buf.find(mark, index + 1, end)
    return False


def _merge(context: bytes, attributes: bytes) -> bytes:
    """Namespace declarations in scope after a start tag's own: a prefix declared again replaces the outer one."""
    declared = {match.group(1): match.group(2) for match in _XMLNS.finditer(b" " + context)}
    declared.update({match.group(1): match.group(2) for match in _XMLNS.finditer(attributes)})
    return b"".join(b" " + name + b"=" + value for name, value in declared.items())
