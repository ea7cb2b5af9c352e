"""A thin client of 1C's standard OData interface on the standard library (urllib).

* HTTP Basic with a UTF-8 login; `$format=json` on every call (1C's default is Atom).
* Cyrillic names and query values percent-encoded as UTF-8, spaces as ``%20`` (1C does not read ``+``).
* Timeouts per request (a longer one for `$metadata`); reads (GET) are retried with exponential backoff on
  network errors, timeouts, HTTP 5xx and malformed JSON. Writes (POST/PATCH, Post/Unpost) are never retried:
  1C may have written before the answer was lost; the caller re-reads instead.
* 1C's own error text (``odata.error.message.value``, or ``m:message`` in Atom) becomes :class:`ODataError`.
* Every attempt is reported to ``on_request`` (method, path, status, seconds, error) for the run's journal.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from .values import dumps, guid_literal, loads

RETRY_STATUSES = frozenset({500, 502, 503, 504})
CHUNK = 1024 * 1024
PATH_SAFE = "/()$',="
QUERY_SAFE = "$'(),:/=*"  # a space becomes %20, never "+"
# The spec names no URL limit; IIS refuses a query string over 2,048 bytes by default (maxQueryString) and old
# proxies a URL over ~2,083, so a read by keys keeps the whole URL under this.
MAX_URL = 2000
_ATOM_MESSAGE = re.compile(rb"<(?:\w+:)?message[^>]*>(.*?)</(?:\w+:)?message>", re.DOTALL)
_ATOM_CODE = re.compile(rb"<(?:\w+:)?code[^>]*>(.*?)</(?:\w+:)?code>", re.DOTALL)


class ODataError(Exception):
    """1C answered an error or could not be reached. `message` is 1C's own text when it sent one."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        if self.status:
            code = f", code {self.code}" if self.code else ""
            return f"1C answered HTTP {self.status}{code}{where}: {self.message}"
        return f"{self.message}{where}"


class ODataAuthError(ODataError):
    """Wrong login or password (HTTP 401/403 before any data)."""


class ODataUnavailable(ODataError):
    """Network failure, timeout, dropped connection or 5xx that did not pass after the retries."""


class ODataBadResponse(ODataError):
    """1C answered 200 with a body that is not the JSON it should be."""


@dataclass(frozen=True, slots=True)
class Attempt:
    method: str
    path: str
    status: int | None
    seconds: float
    error: str = ""


def _error_text(body: bytes) -> tuple[str, str]:
    """(code, message) of an `odata.error` body, JSON or Atom; ("", "") when there is none."""
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("odata.error"), dict):
        error = data["odata.error"]
        message = error.get("message")
        value = message.get("value", "") if isinstance(message, dict) else str(message or "")
        return str(error.get("code", "")), str(value)
    match = _ATOM_MESSAGE.search(body)
    if match:
        code = _ATOM_CODE.search(body)
        decode = lambda raw: html.unescape(raw.decode("utf-8", "replace")).strip()  # noqa: E731
        return (decode(code.group(1)) if code else ""), decode(match.group(1))
    return "", ""


