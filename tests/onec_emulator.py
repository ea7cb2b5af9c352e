"""An in-suite 1C: drives `/1c/exchange` through Django's test Client exactly as stock 1C does.

checkauth with HTTP Basic → the cookie (sent back as a `Cookie:` header built by hand, as 1C does, never
from the client's cookie jar) and, for newer builds, `sessid` in every query string → init (zip, file_limit)
→ one zip of all files (or each file alone when zip=no), cut into `file_limit` chunks posted as raw bodies
→ `mode=import` per XML file, repeated while the answer is `progress` → deactivate → complete.

`OneCEmulator.old_1c(...)` is an old 1C (УТ 10.3, old exchange modules): no `version` at init, no `sessid`,
and in the order exchange its file is imported within `mode=file` (it never calls `mode=import`, and sends no
`complete`).
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.test import Client

ENCODING = "windows-1251"

# 1C uploads the classifier first, then goods, then offers and their split parts.
_ORDER = [
    r"^groups",
    r"^units",
    r"^storages",
    r"^properties",
    r"^pricelists",
    r"^import",
    r"^goods",
    r"^offers",
    r"^prices",
    r"^rests",
]


def import_order(name: str) -> tuple[int, str]:
    base = name.rsplit("/", 1)[-1].lower()
    for position, pattern in enumerate(_ORDER):
        if re.search(pattern, base):
            return (position, base)
    return (len(_ORDER), base)


@dataclass
class Answer:
    status: str
    lines: list[str]
    raw: bytes
    content_type: str
    http_status: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class ExchangeResult:
    checkauth: Answer
    init: Answer | None = None
    uploads: list[Answer] = field(default_factory=list)
    imports: dict[str, Answer] = field(default_factory=dict)
    progress_rounds: dict[str, int] = field(default_factory=dict)
    deactivate: Answer | None = None
    complete: Answer | None = None

    @property
    def ok(self) -> bool:
        answers = [self.checkauth, *self.uploads, *self.imports.values(), self.complete]
        return (
            self.init is not None
            and self.init.status.startswith("zip=")
            and self.complete is not None
            and all(answer is not None and answer.status == "success" for answer in answers)
        )

    def __str__(self) -> str:
        steps = [("checkauth", self.checkauth), ("init", self.init), *(("file", a) for a in self.uploads)]
        steps += [(f"import {name}", a) for name, a in self.imports.items()]
        steps += [("deactivate", self.deactivate), ("complete", self.complete)]
        return "; ".join(f"{step}: {answer.text!r}" for step, answer in steps if answer is not None)


class OneCEmulator:
    def __init__(
        self,
        client: Client,
        *,
        login: str,
        password: str,
        path: str = "/1c/exchange",
        exchange_type: str = "catalog",
        send_sessid: bool = True,
        use_zip: bool = True,
        version: str = "2.10",
        zip_name: str = "v8_2C7E_125d5b.zip",
        max_progress_rounds: int = 10_000,
        old_protocol: bool = False,
    ) -> None:
        self.client = client
        self.login = login
        self.password = password
        self.path = path
        self.type = exchange_type
        self.send_sessid = send_sessid
        self.use_zip = use_zip
        self.version = version
        self.zip_name = zip_name
        self.max_progress_rounds = max_progress_rounds
        self.old_protocol = old_protocol
        self.cookie: tuple[str, str] | None = None
        self.sessid = ""
        self.timestamp = ""
        self.file_limit = 0
        self.server_zip = False

    @classmethod
    def old_1c(cls, client: Client, *, login: str, password: str, **options: Any) -> OneCEmulator:
        """An old 1C: no `version` at init, no `sessid`; its order files are imported within `mode=file`."""
        return cls(client, login=login, password=password, version="", send_sessid=False, old_protocol=True, **options)

    # --- raw requests ---

    def _url(self, mode: str, **params: str) -> str:
        query: dict[str, str] = {"type": self.type, "mode": mode, **params}
        if self.send_sessid and self.sessid and mode != "checkauth":
            query["sessid"] = self.sessid
        return f"{self.path}?{urlencode(query)}"

    def _headers(self, *, auth: bool = False) -> dict[str, str]:
        headers: dict[str, str] = {}
        if auth:
            token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode("ascii")
            headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
        if self.cookie is not None:
            headers["HTTP_COOKIE"] = f"{self.cookie[0]}={self.cookie[1]}"
        return headers

    def _answer(self, response: Any) -> Answer:
        self.client.cookies.clear()  # 1C keeps no cookie jar: it sends back only what checkauth printed
        raw = response.content
        lines = raw.decode(ENCODING).split("\n")
        while lines and lines[-1] == "":
            lines.pop()
        return Answer(
            status=lines[0] if lines else "",
            lines=lines,
            raw=raw,
            content_type=response.get("Content-Type", ""),
            http_status=response.status_code,
        )

    def get_raw(self, mode: str, **params: str) -> Any:
        """The response itself (for the XML answers of `type=sale`: `query`, `info`)."""
        response = self.client.get(self._url(mode, **params), **self._headers())
        self.client.cookies.clear()
        return response

    def get(self, mode: str, *, auth: bool = False, **params: str) -> Answer:
        return self._answer(self.client.get(self._url(mode, **params), **self._headers(auth=auth)))

    def post(self, mode: str, body: bytes, **params: str) -> Answer:
        return self._answer(
            self.client.post(
                self._url(mode, **params), data=body, content_type="application/octet-stream", **self._headers()
            )
        )

    # --- protocol steps ---

    def checkauth(self) -> Answer:
        answer = self.get("checkauth", auth=True)
        if answer.status == "success":
            self.cookie = (answer.lines[1], answer.lines[2])
            for line in answer.lines[3:]:
                key, _sep, value = line.partition("=")
                if key == "sessid":
                    self.sessid = value
                elif key == "timestamp":
                    self.timestamp = value
        return answer

    def init(self) -> Answer:
        params = {"version": self.version} if self.version else {}
        answer = self.get("init", **params)
        for line in answer.lines:
            key, _sep, value = line.partition("=")
            if key == "zip":
                self.server_zip = value == "yes"
            elif key == "file_limit":
                self.file_limit = int(value)
        return answer

    def upload(self, name: str, data: bytes) -> list[Answer]:
        """Post `data` under `name` in `file_limit` chunks (an empty file still takes one request)."""
        limit = self.file_limit or len(data) or 1
        answers = []
        for start in range(0, max(len(data), 1), limit):
            answer = self.post("file", data[start : start + limit], filename=name)
            answers.append(answer)
            if answer.status != "success":
                break
        return answers

    def import_file(self, name: str) -> tuple[Answer, int]:
        rounds = 0
        while True:
            answer = self.get("import", filename=name)
            if answer.status != "progress":
                return answer, rounds
            rounds += 1
            if rounds > self.max_progress_rounds:
                raise AssertionError(f"import of {name} never finished: {answer.text}")

    def deactivate(self) -> Answer:
        return self.get("deactivate", timestamp=self.timestamp or "0")

    def complete(self) -> Answer:
        return self.get("complete")

    # --- a whole exchange ---

    @staticmethod
    def make_zip(files: Mapping[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    def exchange(
        self, files: Mapping[str, bytes], *, deactivate: bool = False, stop_on_failure: bool = True
    ) -> ExchangeResult:
        """A whole catalogue exchange of `files` (name → bytes; images under import_files/… included)."""
        result = ExchangeResult(checkauth=self.checkauth())
        if result.checkauth.status != "success":
            return result
        result.init = self.init()
        if not result.init.status.startswith("zip="):
            return result
        if self.use_zip and self.server_zip:
            result.uploads.extend(self.upload(self.zip_name, self.make_zip(files)))
        else:
            for name, data in files.items():
                result.uploads.extend(self.upload(name, data))
        if any(answer.status != "success" for answer in result.uploads):
            return result
        xml_names = sorted((name for name in files if name.lower().endswith(".xml")), key=import_order)
        for name in xml_names:
            answer, rounds = self.import_file(name)
            result.imports[name] = answer
            result.progress_rounds[name] = rounds
            if answer.status != "success" and stop_on_failure:
                return result
        if deactivate:
            result.deactivate = self.deactivate()
        result.complete = self.complete()
        return result

    # --- orders (type=sale) ---

    def query(self) -> SaleQuery:
        """`mode=query`: the orders file, as bytes exactly as sent, with its Content-Type."""
        response = self.get_raw("query")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return SaleQuery(
            raw=body,
            content_type=response.get("Content-Type", ""),
            content_length=response.get("Content-Length", ""),
            http_status=response.status_code,
        )

    def success(self) -> Answer:
        return self.get("success")

    def send_file(self, name: str, data: bytes) -> tuple[Answer, int]:
        """1C's answer file: upload (zipped when the site allows) and import it, looping over `progress`.
        An old 1C stops after the upload: the answer to its last chunk carries the outcome of the import."""
        if self.use_zip and self.server_zip:
            uploads = self.upload(self.zip_name, self.make_zip({name: data}))
        else:
            uploads = self.upload(name, data)
        failed = [answer for answer in uploads if answer.status != "success"]
        if failed:
            return failed[0], 0
        if self.old_protocol:
            return uploads[-1], 0
        return self.import_file(name)

    def sale_exchange(self, answers: Mapping[str, bytes] | None = None, *, confirm: bool = True) -> SaleResult:
        """A whole order exchange as 1C runs it: checkauth, init, query, success (unless `confirm` is
        False: 1C failed to store the orders), then 1C's own files (file + import), complete (an old 1C:
        file alone, and no complete)."""
        self.type = "sale"
        result = SaleResult(checkauth=self.checkauth())
        if result.checkauth.status != "success":
            return result
        result.init = self.init()
        result.query = self.query()
        if confirm:
            result.success = self.success()
        for name, data in (answers or {}).items():
            answer, _rounds = self.send_file(name, data)
            result.imports[name] = answer
        if not self.old_protocol:
            result.complete = self.complete()
        return result


@dataclass
class SaleQuery:
    raw: bytes
    content_type: str
    content_length: str
    http_status: int

    @property
    def charset(self) -> str:
        return self.content_type.partition("charset=")[2].strip().lower()

    @property
    def text(self) -> str:
        data = self.raw[3:] if self.raw.startswith(b"\xef\xbb\xbf") else self.raw
        return data.decode(self.charset or ENCODING)


@dataclass
class SaleResult:
    checkauth: Answer
    init: Answer | None = None
    query: SaleQuery | None = None
    success: Answer | None = None
    imports: dict[str, Answer] = field(default_factory=dict)
    complete: Answer | None = None
