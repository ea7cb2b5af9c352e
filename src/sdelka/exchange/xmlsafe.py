"""Hardened, streaming XML parsing for files that come from outside (1C, banks, sites).

Everything an exchange reader parses goes through :func:`safe_iterparse`:

* no network, no DTD loading, no entity resolution; any ``<!DOCTYPE`` is refused outright
  (:class:`UnsafeXmlError`), which also stops entity-expansion bombs and external entities;
* malformed, truncated or non-XML input raises :class:`BadXmlError` with the line number;
* encodings: UTF-8 with or without a BOM and windows-1251, declared or not. A declaration that contradicts the
  bytes (windows-1251 declared over UTF-8 text, UTF-8 declared over windows-1251 bytes, a UTF-8 BOM with a
  windows-1251 declaration) raises :class:`WrongEncodingError` instead of yielding mojibake.

Sources are a filesystem path, ``bytes`` or a seekable binary file object (each pass seeks back to 0).
"""

from __future__ import annotations

import codecs
import io
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from lxml import etree

Source = str | os.PathLike[str] | bytes | IO[bytes]

UTF8_BOM = b"\xef\xbb\xbf"
HEAD_SIZE = 64 * 1024
CHUNK_SIZE = 1024 * 1024

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.DOTALL)
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
_CYRILLIC_8BIT = {
    "windows-1251": "windows-1251",
    "cp1251": "windows-1251",
    "win-1251": "windows-1251",
    "koi8-r": "koi8-r",
    "cp866": "cp866",
    "iso-8859-5": "iso-8859-5",
}


class XmlError(Exception):
    """A file we refuse to read. ``reason`` is a sentence for the 1C user; ``line`` is 1-based when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"{reason} (line {line})" if line else reason)


class UnsafeXmlError(XmlError):
    """DOCTYPE, DTD, entity declarations or external entities: refused without being processed."""


class BadXmlError(XmlError):
    """Not well-formed XML: truncated, not XML at all, undefined entities, empty file."""


class WrongEncodingError(BadXmlError):
    """The bytes do not match the declared (or implied) encoding."""


@dataclass(frozen=True, slots=True)
class Prolog:
    """What the head of a file says. ``override`` is the encoding to force on the parser (None = trust the file)."""

    declared: str | None
    bom: bool
    override: str | None

    @property
    def encoding(self) -> str:
        """The encoding the bytes are read in."""
        return self.override or self.declared or "utf-8"


@contextmanager
def open_source(source: Source) -> Iterator[IO[bytes]]:
    """Open a source for one pass from its beginning; only files opened here are closed here."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        source.seek(0)
        yield source


def _check_prolog_safe(head: bytes) -> None:
    """Refuse a DOCTYPE before the root element; only the prolog is looked at (CDATA later may mention one)."""
    pos = 0
    text = head[3:] if head.startswith(UTF8_BOM) else head
    while True:
        pos = text.find(b"<", pos)
        if pos < 0 or pos + 1 >= len(text):
            return
        nxt = text[pos + 1 : pos + 2]
        if nxt == b"?":
            end = text.find(b"?>", pos)
            pos = len(text) if end < 0 else end + 2
        elif text.startswith(b"<!--", pos):
            end = text.find(b"-->", pos)
            pos = len(text) if end < 0 else end + 3
        elif nxt == b"!":
            raise UnsafeXmlError("The file contains a DOCTYPE/DTD declaration; exchange files must not have one.")
        else:
            return