class ODataClient:
    def __init__(
        self,
        base_url: str,
        login: str,
        password: str,
        *,
        timeout: float = 120.0,
        metadata_timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"
        self.timeout = timeout
        self.metadata_timeout = metadata_timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.on_request = on_request
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- URLs ---

    @staticmethod
    def entity_path(entity_set: str, key: str | None = None) -> str:
        return entity_set if key is None else f"{entity_set}({guid_literal(key)})"

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        url = f"{self.base_url}/{quote(path, safe=PATH_SAFE)}" if path else self.base_url + "/"
        if params:
            query = "&".join(
                quote(str(name), safe="$") + "=" + quote(str(value), safe=QUERY_SAFE)
                for name, value in params.items()
                if value is not None and value != ""
            )
            url += "?" + query
        return url

    # --- transport ---

    def _report(self, method: str, path: str, status: int | None, started: float, error: str = "") -> None:
        if self.on_request is not None:
            self.on_request(Attempt(method, path, status, time.monotonic() - started, error))

    def _once(
        self, method: str, url: str, path: str, body: bytes | None, timeout: float, sink: IO[bytes] | None
    ) -> tuple[int, bytes]:
        headers = {"Authorization": self._auth, "Accept": "application/json", "Accept-Charset": "utf-8"}
        if body is not None:
            headers["Content-Type"] = "application/json;charset=utf-8"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=timeout) as response:
                status = response.status
                if sink is not None:
                    while chunk := response.read(CHUNK):
                        sink.write(chunk)
                    payload = b""
                else:
                    payload = response.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read() if exc.fp is not None else b""
            self._report(method, path, exc.code, started)
            return exc.code, payload
        except TimeoutError as exc:
            self._report(method, path, None, started, "timeout")
            raise ODataUnavailable(f"1C did not answer within {timeout:g} s.", path=path) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                self._report(method, path, None, started, "timeout")
                raise ODataUnavailable(f"1C did not answer within {timeout:g} s.", path=path) from exc
            self._report(method, path, None, started, str(reason))
            raise ODataUnavailable(f"1C is not reachable at {self.base_url}: {reason}.", path=path) from exc
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            self._report(method, path, None, started, type(exc).__name__)
            raise ODataUnavailable(f"1C dropped the connection ({type(exc).__name__}).", path=path) from exc
        self._report(method, path, status, started)
        return status, payload

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        *,
        timeout: float | None = None,
        sink: IO[bytes] | None = None,
        parse: bool = True,
    ) -> Any:
        """One call; GETs are retried (backoff) on transport errors, 5xx and malformed JSON. Returns parsed
        JSON (or raw bytes when `parse` is False)."""
        url = self.url(path, params)
        safe = method == "GET"
        attempts = self.retries + 1 if safe else 1
        last: ODataError | None = None
        for attempt in range(attempts):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
                if sink is not None:
                    sink.seek(0)
                    sink.truncate()
            try:
                status, payload = self._once(method, url, path, body, timeout or self.timeout, sink)
            except ODataUnavailable as exc:
                last = exc
                continue
            if status in (401, 403):
                code, message = _error_text(payload)
                raise ODataAuthError(
                    message or "1C refused the login or password (or the user has no right to use OData).",
                    status=status,
                    code=code,
                    path=path,
                )
            if status >= 400:
                code, message = _error_text(payload)
                error_cls = ODataUnavailable if status in RETRY_STATUSES else ODataError
                last = error_cls(
                    message or f"HTTP {status} without an error text.", status=status, code=code, path=path
                )
                if status in RETRY_STATUSES and safe:
                    continue
                raise last
            if not parse or sink is not None:
                return payload
            if not payload:
                return None
            try:
                return loads(payload)
            except (ValueError, UnicodeDecodeError):
                if self.on_request is not None:
                    self.on_request(Attempt(method, path, status, 0.0, "malformed JSON"))
                last = ODataBadResponse("1C sent a response that is not valid JSON.", status=status, path=path)
                if safe:
                    continue
                raise last from None
        assert last is not None
        raise last

    # --- reads ---

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, {**(params or {}), "$format": "json"})

    def service_document(self) -> list[str]:
        data = self.get("")
        return [str(item.get("name", "")) for item in (data or {}).get("value", [])]

    def metadata(self, sink: IO[bytes]) -> str:
        """Stream `$metadata` (XML only, can be 17 MB) into `sink`; returns its sha1."""
        self.request("GET", "$metadata", timeout=self.metadata_timeout, sink=sink)
        sink.seek(0)
        digest = hashlib.sha1(usedforsecurity=False)
        while chunk := sink.read(CHUNK):
            digest.update(chunk)
        sink.seek(0)
        return digest.hexdigest()

    def count(self, entity_set: str, filter: str = "") -> int:
        """`…/$count` (a bare number), not `$inlinecount`, which makes 1C ignore paging."""
        raw = self.request("GET", f"{entity_set}/$count", {"$filter": filter}, parse=False)
        try:
            return int(raw.decode("utf-8-sig").strip())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ODataBadResponse("1C sent a count that is not a number.", path=entity_set) from exc

    def fetch(
        self,
        entity_set: str,
        *,
        select: list[str] | None = None,
        filter: str = "",
        orderby: str = "",
        top: int | None = None,
        skip: int | None = None,
    ) -> list[dict[str, Any]]:
        data = self.get(
            entity_set,
            {
                "$select": ",".join(select) if select else None,
                "$filter": filter,
                "$orderby": orderby,
                "$top": top,
                "$skip": skip or None,
            },
        )
        if not isinstance(data, dict) or not isinstance(data.get("value"), list):
            raise ODataBadResponse("1C sent JSON without a `value` list.", path=entity_set)
        return [row for row in data["value"] if isinstance(row, dict)]

    def pages(
        self,
        entity_set: str,
        *,
        select: list[str] | None = None,
        filter: str = "",
        page_size: int = 500,
        start: int = 0,
        prefetch: bool = False,
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(offset, rows) pages ordered by Ref_Key with $top/$skip (1C has no server-driven paging). `prefetch`:
        the next page is requested in a thread while the caller works on this one, so that 1C's time to serve
        it (large $skip is slow) overlaps with the caller's."""

        def fetch(skip: int) -> list[dict[str, Any]]:
            return self.fetch(entity_set, select=select, filter=filter, orderby="Ref_Key", top=page_size, skip=skip)

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odata-page") if prefetch else None
        skip = start
        try:
            pending = pool.submit(fetch, skip) if pool else None
            while True:
                rows = pending.result() if pending else fetch(skip)
                full = len(rows) >= page_size
                if pool and full:
                    pending = pool.submit(fetch, skip + len(rows))
                if rows:
                    yield skip, rows
                if not full:
                    return
                skip += len(rows)
        finally:
            if pool:
                pool.shutdown(wait=False, cancel_futures=True)

    def by_keys(
        self, entity_set: str, keys: list[str], *, select: list[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The objects with these Ref_Keys, as many per request as keep the URL under MAX_URL
        (`Ref_Key eq guid'…' or Ref_Key eq guid'…' …`); objects gone meanwhile are simply not returned."""
        batch: list[str] = []
        for key in keys:
            if batch and len(self.url(entity_set, self._by_keys_params([*batch, key], select))) > MAX_URL:
                yield self.fetch(entity_set, select=select, filter=_keys_filter(batch))
                batch = []
            batch.append(key)
        if batch:
            yield self.fetch(entity_set, select=select, filter=_keys_filter(batch))

    @staticmethod
    def _by_keys_params(keys: list[str], select: list[str] | None) -> dict[str, Any]:
        return {"$select": ",".join(select) if select else None, "$filter": _keys_filter(keys), "$format": "json"}

    def entity(self, entity_set: str, key: str) -> dict[str, Any]:
        data = self.get(self.entity_path(entity_set, key))
        if not isinstance(data, dict):
            raise ODataBadResponse("1C sent JSON that is not an object.", path=entity_set)
        return data

    # --- writes (never retried) ---

    def create(self, entity_set: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", entity_set, {"$format": "json"}, dumps(data))

    def update(self, entity_set: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        path = self.entity_path(entity_set, key)
        return self.request("PATCH", path, {"$format": "json"}, dumps(data))

    def post_document(self, entity_set: str, key: str, *, operational: bool = False) -> None:
        path = f"{self.entity_path(entity_set, key)}/Post"
        self.request("POST", path, {"PostingModeOperational": "true" if operational else "false"}, b"")

    def unpost_document(self, entity_set: str, key: str) -> None:
        self.request("POST", f"{self.entity_path(entity_set, key)}/Unpost", None, b"")


def _keys_filter(keys: list[str]) -> str:
    return " or ".join(f"Ref_Key eq {guid_literal(key)}" for key in keys)
