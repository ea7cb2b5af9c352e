"""An in-suite fake 1C:Enterprise 8.3 standard OData server, faithful to ../shared/spec/onec-odata.md.

* `$metadata` is the real УТ 11 excerpt plus the configuration's characteristic objects (see `schema.py`);
  the service document lists the published sets; unpublished sets answer 400 / code 6.
* Default format is **Atom**; JSON only with `$format=json` (or `Accept: application/json`).
* JSON values as 1C writes them: Int64/Int16 and `odata.count` as strings, Double as numbers, empty references
  as the zero GUID, empty dates `0001-01-01T00:00:00`, fixed-length strings with their trailing spaces.
* `$filter` subset (`filters.py`; a filter of `Ref_Key eq guid'…'` alone or or-ed is a keyed lookup, as 1C's
  index makes it), `$select` (unknown field → 400 / code 6), `$orderby`, `$top`/`$skip`, and
  `$inlinecount=allpages`, which — as in 1C — makes the server **ignore** `$top`/`$skip`; `…/$count`.
  `+` in the query is not a space (the real platform does not decode it).
* HTTP Basic with a UTF-8 login; POST (201 + Location, the whole object), PATCH (the whole object; tabular parts
  replaced wholesale, `LineNumber` must be 1..n), unknown properties ignored, over-long strings truncated,
  a string sent into an Int64 field ignored, DataVersion incremented on every write; `/Post`, `/Unpost`.
* Fault modes, armed with :meth:`FakeOneC.fail`: ``500``, ``503``, ``timeout``, ``drop`` (the connection is
  closed without an answer), ``malformed`` (truncated JSON), ``slow`` (a slow session start) and
  ``refuse`` (HTTP 500, code -1 with the configuration's error text, as a refused write or posting).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from .filters import FilterError, compile_filter
from .schema import Type, build_metadata

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
BASE_PATH = "/base/odata/standard.odata"
STRING_LENGTHS = {"Description": 100, "Code": 9, "ИНН": 12, "КПП": 9, "Артикул": 25}
_GUID = r"guid'[0-9a-fA-F-]{36}'"
# `Ref_Key eq guid'…' or Ref_Key eq guid'…' …`: 1C reads these through the primary key's index, not by a scan.
_KEYS_ONLY = re.compile(rf"\s*Ref_Key eq {_GUID}(?:\s+or\s+Ref_Key eq {_GUID})*\s*")
_PATH = re.compile(r"^(?P<set>[^(/]+)(?:\((?P<key>[^)]*)\))?(?:/(?P<tail>.+))?$")


def _sort_key(name: str) -> Any:
    def key(row: dict[str, Any]) -> str:
        return str(row.get(name, ""))

    return key


class ODataFault(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Fault:
    mode: str
    times: int = 1
    method: str | None = None
    path_contains: str | None = None
    query_contains: str | None = None  # in the query string as sent (`$skip=4`)
    message: str = ""
    after: int = 0  # let this many matching requests through first


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes = b""
    status: int = 0


@dataclass
class FakeOneC:
    configuration: str = "bp30"
    login: str = "Обмен"
    password: str = "секрет"
    omit: set[str] = field(default_factory=set)
    hang_seconds: float = 3.0
    slow_start_seconds: float = 0.3

    def __post_init__(self) -> None:
        self.metadata, self.types = build_metadata(self.configuration, omit=self.omit)
        self.data: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.types}
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.base_url = ""
        self._version = 0
        self._code = 0

    # --- data ---

    def next_version(self) -> str:
        self._version += 1
        return base64.b64encode(self._version.to_bytes(8, "big")).decode("ascii")

    def _default(self, edm: str) -> Any:
        return {
            "Edm.Guid": ZERO_GUID,
            "Edm.Boolean": False,
            "Edm.DateTime": EMPTY_DATE,
            "Edm.Double": Decimal(0),
            "Edm.Int64": 0,
            "Edm.Int32": 0,
            "Edm.Int16": 0,
        }.get(edm, "")

    def add(self, entity_set: str, **values: Any) -> dict[str, Any]:
        """Store an object as 1C would have it (missing properties get their empty values); returns it."""
        spec = self.types[entity_set]
        with self.lock:
            entity: dict[str, Any] = {name: self._default(edm) for name, edm in spec.properties}
            entity.update({part: [] for part in spec.rows})
            entity.update(values)
            if "Ref_Key" in entity and entity["Ref_Key"] in ("", ZERO_GUID):
                entity["Ref_Key"] = str(uuid.uuid4())
            if "Code" in entity and not entity["Code"]:
                self._code += 1
                entity["Code"] = f"{self._code:09d}"
            if "Number" in entity and not entity["Number"]:
                self._code += 1
                entity["Number"] = f"0000-{self._code:06d}"  # 1C numbers new documents itself
            if "DataVersion" in entity:
                entity["DataVersion"] = self.next_version()
            self.data[entity_set][self._key(spec, entity)] = entity
        return entity

    def change(self, entity_set: str, ref: str, **values: Any) -> dict[str, Any]:
        """Change an object in "1C" (a user's edit): new DataVersion."""
        with self.lock:
            entity = self.data[entity_set][ref]
            entity.update(values)
            entity["DataVersion"] = self.next_version()
        return entity

    @staticmethod
    def _key(spec: Type, entity: dict[str, Any]) -> str:
        return ",".join(str(entity.get(k, "")) for k in spec.keys)

    def fail(self, mode: str, **kwargs: Any) -> Fault:
        fault = Fault(mode, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str, query: str = "") -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method and fault.method != method:
                    continue
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.query_contains and fault.query_contains not in query:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- serialisation ---

    def _json_value(self, edm: str, value: Any) -> Any:
        if edm in ("Edm.Int64", "Edm.Int16"):
            return str(value)
        if edm == "Edm.Double":
            number = Decimal(str(value))
            return int(number) if number == number.to_integral_value() else float(number)
        return value

    def _types_of(self, entity_set: str) -> dict[str, str]:
        spec = self.types[entity_set]
        return dict(spec.properties)

    def to_json(self, entity_set: str, entity: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        types = self._types_of(entity_set)
        spec = self.types[entity_set]
        out: dict[str, Any] = {}
        for name, value in entity.items():
            if select is not None and name not in select:
                continue
            if name in spec.rows:
                out[name] = [
                    {k: (str(v) if k == "LineNumber" else self._row_value(v)) for k, v in row.items()} for row in value
                ]
            else:
                out[name] = self._json_value(types.get(name, "Edm.String"), value)
        if select is None:
            key = f"guid'{entity.get('Ref_Key')}'"
            for name in types:
                if name.endswith("_Key") and name != "Ref_Key":
                    nav = name[:-4]
                    out[f"{nav}@navigationLinkUrl"] = f"{entity_set}({key})/{nav}"
        return out

    @staticmethod
    def _row_value(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return value

    def to_atom_entry(self, entity_set: str, entity: dict[str, Any]) -> str:
        types = self._types_of(entity_set)
        props = []
        for name, edm in types.items():
            value = entity.get(name)
            attrs = "" if edm == "Edm.String" else f' m:type="{edm}"'
            props.append(f"<d:{name}{attrs}>{escape(str(value))}</d:{name}>")
        ident = f"{self.base_url}/{entity_set}(guid'{entity.get('Ref_Key', '')}')"
        return (
            f"<entry><id>{escape(ident)}</id>"
            f'<category term="StandardODATA.{entity_set}" '
            'scheme="http://schemas.microsoft.com/ado/2007/08/dataservices/scheme"/>'
            f'<title type="text"/><updated>2026-01-01T00:00:00</updated><author/>'
            f'<content type="application/xml"><m:properties>{"".join(props)}</m:properties></content></entry>'
        )

    def atom_feed(self, entity_set: str, entities: list[dict[str, Any]], count: int | None) -> str:
        entries = "".join(self.to_atom_entry(entity_set, e) for e in entities)
        count_xml = f"<m:count>{count}</m:count>" if count is not None else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" '
            'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
            f'xml:base="{escape(self.base_url)}/">'
            f"<id>{escape(self.base_url)}/{entity_set}</id><title type='text'>{entity_set}</title>"
            f"<updated>2026-01-01T00:00:00</updated>{count_xml}{entries}</feed>"
        )

    # --- queries ---

    def query(self, entity_set: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], int | None]:
        types = self._types_of(entity_set)
        spec = self.types[entity_set]
        keys = _keys_only(params.get("$filter", "")) if "Ref_Key" in types else None
        with self.lock:
            table = self.data[entity_set]
            rows = list(table.values()) if keys is None else [table[key] for key in keys if key in table]
        if "$filter" in params and keys is None:
            try:
                predicate = compile_filter(params["$filter"], set(types) | set(spec.rows))
            except FilterError as exc:
                raise ODataFault(400, "14", f"Ошибка разбора параметра запроса $filter: {exc}") from exc
            rows = [row for row in rows if predicate(row)]
        if "$orderby" in params:
            for part in reversed([p.strip() for p in params["$orderby"].split(",") if p.strip()]):
                name, _, direction = part.partition(" ")
                if name not in types:
                    raise ODataFault(400, "6", f"Неправильный адрес: поле {name} не найдено")
                rows.sort(key=_sort_key(name), reverse=direction.strip() == "desc")
        if params.get("$inlinecount") == "allpages":
            return rows, len(rows)  # 1C ignores $top and $skip together with $inlinecount
        skip = int(params.get("$skip", "0") or 0)
        rows = rows[skip:]
        if "$top" in params:
            rows = rows[: int(params["$top"])]
        return rows, None

    def select_list(self, entity_set: str, params: dict[str, str]) -> list[str] | None:
        raw = params.get("$select")
        if not raw or raw in ("*", "**"):
            return None
        names = [name.strip() for name in raw.split(",") if name.strip()]
        known = set(self._types_of(entity_set)) | set(self.types[entity_set].rows)
        for name in names:
            if name not in known:
                raise ODataFault(400, "6", f"Неправильный адрес: свойство {name} не найдено")
        return names

    # --- virtual tables of registers ---

    def virtual_table(self, entity_set: str, function: str, args: dict[str, str]) -> list[dict[str, Any]]:
        """`Balance` of an accumulation or accounting register and `SliceLast` of an information register,
        computed from the stored records at `Period` (default: now), filtered by `Condition` (and, for
        accounting, `AccountCondition`) like 1C does; JSON values as 1C writes them."""
        spec = self.types[entity_set]
        period = args.get("Period", "").removeprefix("datetime'").rstrip("'") or "9999-12-31T23:59:59"
        with self.lock:
            records = [dict(r) for r in self.data[entity_set].values() if str(r.get("Period", "")) <= period]
        if function == "SliceLast" and spec.register == "information":
            latest: dict[tuple[Any, ...], dict[str, Any]] = {}
            dimensions = [k for k in spec.keys if k != "Period"]
            for record in sorted(records, key=lambda r: str(r["Period"])):
                latest[tuple(record.get(d) for d in dimensions)] = record
            rows = list(latest.values())
            props = dict(spec.properties)
        elif function == "Balance" and spec.register in ("accounting", "accumulation"):
            rows = self._balance(spec, records, args)
            props = dict(spec.balance)
        else:
            raise ODataFault(400, "6", f"Неправильный адрес: функция {function} не найдена")
        if args.get("Condition"):
            try:
                predicate = compile_filter(args["Condition"], set(props))
            except FilterError as exc:
                raise ODataFault(400, "14", f"Ошибка разбора параметра Condition: {exc}") from exc
            rows = [row for row in rows if predicate(row)]
        return [{name: self._json_value(props[name], row.get(name)) for name in props} for row in rows]

    def _balance(self, spec: Type, records: list[dict[str, Any]], args: dict[str, str]) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], Decimal] = {}
        key: tuple[Any, ...]
        if spec.register == "accounting":
            dimensions = ["Account_Key", "ExtDimension1", "ExtDimension1_Type"]
            for r in records:
                amount = Decimal(str(r.get("Сумма") or 0))
                for side, sign in (("Dr", 1), ("Cr", -1)):
                    dimension = f"ExtDimension{side}1"
                    key = (r.get(f"Account{side}_Key"), r.get(dimension), r.get(f"{dimension}_Type"))
                    sums[key] = sums.get(key, Decimal(0)) + sign * amount
        else:
            dimensions = [name for name, _edm in spec.balance if not name.endswith("Balance")]
            for r in records:
                sign = -1 if r.get("RecordType") == "Expense" else 1
                key = tuple(r.get(d) for d in dimensions)
                sums[key] = sums.get(key, Decimal(0)) + sign * Decimal(str(r.get("Сумма") or 0))
        rows = []
        for key, total in sums.items():
            if total == 0:
                continue
            row: dict[str, Any] = dict(zip(dimensions, key, strict=True))
            row["СуммаBalance"] = total
            if spec.register == "accounting":
                row["СуммаBalanceDr"], row["СуммаBalanceCr"] = max(total, Decimal(0)), max(-total, Decimal(0))
            rows.append(row)
        if spec.register == "accounting" and args.get("AccountCondition"):
            try:
                predicate = compile_filter(args["AccountCondition"], {"Account_Key"})
            except FilterError as exc:
                raise ODataFault(400, "14", f"Ошибка разбора параметра AccountCondition: {exc}") from exc
            rows = [row for row in rows if predicate(row)]
        return rows

    # --- writes ---

    def write(self, entity_set: str, entity: dict[str, Any], body: dict[str, Any]) -> None:
        types = self._types_of(entity_set)
        spec = self.types[entity_set]
        for name, value in body.items():
            if name in spec.rows:
                if not isinstance(value, list):
                    raise ODataFault(500, "-1", "Внутренняя ошибка сервиса OData")
                numbers = []
                for row in value:
                    if "LineNumber" not in row:
                        raise ODataFault(500, "-1", "Не задан номер строки табличной части")
                    numbers.append(int(row["LineNumber"]))
                if numbers != list(range(1, len(numbers) + 1)):
                    raise ODataFault(400, "4", "Неправильное значение свойства LineNumber")
                entity[name] = [
                    {
                        key: cell[: STRING_LENGTHS[key]] if isinstance(cell, str) and key in STRING_LENGTHS else cell
                        for key, cell in dict(row, LineNumber=int(row["LineNumber"])).items()
                    }
                    for row in value
                ]  # rows are replaced wholesale; their strings cut like the object's
                continue
            edm = types.get(name)
            if edm is None or name == "Ref_Key" or name == "DataVersion":
                continue  # unknown properties and the key are ignored, silently
            if edm in ("Edm.Int64", "Edm.Int16") and isinstance(value, str) and not value.isdigit():
                continue  # 1C ignores a string sent into an integer field
            if edm == "Edm.Guid" and not re.fullmatch(r"[0-9a-fA-F-]{36}", str(value)):
                raise ODataFault(400, "1", f"Не удалось преобразовать строку '{value}' к типу Edm.Guid")
            if edm == "Edm.Boolean" and not isinstance(value, bool):
                raise ODataFault(400, "1", f"Не удалось преобразовать строку '{value}' к типу Edm.Boolean")
            if edm == "Edm.String" and isinstance(value, str) and name in STRING_LENGTHS:
                value = value[: STRING_LENGTHS[name]]  # silent truncation
            if edm == "Edm.Double":
                value = Decimal(str(value))
            entity[name] = value
        entity["DataVersion"] = self.next_version()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOneC
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- plumbing ---

    def _handle(self, method: str) -> None:
        fake = self.fake
        raw_path, _, raw_query = self.path.partition("?")
        path = unquote(raw_path, encoding="utf-8")
        query: dict[str, str] = {}
        for part in raw_query.split("&"):
            if part:
                name, _, value = part.partition("=")
                query[unquote(name)] = unquote(value, encoding="utf-8")  # '+' stays '+', as in 1C
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(method, path, query, raw_query, dict(self.headers.items()), body)
        with fake.lock:
            fake.requests.append(request)
        self._json = query.get("$format", "").startswith(("json", "application/json")) or "application/json" in (
            self.headers.get("Accept") or ""
        )
        fault = fake.take_fault(method, path, raw_query)
        if fault is not None and self._fault(fault, request):
            return
        if not self._authorised():
            request.status = 401
            self._send(401, b"401 - Unauthorized", "text/html", {"WWW-Authenticate": 'Basic realm="1C"'})
            return
        try:
            status, payload, ctype, headers = self._route(method, path, query, body)
        except ODataFault as exc:
            status, payload, ctype, headers = exc.status, self._error_body(exc), self._error_type(), {}
        request.status = status
        self._send(status, payload, ctype, headers)

    def _fault(self, fault: Fault, request: Request) -> bool:
        """Act out a fault; True when the request is answered (or dropped) by it."""
        fake = self.fake
        if fault.mode == "slow":
            fake.stopping.wait(fake.slow_start_seconds)
            return False
        if fault.mode == "timeout":
            fake.stopping.wait(fake.hang_seconds)
            return False
        if fault.mode == "drop":
            request.status = -1
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.mode == "500":
            request.status = 500
            error = ODataFault(500, "-1", fault.message or "Внутренняя ошибка сервера")
            self._send(500, self._error_body(error), self._error_type())
            return True
        if fault.mode == "503":
            request.status = 503
            self._send(503, b"<html><body>Service Unavailable</body></html>", "text/html")
            return True
        if fault.mode == "malformed":
            request.status = 200
            self._send(200, b'{"odata.metadata": "x", "value": [{"Ref_Key": "', "application/json;charset=utf-8")
            return True
        if fault.mode == "refuse":
            request.status = 500
            error = ODataFault(500, "-1", fault.message or "Не удалось записать: Контрагенты!")
            self._send(500, self._error_body(error), self._error_type())
            return True
        raise AssertionError(f"unknown fault mode {fault.mode}")

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return decoded == f"{self.fake.login}:{self.fake.password}"

    def _error_type(self) -> str:
        return "application/json;charset=utf-8" if self._json else "application/xml;charset=utf-8"

    def _error_body(self, exc: ODataFault) -> bytes:
        if self._json:
            return json.dumps(
                {"odata.error": {"code": exc.code, "message": {"lang": "ru", "value": exc.message}}},
                ensure_ascii=False,
            ).encode("utf-8")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<m:error xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
            f"<m:code>{exc.code}</m:code><m:message>{escape(exc.message)}</m:message></m:error>"
        ).encode()

    def _send(self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _dump(self, data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode("utf-8")

    # --- routes ---

    def _route(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes, str, dict[str, str]]:
        fake = self.fake
        if not path.startswith(BASE_PATH):
            raise ODataFault(404, "6", "Неправильный адрес")
        rest = path[len(BASE_PATH) :].lstrip("/")
        json_type = "application/json;charset=utf-8"
        if rest == "":
            names = sorted(fake.types)
            if self._json:
                service = {"odata.metadata": fake.base_url, "value": [{"name": n, "url": n} for n in names]}
                return 200, self._dump(service), json_type, {}
            items = "".join(f'<collection href="{n}"><atom:title>{n}</atom:title></collection>' for n in names)
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?><service xmlns="http://www.w3.org/2007/app" '
                f'xmlns:atom="http://www.w3.org/2005/Atom"><workspace>{items}</workspace></service>'
            )
            return 200, xml.encode(), "application/atomsvc+xml;charset=utf-8", {}
        if rest == "$metadata":
            return 200, fake.metadata, "application/xml;charset=utf-8", {}
        match = _PATH.match(rest)
        if match is None or match.group("set") not in fake.types:
            segment = match.group("set") if match else rest
            raise ODataFault(400, "6", f"Неправильный адрес: сегмент пути '{segment}' не найден")
        entity_set, key, tail = match.group("set"), match.group("key"), match.group("tail")
        if key is None:
            if method == "GET" and tail and tail.endswith(")") and "(" in tail:
                function, _, raw_args = tail[:-1].partition("(")
                rows = fake.virtual_table(entity_set, function, _function_args(raw_args))
                table = {"odata.metadata": f"{fake.base_url}/$metadata#{entity_set}_{function}", "value": rows}
                return 200, self._dump(table), json_type, {}
            if tail == "$count" and method == "GET":
                rows, _ = fake.query(entity_set, {k: v for k, v in query.items() if k == "$filter"})
                return 200, str(len(rows)).encode(), "text/plain;charset=utf-8", {}
            if method == "GET" and tail is None:
                select = fake.select_list(entity_set, query)
                rows, count = fake.query(entity_set, query)
                if not self._json:
                    return 200, fake.atom_feed(entity_set, rows, count).encode(), "application/atom+xml", {}
                doc: dict[str, Any] = {"odata.metadata": f"{fake.base_url}/$metadata#{entity_set}"}
                if count is not None:
                    doc["odata.count"] = str(count)
                doc["value"] = [fake.to_json(entity_set, row, select) for row in rows]
                return 200, self._dump(doc), json_type, {}
            if method == "POST" and tail is None:
                data = self._body(body)
                with fake.lock:
                    entity = fake.add(entity_set)
                    fake.write(entity_set, entity, data)
                ident = f"{entity_set}(guid'{entity['Ref_Key']}')"
                location = f"{fake.base_url}/{quote(ident)}"
                out = self._dump(fake.to_json(entity_set, entity, None))
                return 201, out, json_type, {"Location": location}
            raise ODataFault(405, "19", "Метод HTTP не допускается")
        ref = self._key(key)
        with fake.lock:
            found = fake.data[entity_set].get(ref)
        if found is None:
            raise ODataFault(404, "9", f'Экземпляр сущности "{entity_set}" не найден по переданному ключу.')
        entity = found
        if method == "GET" and tail is None:
            one: dict[str, Any] = {"odata.metadata": f"{fake.base_url}/$metadata#{entity_set}/@Element"}
            one.update(fake.to_json(entity_set, entity, fake.select_list(entity_set, query)))
            return 200, self._dump(one), json_type, {}
        if method == "PATCH" and tail is None:
            with fake.lock:
                fake.write(entity_set, entity, self._body(body))
            return 200, self._dump(fake.to_json(entity_set, entity, None)), json_type, {}
        if method == "POST" and tail in ("Post", "Unpost"):
            if not entity_set.startswith("Document_"):
                raise ODataFault(400, "11", f"Метод {tail} не найден")
            with fake.lock:
                if tail == "Post" and entity.get("DeletionMark"):
                    raise ODataFault(500, "-1", "Помеченный на удаление документ не может быть проведен!")
                entity["Posted"] = tail == "Post"
                entity["DataVersion"] = fake.next_version()
            return 200, b"", "", {}
        raise ODataFault(405, "19", "Метод HTTP не допускается")

    @staticmethod
    def _key(key: str) -> str:
        parts = []
        for part in key.split(","):
            _, _, literal = part.rpartition("=")
            literal = literal.strip()
            if literal.startswith("guid'"):
                literal = literal[5:-1]
            parts.append(literal)
        return ",".join(parts)

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body.decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ODataFault(500, "-1", "Внутренняя ошибка сервиса OData: неверный формат JSON") from exc
        if not isinstance(data, dict):
            raise ODataFault(400, "2", "Неверный формат запроса")
        return data


def _keys_only(text: str) -> list[str] | None:
    """The keys of a filter that only picks objects by Ref_Key, each once; None for any other filter."""
    if not _KEYS_ONLY.fullmatch(text):
        return None
    return list(dict.fromkeys(key.lower() for key in re.findall(r"guid'([0-9a-fA-F-]{36})'", text)))


def _function_args(raw: str) -> dict[str, str]:
    """The arguments of a virtual table call (`Period=datetime'…',Condition='…'`) by name; a string literal is
    unquoted (a doubled quote inside is one quote), other literals are kept as written."""
    args: dict[str, str] = {}
    i = 0
    while i < len(raw):
        equals = raw.find("=", i)
        if equals < 0:
            raise ODataFault(400, "21", "Неправильные аргументы функции")
        name, j = raw[i:equals].strip(), equals + 1
        if raw[j : j + 1] == "'":
            value, j = [], j + 1
            while j < len(raw):
                if raw[j] == "'" and raw[j + 1 : j + 2] == "'":
                    value.append("'")
                    j += 2
                elif raw[j] == "'":
                    j += 1
                    break
                else:
                    value.append(raw[j])
                    j += 1
            args[name] = "".join(value)
        else:
            end = raw.find(",", j)
            end = len(raw) if end < 0 else end
            args[name] = raw[j:end]
            j = end
        i = j + 1
    return args


@contextmanager
def serve(fake: FakeOneC) -> Iterator[FakeOneC]:
    """Run the fake on 127.0.0.1 on a free port in a thread; `fake.base_url` is the standard.odata URL."""
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host!s}:{port}{BASE_PATH}"
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        time.sleep(0)
