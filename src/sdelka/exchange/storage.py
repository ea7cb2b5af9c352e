"""Files of exchange runs, through Django's storage API, under `exchange/<connection id>/<run id>/`.

Everything here treats names as hostile: 1C's `filename` parameter and zip member names are checked by
`safe_relative_name` before any byte is written, and unpacking counts the bytes it actually writes
(a zip bomb lies in its headers).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage

from .models import Route

ALLOWED_EXTENSIONS = frozenset({"xml", "zip", "jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "pdf"})
# A bank statement (1CClientBankExchange) is a text file; it is kept with its run under a name we make.
STATEMENT_EXTENSIONS = frozenset({"txt"})
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff"})
# 1C on Linux sometimes sends its local temp path; Bitrix strips these prefixes too.
STRIPPED_PREFIXES = ("/tmp/", "upload/1c/webdata/", "/upload/1c/webdata/")
MAX_NAME_LENGTH = 500
MAX_COMPONENT_LENGTH = 200
ZIP_MAGIC = b"PK\x03\x04"
COPY_CHUNK = 1024 * 1024
# Tiny members compress absurdly well (a run of spaces); the ratio cap only applies above this size.
RATIO_FLOOR_BYTES = 1024 * 1024

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_NAME = re.compile(r"[^\w.() -]+")
MAX_STATEMENT_STEM = 100


class UnsafeName(ValueError):
    """A file name that would leave the run's folder or is not a kind of file 1C sends."""


class ArchiveRefused(ValueError):
    """A zip that is broken, tries to leave its folder or unpacks to more than the caps allow."""


def safe_relative_name(raw: str, extensions: frozenset[str] = ALLOWED_EXTENSIONS) -> str:
    """`raw` as a clean relative path inside the run folder (subfolders allowed), or UnsafeName."""
    if not raw or not raw.strip():
        raise UnsafeName("empty file name")
    if _CONTROL.search(raw):
        raise UnsafeName("control character or NUL in the file name")
    name = raw.strip()
    if "\\" in name:
        # A Windows path separator: normalise, then the same checks apply (so ..\..\x is refused).
        name = name.replace("\\", "/")
    for prefix in STRIPPED_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if _DRIVE.match(name):
        raise UnsafeName("drive letter in the file name")
    if name.startswith("/"):
        raise UnsafeName("absolute path")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafeName("empty, '.' or '..' path component")
        if len(part) > MAX_COMPONENT_LENGTH:
            raise UnsafeName("path component too long")
        if part.endswith((" ", ".")) or ":" in part:
            raise UnsafeName("path component ending in a dot or space, or with a colon")
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeName("file name too long")
    extension = parts[-1].rsplit(".", 1)[-1].lower() if "." in parts[-1] else ""
    if extension not in extensions:
        raise UnsafeName(f"file type .{extension or '(none)'} is not accepted")
    normalised = posixpath.normpath(name)
    if normalised != name or normalised.startswith(".."):
        raise UnsafeName("path does not normalise to itself")
    return name


def statement_file_name(raw: str) -> str:
    """The name a bank statement upload is kept under, whatever name the browser or API client sent: only the
    last path component, letters, digits and plain punctuation, always `.txt` (`../../etc/passwd` → `passwd.txt`)."""
    base = re.split(r"[\\/]", _CONTROL.sub("", raw))[-1]
    stem = _NOT_NAME.sub("_", base).strip(" ._")
    if stem.lower().endswith(".txt"):
        stem = stem[:-4].strip(" ._")
    return f"{stem[:MAX_STATEMENT_STEM].strip(' ._') or 'statement'}.txt"


def extension_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def is_zip_name(name: str) -> bool:
    return extension_of(name) == "zip"