def _looks_like_utf8(sample: bytes) -> bool:
    """True when the sample has non-ASCII bytes and all of them form valid UTF-8 (a cut last char is fine)."""
    if sample.isascii():
        return False
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _is_valid_utf8(stream: IO[bytes], head: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(head)
        while chunk := stream.read(CHUNK_SIZE):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def inspect_prolog(source: Source) -> Prolog:
    """Read the head of the file: refuse a DOCTYPE, check the declared encoding against the bytes."""
    with open_source(source) as stream:
        head = stream.read(HEAD_SIZE)
        if not head.strip():
            raise BadXmlError("The file is empty.")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise WrongEncodingError("The file is UTF-16; 1C exchange files must be UTF-8 or windows-1251.")
        _check_prolog_safe(head)
        bom = head.startswith(UTF8_BOM)
        match = _DECLARATION.match(head[3:] if bom else head)
        declared = match.group(1).decode("ascii").lower() if match else None
        if declared is not None and declared not in _UTF8_NAMES:
            if bom:
                raise WrongEncodingError(
                    f"The file starts with a UTF-8 byte-order mark but declares encoding {declared!r}."
                )
            if declared in _CYRILLIC_8BIT and _looks_like_utf8(head):
                raise WrongEncodingError(f"The file declares encoding {declared!r} but its bytes are UTF-8.")
            return Prolog(declared=declared, bom=False, override=None)
        if declared is None and not bom and not _is_valid_utf8(stream, head):
            # No declaration means UTF-8 by the XML rules, but 1C's windows-1251 order files sometimes lack one.
            return Prolog(declared=None, bom=False, override="windows-1251")
        return Prolog(declared=declared, bom=bom, override=None)


def _translate(exc: etree.XMLSyntaxError, prolog: Prolog) -> XmlError:
    message = str(exc.msg or exc)
    line = exc.lineno or None
    lowered = message.lower()
    if "encoding" in lowered or "not proper utf-8" in lowered or "bytes" in lowered:
        said = prolog.declared or prolog.override or "utf-8"
        return WrongEncodingError(f"The file's bytes are not valid {said}: {message}", line)
    if "entity" in lowered:
        return UnsafeXmlError(f"The file uses entities, which exchange files must not: {message}", line)
    if "premature end" in lowered or "no element found" in lowered or "not found" in lowered:
        return BadXmlError(f"The file is truncated or is not XML: {message}", line)
    return BadXmlError(f"The file is not well-formed XML: {message}", line)


def _check_docinfo(element: etree._Element) -> None:
    docinfo = element.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXmlError("The file contains a DOCTYPE/DTD declaration; exchange files must not have one.")


# The parser options of everything read from outside: no entities, network or DTD, no huge text nodes.
HARDENED: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


def safe_iterparse(
    source: Source,
    *,
    events: Sequence[str] = ("end",),
    tag: Sequence[str] | str | None = None,
    prolog: Prolog | None = None,
    wrap: Callable[[IO[bytes]], IO[bytes]] | None = None,
) -> Generator[tuple[str, etree._Element], None, None]:
    """Stream ``(event, element)`` pairs like :func:`lxml.etree.iterparse`, hardened (see module docstring).

    The caller must clear elements it has consumed (``element.clear()`` and delete earlier siblings) to keep
    memory bounded. ``tag`` filters in C (``"{*}Товар"`` matches any namespace). ``wrap`` puts a filter between
    the file and the parser (the catalogue reader's span splitter).
    """
    prolog = prolog or inspect_prolog(source)
    with open_source(source) as stream:
        parser = etree.iterparse(
            wrap(stream) if wrap is not None else stream,
            events=tuple(events),
            tag=tag,
            encoding=prolog.override,
            dtd_validation=False,
            **HARDENED,
        )
        checked = False
        try:
            for event, element in parser:
                if not checked:
                    _check_docinfo(element)
                    checked = True
                yield event, element
        except etree.XMLSyntaxError as exc:
            raise _translate(exc, prolog) from None
        except LookupError as exc:  # an encoding name lxml does not know
            raise WrongEncodingError(f"Unknown encoding: {exc}") from None
        root = parser.root
        if root is None:
            raise BadXmlError("The file holds no XML element.")
        if not checked:
            _check_docinfo(root)


_FRAGMENT_TAG = b"_sdelka_fragment"
_PARSERS = threading.local()  # an lxml parser is not to be shared between threads; made once per thread


def _fragment_parser(encoding: str) -> etree.XMLParser:
    parsers: dict[str, etree.XMLParser] = _PARSERS.__dict__.setdefault("by_encoding", {})
    parser = parsers.get(encoding)
    if parser is None:
        parser = parsers[encoding] = etree.XMLParser(encoding=encoding, **HARDENED)
    return parser


def parse_fragment(data: bytes, *, encoding: str, context: bytes, line: int | None) -> etree._Element:
    """Parse one element cut from a file as bytes (in the file's ``encoding``; ``context``: the namespace
    declarations in scope there, as attribute text), hardened like the file itself. Errors carry the line in the
    file (the element starts on ``line``)."""
    parser = _fragment_parser(encoding)
    wrapped = b"<" + _FRAGMENT_TAG + context + b">" + data + b"</" + _FRAGMENT_TAG + b">"
    try:
        root = etree.fromstring(wrapped, parser)
    except etree.XMLSyntaxError as exc:
        error = _translate(exc, Prolog(declared=encoding, bom=False, override=None))
        where = error.line + line - 1 if error.line is not None and line is not None else line
        raise type(error)(error.reason, where) from None
    except LookupError as exc:
        raise WrongEncodingError(f"Unknown encoding: {exc}") from None
    if len(root) != 1:
        raise BadXmlError("An element of the file could not be read on its own.", line)
    return root[0]


LOCAL_NAMES: dict[object, str] = {}  # tag → local name (readers may look here before calling local_name)
LOCAL_NAMES_MAX = 4096  # a hostile file with endless distinct tags must not grow the cache without end


def local_name(element: etree._Element) -> str:
    """The tag without its namespace (``{urn:1C.ru:commerceml_2}Товар`` → ``Товар``). Called for every
    element a reader looks at, so the answer per tag is cached."""
    tag = element.tag
    name = LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(LOCAL_NAMES) < LOCAL_NAMES_MAX:
            LOCAL_NAMES[tag] = name
    return name


def release(element: etree._Element) -> None:
    """Free a consumed element and the already-consumed siblings before it (bounded memory on huge files)."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