@dataclass
class RunFolder:
    """The folder of one run in the storage; every path is `<folder>/<safe relative name>`."""

    folder: str
    storage: Storage = default_storage
    extensions: frozenset[str] = ALLOWED_EXTENSIONS

    def path(self, name: str) -> str:
        return f"{self.folder}/{safe_relative_name(name, self.extensions)}"

    def _local_path(self, name: str) -> str | None:
        try:
            full = self.storage.path(self.path(name))
            root = self.storage.path(self.folder)
        except NotImplementedError:
            return None
        full_real = os.path.realpath(full)
        root_real = os.path.realpath(root)
        if full_real != root_real and not full_real.startswith(root_real + os.sep):
            raise UnsafeName("path resolves outside the exchange folder")
        return full

    def exists(self, name: str) -> bool:
        return self.storage.exists(self.path(name))

    def size(self, name: str) -> int:
        return self.storage.size(self.path(name)) if self.exists(name) else 0

    def append(self, name: str, stream: IO[bytes], *, max_bytes: int, start_over: bool = False) -> int:
        """Append the bytes of `stream` to `name`; refuses (and writes nothing more) past `max_bytes` of
        body. Returns the number of bytes appended."""
        local = self._local_path(name)
        if local is not None:
            os.makedirs(os.path.dirname(local), exist_ok=True)
            written = 0
            with open(local, "wb" if start_over else "ab") as target:
                start = target.tell()
                while True:
                    block = stream.read(COPY_CHUNK)
                    if not block:
                        break
                    written += len(block)
                    if written > max_bytes:
                        target.truncate(start)
                        raise UnsafeName(f"the request body is larger than {max_bytes} bytes")
                    target.write(block)
            return written
        # A storage without local paths (object stores) has no append: rewrite the object with the chunk added.
        body = stream.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise UnsafeName(f"the request body is larger than {max_bytes} bytes")
        previous = b""
        if not start_over and self.exists(name):
            with self.storage.open(self.path(name), "rb") as handle:
                previous = handle.read()
            self.storage.delete(self.path(name))
        self.storage.save(self.path(name), ContentFile(previous + body))
        return len(body)

    def starts_with(self, name: str, count: int) -> bytes:
        with self.storage.open(self.path(name), "rb") as handle:
            return bytes(handle.read(count))

    def ends_with(self, name: str, count: int) -> bytes:
        """The last `count` bytes of `name` (fewer when it is shorter)."""
        size = self.size(name)
        with self.storage.open(self.path(name), "rb") as handle:
            handle.seek(max(0, size - count))
            return bytes(handle.read(count))

    def open(self, name: str) -> IO[bytes]:
        return self.storage.open(self.path(name), "rb")

    @contextmanager
    def local_copy(self, name: str) -> Iterator[str]:
        """A local file path with the content of `name` (the file itself on a file-system storage)."""
        local = self._local_path(name)
        if local is not None:
            yield local
            return
        with tempfile.NamedTemporaryFile(suffix="." + extension_of(name)) as temp:
            with self.storage.open(self.path(name), "rb") as handle:
                shutil.copyfileobj(handle, temp, COPY_CHUNK)
            temp.flush()
            yield temp.name

    def save(self, name: str, content: File) -> None:
        path = self.path(name)
        if self.storage.exists(path):
            self.storage.delete(path)
        saved = self.storage.save(path, content)
        if saved != path:  # the storage renamed it: never leave a file under a name we do not track
            self.storage.delete(saved)
            raise UnsafeName("the storage refused the file name")

    def remove_all(self) -> None:
        _remove_tree(self.storage, self.folder)


def _remove_tree(storage: Storage, folder: str) -> None:
    try:
        directories, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for file_name in files:
        storage.delete(f"{folder}/{file_name}")
    for directory in directories:
        _remove_tree(storage, f"{folder}/{directory}")
    try:
        local = storage.path(folder)
    except NotImplementedError:
        return
    shutil.rmtree(local, ignore_errors=True)


class _CappedReader:
    """Reads a zip member and refuses once more bytes come out than allowed (headers can lie)."""

    def __init__(self, source: IO[bytes], limit: int, what: str) -> None:
        self.source = source
        self.limit = limit
        self.what = what
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        block = self.source.read(size if size and size > 0 else COPY_CHUNK)
        self.count += len(block)
        if self.count > self.limit:
            raise ArchiveRefused(self.what)
        return block


def unpack_zip(
    folder: RunFolder, zip_name: str, *, max_total: int, max_ratio: int, already_used: int = 0
) -> list[tuple[str, int, int]]:
    """Unpack `zip_name` into the run folder; returns (member name, size, CRC-32) of what was written (zipfile
    checks each member's bytes against that CRC while reading).

    Refuses the whole archive before writing anything when a member name is unsafe or the declared
    sizes break the caps, and stops while writing when the real bytes do.
    """
    with folder.local_copy(zip_name) as local, _open_zip(local) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        names: list[tuple[zipfile.ZipInfo, str]] = []
        declared = 0
        for info in members:
            if info.flag_bits & 0x1:
                raise ArchiveRefused(f"the archive member {info.filename!r} is encrypted")
            try:
                name = safe_relative_name(info.filename)
            except UnsafeName as exc:
                raise ArchiveRefused(f"unsafe name in the archive: {info.filename!r} ({exc})") from exc
            declared += info.file_size
            _check_ratio(info.file_size, info.compress_size, max_ratio, info.filename)
            names.append((info, name))
        if already_used + declared > max_total:
            raise ArchiveRefused(f"the archive unpacks to more than {max_total} bytes")
        written: list[tuple[str, int, int]] = []
        total = already_used
        for info, name in names:
            # zipfile stops at the declared size and checks the CRC; count the real bytes all the same.
            member_cap = min(max_total - total, info.file_size)
            with archive.open(info) as source:
                reader = _CappedReader(source, member_cap, f"the archive member {info.filename!r} is a zip bomb")
                folder.save(name, File(reader, name=posixpath.basename(name)))  # type: ignore[arg-type]
            total += reader.count
            written.append((name, reader.count, info.CRC))
        return written


def _check_ratio(size: int, compressed: int, max_ratio: int, member: str) -> None:
    if size > RATIO_FLOOR_BYTES and size > max(compressed, 1) * max_ratio:
        raise ArchiveRefused(f"the archive member {member!r} compresses {size // max(compressed, 1)}:1 (a zip bomb)")


@contextmanager
def _open_zip(path: str) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveRefused(f"not a zip archive or damaged ({exc})") from exc
    try:
        yield archive
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ArchiveRefused(f"the archive is damaged ({exc})") from exc
    finally:
        archive.close()


def run_folder_name(connection_id: int, run_id: int) -> str:
    return f"exchange/{connection_id}/{run_id}"


def run_folder(folder: str, route: str) -> RunFolder:
    """The folder of a run, accepting the kinds of file its route keeps (a bank run keeps its statement)."""
    return RunFolder(folder, extensions=STATEMENT_EXTENSIONS if route == Route.BANK else ALLOWED_EXTENSIONS)
