"""Benchmark the CommerceML catalogue import through the real `/1c/exchange` endpoint over real HTTP.

    .venv/bin/python bench/bench_catalog_import.py                       # 10k and 100k, SQLite and PostgreSQL
    .venv/bin/python bench/bench_catalog_import.py --products 10000 --db postgres --no-write
    .venv/bin/python bench/bench_catalog_import.py --products 10000 --db sqlite --profile /tmp/prof

For each size a realistic catalogue is generated once (cached under the system temp folder): `import.xml`
and `offers.xml` as Управление торговлей 11 writes them (CommerceML 2.08, UTF-8 with BOM, the
`urn:1C.ru:commerceml_2` namespace; a nested group tree, 10 reference properties, 3 price types, 5
warehouses, a fifth of the products with 5 characteristics each) and zipped as 1C sends it.

Then, per database, a fresh Sdelka is started: a new data folder (and on PostgreSQL a scratch database
created and dropped), `sdelka migrate`, `sdelka connection add`, gunicorn serving the WSGI app on a free
loopback port and `sdelka run_huey` as the background worker. A client written with urllib does what 1C
does: checkauth (Basic), init, the zip posted in `file_limit` chunks, `mode=import` for import.xml and then
offers.xml repeated while the answer is `progress`, complete. The same package is then sent a second time
(nothing changed). Peak memory is the high-water mark (VmHWM) of every Sdelka process, reset before each
exchange. The floor is a bare lxml iterparse pass over the two files, and our reader alone.

The figures go into the «Catalogue import (CommerceML)» section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from benchdoc import write_section
from scratchdb import database_busy, scratch_postgres, wait_until_quiet

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Catalogue import (CommerceML)"
CACHE = Path(tempfile.gettempdir()) / "sdelka-bench-catalog"
LOGIN, PASSWORD = "bench-1c", "bench-password-1"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
TARGET_RATE, TARGET_UNCHANGED_RATE, TARGET_MB = 3000, 10000, 300

# --- the catalogue ----------------------------------------------------------------------------------------

PRICE_TYPES = ("Розничная", "Оптовая", "Мелкооптовая")
WAREHOUSES = ("Основной склад", "Склад Москва (Южный порт)", "Склад Санкт-Петербург", "Склад Казань", "Магазин")
PROPERTIES = (
    ("Производитель", 40),
    ("Страна происхождения", 25),
    ("Цвет", 30),
    ("Материал", 20),
    ("Сезон", 4),
    ("Пол", 3),
    ("Бренд", 60),
    ("Гарантия", 6),
    ("Назначение", 15),
    ("Коллекция", 12),
)
SIZES = ("XS", "S", "M", "L", "XL")
_WORDS = (
    "Дрель ударная Шуруповёрт аккумуляторный Перфоратор Лобзик Болгарка угловая Пила дисковая Фрезер Рубанок "
    "Степлер строительный Краскопульт Миксер Куртка Брюки Ботинки Кроссовки Футболка Рюкзак Чайник Утюг Фен "
    "Пылесос Кофеварка Блендер Светильник Кабель Розетка Выключатель Смеситель Унитаз Ламинат Плитка Обои Краска"
)
WORDS = _WORDS.split(" ")
_ADJECTIVES = "профессиональный компактный усиленный бытовой садовый детский мужской женский зимний летний"
ADJECTIVES = _ADJECTIVES.split(" ")


def guid(kind: int, number: int) -> str:
    return str(uuid.UUID(int=(kind << 96) | (0x5D31 << 64) | number))


def _header(out: IO[str]) -> None:
    out.write('\ufeff<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ВерсияСхемы="2.08" '
        'ДатаФормирования="2026-11-27T10:15:02">\n'
    )


OWNER = (
    '<Владелец><Ид>{0}</Ид><Наименование>ООО "Стройснаб"</Наименование><ОфициальноеНаименование>Общество с '
    'ограниченной ответственностью "Стройснаб"</ОфициальноеНаименование><ЮридическийАдрес><Представление>'
    "123456, Москва г, Ленинский пр-кт, дом № 1</Представление></ЮридическийАдрес><ИНН>7723240668</ИНН>"
    "<КПП>772301001</КПП><ОКПО>12345678</ОКПО></Владелец>\n"
)


def _groups(out: IO[str], rng: random.Random) -> list[str]:
    leaves: list[str] = []
    number = 0
    out.write("<Группы>\n")
    for top in range(12):
        number += 1
        out.write(f"<Группа><Ид>{guid(1, number)}</Ид><Наименование>Раздел {top + 1}</Наименование><Группы>\n")
        for sub in range(8):
            number += 1
            out.write(f"<Группа><Ид>{guid(1, number)}</Ид><Наименование>Подраздел {top + 1}.{sub + 1}</Наименование>")
            out.write("<Группы>")
            for leaf in range(rng.randint(2, 6)):
                number += 1
                leaves.append(guid(1, number))
                out.write(
                    f"<Группа><Ид>{guid(1, number)}</Ид><Наименование>{rng.choice(WORDS)} {top + 1}.{sub + 1}."
                    f"{leaf + 1}</Наименование></Группа>"
                )
            out.write("</Группы></Группа>\n")
        out.write("</Группы></Группа>\n")
    out.write("</Группы>\n")
    return leaves


def write_import(path: Path, products: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        _header(out)
        out.write(
            f"<Классификатор><Ид>{guid(9, 1)}</Ид><Наименование>Классификатор (Основной каталог товаров)"
            "</Наименование>\n"
        )
        out.write(OWNER.format(guid(9, 2)))
        leaves = _groups(out, rng)
        out.write("<Свойства>\n")
        for index, (name, count) in enumerate(PROPERTIES, start=1):
            out.write(
                f"<Свойство><Ид>{guid(2, index)}</Ид><Наименование>{name}</Наименование><Обязательное>false"
                "</Обязательное><Множественное>false</Множественное><ТипЗначений>Справочник</ТипЗначений>"
                "<ВариантыЗначений>"
            )
            for value in range(1, count + 1):
                out.write(
                    f"<Справочник><ИдЗначения>{guid(3, index * 1000 + value)}</ИдЗначения><Значение>{name} "
                    f"{value}</Значение></Справочник>"
                )
            out.write(
                "</ВариантыЗначений><ДляТоваров>true</ДляТоваров><ИспользованиеСвойства>true"
                "</ИспользованиеСвойства></Свойство>\n"
            )
        out.write("</Свойства>\n</Классификатор>\n")
        out.write(
            f'<Каталог СодержитТолькоИзменения="false"><Ид>{guid(9, 3)}</Ид><ИдКлассификатора>{guid(9, 1)}'
            "</ИдКлассификатора><Наименование>Основной каталог товаров</Наименование>\n"
        )
        out.write(OWNER.format(guid(9, 2)))
        out.write("<Товары>\n")
        for number in range(1, products + 1):
            word, adjective = rng.choice(WORDS), rng.choice(ADJECTIVES)
            name = escape(f"{word} {adjective} модель {number:06d} ({rng.randint(100, 2000)} Вт)")
            article = f"АР-{number:07d}"
            values = "".join(
                f"<ЗначенияСвойства><Ид>{guid(2, index)}</Ид><Значение>"
                f"{guid(3, index * 1000 + rng.randint(1, count))}</Значение></ЗначенияСвойства>"
                for index, (_name, count) in enumerate(PROPERTIES, start=1)
            )
            description = escape(
                f"<p>{name}: {adjective} {word.lower()} для дома и профессионального применения. "
                f"Гарантия {rng.randint(1, 5)} года. Комплектация: кейс, зарядное устройство, "
                f"{rng.randint(1, 3)} аккумулятора.</p><ul><li>Мощность {rng.randint(100, 2000)} Вт</li>"
                f"<li>Вес {rng.randint(1, 90) / 10} кг</li><li>Артикул {article}</li></ul>"
            )
            out.write(
                f"<Товар><Ид>{guid(4, number)}</Ид><НомерВерсии>AAAAAQAAA{number % 97:02d}=</НомерВерсии>"
                f"<ПометкаУдаления>false</ПометкаУдаления><Артикул>{article}</Артикул><Наименование>{name}"
                "</Наименование>"
                '<БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE">шт'
                "</БазоваяЕдиница>"
                f"<Группы><Ид>{rng.choice(leaves)}</Ид></Группы><Описание>{description}</Описание>"
                f"<Изготовитель><Ид>{guid(5, number % 300)}</Ид><Наименование>Завод {number % 300}"
                "</Наименование></Изготовитель>"
                f"<ЗначенияСвойств>{values}</ЗначенияСвойств>"
                "<СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>22</Ставка>"
                "</СтавкаНалога></СтавкиНалогов>"
                "<ЗначенияРеквизитов>"
                "<ЗначениеРеквизита><Наименование>ВидНоменклатуры</Наименование><Значение>Товар</Значение>"
                "</ЗначениеРеквизита>"
                "<ЗначениеРеквизита><Наименование>ТипНоменклатуры</Наименование><Значение>Товар</Значение>"
                "</ЗначениеРеквизита>"
                f"<ЗначениеРеквизита><Наименование>Полное наименование</Наименование><Значение>{name}"
                "</Значение></ЗначениеРеквизита>"
                f"<ЗначениеРеквизита><Наименование>Вес</Наименование><Значение>{rng.randint(1, 90) / 10}"
                "</Значение></ЗначениеРеквизита>"
                "</ЗначенияРеквизитов></Товар>\n"
            )
        out.write("</Товары>\n</Каталог>\n</КоммерческаяИнформация>\n")


def has_variants(number: int) -> bool:
    return number % 5 == 0


def write_offers(path: Path, products: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        _header(out)
        out.write(
            f'<ПакетПредложений СодержитТолькоИзменения="false"><Ид>{guid(9, 3)}#</Ид><Наименование>Пакет '
            f"предложений (Основной каталог товаров)</Наименование><ИдКаталога>{guid(9, 3)}</ИдКаталога>"
            f"<ИдКлассификатора>{guid(9, 1)}</ИдКлассификатора>\n"
        )
        out.write(OWNER.format(guid(9, 2)))
        out.write("<ТипыЦен>\n")
        for index, name in enumerate(PRICE_TYPES, start=1):
            out.write(
                f"<ТипЦены><Ид>{guid(6, index)}</Ид><Наименование>{name}</Наименование><Валюта>RUB</Валюта>"
                "<Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме><Акциз>false</Акциз>"
                "</Налог></ТипЦены>\n"
            )
        out.write("</ТипыЦен>\n<Склады>\n")
        for index, name in enumerate(WAREHOUSES, start=1):
            out.write(
                f"<Склад><Ид>{guid(7, index)}</Ид><Наименование>{name}</Наименование><Адрес><Представление>"
                f"Россия, г. Москва, ул. Складская, д. {index}</Представление></Адрес></Склад>\n"
            )
        out.write("</Склады>\n<Предложения>\n")
        for number in range(1, products + 1):
            base = f"АР-{number:07d}"
            if has_variants(number):
                offers = [(f"{guid(4, number)}#{guid(8, number * 10 + size)}", SIZES[size]) for size in range(5)]
            else:
                offers = [(guid(4, number), "")]
            for offer_id, size in offers:
                base_price = rng.randint(100, 90000)
                prices = "".join(
                    f"<Цена><Представление>{base_price * (10 - k) // 10} RUB за шт</Представление>"
                    f"<ИдТипаЦены>{guid(6, k + 1)}</ИдТипаЦены><ЦенаЗаЕдиницу>{base_price * (10 - k) // 10}"
                    "</ЦенаЗаЕдиницу><Валюта>RUB</Валюта><Единица>шт</Единица><Коэффициент>1</Коэффициент>"
                    "</Цена>"
                    for k in range(len(PRICE_TYPES))
                )
                stock = [rng.randint(0, 40) for _warehouse in WAREHOUSES]
                per_warehouse = "".join(
                    f'<Склад ИдСклада="{guid(7, index + 1)}" КоличествоНаСкладе="{quantity}"/>'
                    for index, quantity in enumerate(stock)
                )
                characteristics = (
                    "<ХарактеристикиТовара><ХарактеристикаТовара><Наименование>Размер</Наименование>"
                    f"<Значение>{size}</Значение></ХарактеристикаТовара></ХарактеристикиТовара>"
                    if size
                    else ""
                )
                name = f"Товар {number:06d}" + (f" ({size})" if size else "")
                out.write(
                    f"<Предложение><Ид>{offer_id}</Ид><НомерВерсии>AAAAAQ{number % 89:02d}==</НомерВерсии>"
                    f"<Артикул>{base}</Артикул><Наименование>{name}</Наименование>"
                    '<БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE">шт'
                    f"</БазоваяЕдиница>{characteristics}<Цены>{prices}</Цены><Количество>{sum(stock)}</Количество>"
                    f"{per_warehouse}</Предложение>\n"
                )
        out.write("</Предложения>\n</ПакетПредложений>\n</КоммерческаяИнформация>\n")


@dataclass
class Package:
    folder: Path
    products: int
    xml_bytes: int
    zip_path: Path

    @property
    def files(self) -> list[Path]:
        return [self.folder / "import.xml", self.folder / "offers.xml"]


def package(products: int) -> Package:
    """The generated catalogue of `products` products (made once, then reused from the cache)."""
    folder = CACHE / str(products)
    zip_path = folder / "v8_5D31_1.zip"
    if not zip_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating {products} products in {folder} …", flush=True)
        write_import(folder / "import.xml", products)
        write_offers(folder / "offers.xml", products)
        partial = zip_path.with_suffix(".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in ("import.xml", "offers.xml"):
                archive.write(folder / name, name)
        partial.rename(zip_path)
    xml_bytes = sum((folder / name).stat().st_size for name in ("import.xml", "offers.xml"))
    return Package(folder, products, xml_bytes, zip_path)


# --- memory of the Sdelka processes ---------------------------------------------------------------------


def _status(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, …); [] when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []


def _descendants(pids: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        fields = _stat(entry) if entry.isdigit() else []
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    stack = list(pids)
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


class MemoryWatch:
    """Peak RSS per role: VmHWM (reset through clear_refs) plus sampling, so forked children count too."""

    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pids(self) -> dict[str, list[int]]:
        return {role: _descendants([pid]) for role, pid in self.roles.items()}

    def __enter__(self) -> MemoryWatch:
        self.peaks = dict.fromkeys(self.roles, 0)
        for pids in self._pids().values():
            for pid in pids:
                with contextlib.suppress(OSError):
                    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _measure(self) -> None:
        for role, pids in self._pids().items():
            peak = max((_status(pid, "VmHWM") for pid in pids), default=0)
            self.peaks[role] = max(self.peaks[role], peak)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self._measure()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._measure()

    def mb(self) -> dict[str, float]:
        return {role: round(kb / 1024, 1) for role, kb in self.peaks.items()}


# --- Sdelka, started as in production --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sdelka:
    env: dict[str, str]
    port: int
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "sdelka"), *args], env=self.env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if result.returncode:
            raise RuntimeError(f"sdelka {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self, profile: str | None) -> None:
        def spawn(name: str, command: list[str]) -> None:
            log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the child's lifetime)
            self.processes[name] = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

        spawn(
            "server",
            [
                str(BIN / "gunicorn"),
                "sdelka.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
        )
        consumer = [str(BIN / "sdelka"), "run_huey"]
        if profile:
            pyspy = os.environ.get("PY_SPY", "/tmp/pyspy/bin/py-spy")
            # Collapsed stacks for a .txt file (easy to sum up by function), speedscope otherwise; idle time
            # included, so waiting for the database shows.
            kind = "raw" if profile.endswith(".txt") else "speedscope"
            consumer = [pyspy, "record", "--idle", "--format", kind, "-o", profile, "--rate", "100", "--", *consumer]
        spawn("consumer", consumer)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not start; see {self.logs}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def sdelka(database_url: str | None, profile: str | None) -> Iterator[Sdelka]:
    data_dir = Path(tempfile.mkdtemp(prefix="sdelka-bench-catalog-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SDELKA_DEV", "DEBUG")}
    env.update(
        SDELKA_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="sdelka.settings",
        SECRET_KEY="bench-only-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SDELKA_HUEY_NAME=f"bench-{os.getpid()}",
        PYTHONPATH=str(ROOT / "src"),
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    app = Sdelka(env=env, port=free_port(), logs=data_dir)
    try:
        app.manage("migrate", "--noinput", "-v0")
        app.manage(
            "connection", "add", "--kind", "site", "--name", "Бенчмарк УТ 11", "--login", LOGIN, "--password", PASSWORD
        )
        app.start(profile)
        yield app
    finally:
        app.stop()
        if profile is None:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"logs kept in {data_dir}")


# --- 1C, as an HTTP client ------------------------------------------------------------------------------


class OneC:
    """The requests stock 1C makes in a catalogue exchange (the cookie sent back by hand, sessid in the query)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/1c/exchange"
        self.cookie = ""
        self.sessid = ""
        self.file_limit = 0

    def request(self, mode: str, body: bytes | None = None, **params: str) -> list[str]:
        query = {"type": "catalog", "mode": mode, **params}
        if self.sessid:
            query["sessid"] = self.sessid
        request = urllib.request.Request(f"{self.base}?{urlencode(query)}", data=body, method="POST" if body else "GET")
        if mode == "checkauth":
            token = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        if self.cookie:
            request.add_header("Cookie", self.cookie)
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read().decode("windows-1251").splitlines()

    def expect(self, lines: list[str], *statuses: str) -> list[str]:
        if not lines or lines[0] not in statuses:
            raise RuntimeError(f"1C got {lines!r}")
        return lines

    def exchange(self, pack: Package) -> dict[str, float]:
        """One whole exchange; returns seconds per step."""
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        lines = self.expect(self.request("checkauth"), "success")
        self.cookie = f"{lines[1]}={lines[2]}"
        self.sessid = next((line[7:] for line in lines if line.startswith("sessid=")), "")
        init = dict(line.split("=", 1) for line in self.request("init") if "=" in line)
        self.file_limit = int(init["file_limit"])
        with open(pack.zip_path, "rb") as archive:
            while chunk := archive.read(self.file_limit):
                self.expect(self.request("file", chunk, filename=pack.zip_path.name), "success")
        seconds["upload"] = time.perf_counter() - started
        for name in ("import.xml", "offers.xml"):
            step = time.perf_counter()
            while self.expect(self.request("import", filename=name), "success", "progress")[0] == "progress":
                time.sleep(0.1)
            seconds[name] = time.perf_counter() - step
        self.expect(self.request("complete"), "success")
        seconds["total"] = time.perf_counter() - started
        return seconds


# --- the parse-only floor -------------------------------------------------------------------------------


def child_parse(paths: list[str]) -> None:
    """Runs in its own process: a bare lxml pass, then our reader, over the same files."""
    import resource

    import django

    django.setup()
    from lxml import etree

    from sdelka.exchange.commerceml.reader import read_package

    started = time.perf_counter()
    elements = 0
    for path in paths:
        # The records of a catalogue are the children of Товары and Предложения: free each one when read.
        for _event, element in etree.iterparse(path, events=("end",), tag=("{*}Товар", "{*}Предложение")):
            elements += 1
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
    lxml_seconds = time.perf_counter() - started
    lxml_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reader_seconds: float | None = None
    records = None
    if os.environ.get("BENCH_FLOOR") != "lxml":
        started = time.perf_counter()
        records = sum(1 for path in paths for _record in read_package(path))
        reader_seconds = round(time.perf_counter() - started, 2)
    print(
        json.dumps(
            {
                "lxml_seconds": round(lxml_seconds, 2),
                "lxml_peak_mb": round(lxml_kb / 1024, 1),
                "reader_seconds": reader_seconds,
                "reader_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "records": records,
            }
        )
    )


def parse_floor(pack: Package, lxml_only: bool = False) -> dict[str, Any]:
    env = {
        "BENCH_FLOOR": "lxml" if lxml_only else "both",
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sdelka.settings",
        "SDELKA_TESTING": "1",
        "SDELKA_DATA_DIR": str(CACHE / "parse-env"),
        "PYTHONPATH": str(ROOT / "src"),
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child-parse", *map(str, pack.files)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


# --- one measurement ------------------------------------------------------------------------------------


def db_version(app: Sdelka) -> str:
    code = (
        "from django.db import connection as c\n"
        "cur = c.cursor()\n"
        "cur.execute('select sqlite_version()' if c.vendor == 'sqlite' else 'show server_version')\n"
        "print(c.vendor, cur.fetchone()[0].split()[0])"
    )
    return app.manage("shell", "-c", code).strip().splitlines()[-1]


def counts(app: Sdelka) -> dict[str, int]:
    code = (
        "import json\n"
        "from sdelka.catalog.models import Product, Variant, Price, StockLevel\n"
        "print(json.dumps({'products': Product.objects.count(), 'variants': Variant.objects.count(),"
        " 'prices': Price.objects.count(), 'stock': StockLevel.objects.count()}))"
    )
    return dict(json.loads(app.manage("shell", "-c", code).strip().splitlines()[-1]))


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if len(fields) > 12:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _worker_pids(app: Sdelka) -> list[int]:
    """The worker's processes, without py-spy when it runs the worker (--profile): its sampling never idles."""
    return [pid for pid in _descendants([app.processes["consumer"].pid]) if _command(pid) != "py-spy"]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def wait_until_idle(app: Sdelka, database_url: str | None, limit: float = 300) -> float:
    """Wait for what an exchange left running in the background (the statistics refresh a big file queues once
    1C has its answer): the next exchange is measured on an idle worker and database, as it would come minutes
    later in real life. Returns the seconds waited."""
    last = [_cpu_ticks(_worker_pids(app))]

    def busy() -> bool:
        ticks = _cpu_ticks(_worker_pids(app))
        working, last[0] = ticks - last[0] > 5, ticks  # more than 50 ms of CPU in the last second
        return working or bool(database_url and database_busy(database_url))

    return wait_until_quiet(busy, limit)


def measure(pack: Package, db: str, pg_url: str, profile: str | None) -> dict[str, Any]:
    scratch = (
        scratch_postgres(pg_url, f"_bench_catalog_{os.getpid()}") if db == "postgres" else contextlib.nullcontext()
    )
    with scratch as url, sdelka(url, profile) as app:
        roles = {"server": app.processes["server"].pid, "consumer": app.processes["consumer"].pid}
        result: dict[str, Any] = {"db": db_version(app), "products": pack.products, "load": os.getloadavg()[0]}
        for label in ("first", "again"):
            with MemoryWatch(roles) as watch:
                seconds = OneC(app.port).exchange(pack)
                background = wait_until_idle(app, url)
            result[label] = {
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
                "rate": round(pack.products / seconds["total"]),
                "peak_mb": watch.mb(),
                "background_s": background,
            }
            print(f"  {label}: {result[label]}", flush=True)
        result["stored"] = counts(app)
        if result["stored"]["products"] != pack.products:
            raise RuntimeError(f"{result['stored']['products']} products stored, {pack.products} sent")
    return result


# --- report ---------------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]], floors: dict[int, dict[str, Any]]) -> str:
    lines = [
        "| database | products | XML, MB | zip, MB | first upload, s | products/s | unchanged again, s | products/s "
        "| peak RSS web / worker, MB | again: web / worker, MB | lxml pass, s | our reader, s | first ÷ lxml "
        "| again ÷ lxml | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        floor, first, again = floors[r["products"]], r["first"], r["again"]
        pack = package(r["products"])
        lines.append(
            f"| {r['db']} | {r['products']:,} | {pack.xml_bytes / 2**20:.0f} "
            f"| {pack.zip_path.stat().st_size / 2**20:.0f} "
            f"| {first['seconds']['total']} | **{first['rate']:,}** | {again['seconds']['total']} "
            f"| **{again['rate']:,}** | {first['peak_mb']['server']} / {first['peak_mb']['consumer']} "
            f"| {again['peak_mb']['server']} / {again['peak_mb']['consumer']} | {floor['lxml_seconds']} "
            f"| {floor['reader_seconds'] or '—'} | {first['seconds']['total'] / floor['lxml_seconds']:.1f}× "
            f"| {again['seconds']['total'] / floor['lxml_seconds']:.1f}× | {r.get('load', 0):.1f} |"
        )
    return "\n".join(lines)


def steps(results: list[dict[str, Any]]) -> str:
    lines = [
        "| database | products | run | upload, s | import.xml, s | offers.xml, s | total, s | then in background, s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for label in ("first", "again"):
            s = r[label]["seconds"]
            lines.append(
                f"| {r['db']} | {r['products']:,} | {label} | {s['upload']} | {s['import.xml']} | {s['offers.xml']} "
                f"| {s['total']} | {r[label]['background_s']} |"
            )
    return "\n".join(lines)


def section(results: list[dict[str, Any]], floors: dict[int, dict[str, Any]], notes: str) -> str:
    stored = results[-1]["stored"]
    return (
        f"{SECTION}\n\n"
        "A catalogue as Управление торговлей 11 unloads it (CommerceML 2.08, UTF-8 with BOM, namespaced; nested "
        "groups, 10 reference properties, 3 price types, 5 warehouses, a fifth of the products with 5 "
        "characteristics each) is zipped and sent to `/1c/exchange` over HTTP as 1C does it: checkauth, init, "
        "the zip in `file_limit` chunks, `mode=import` of import.xml and offers.xml polled until `success`, "
        "complete. Sdelka runs as in production: gunicorn (2 workers) and `sdelka run_huey`, on a fresh "
        "database. *products/s* is products ÷ the wall time of the whole exchange (upload, unzip, parse, store); "
        "*again* is the same package sent a second time (nothing changed); peak RSS is the high-water mark of "
        "the largest web process and of the worker during that exchange. After a big file the worker refreshes the "
        "database's statistics once 1C has its answer; the next exchange starts when that and any other "
        "background work is over (*then in background*: seconds the worker or the database stayed busy after the "
        "exchange, two seconds at least, the time it takes to see it idle). The floor is a bare lxml iterparse "
        "pass over the two XML files, and our reader alone (records, no database; a dash when not run). "
        "*÷ lxml* divides an exchange's wall time by that floor measured in the same run, which keeps figures "
        "taken on a busy machine comparable; *load avg* is the 1-minute load when the database's runs began. "
        f"Stored at the largest size: {stored['products']:,} products, {stored['variants']:,} variants, "
        f"{stored['prices']:,} prices, {stored['stock']:,} stock levels. "
        f"`bench/bench_catalog_import.py` on {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs. Targets (PostgreSQL): ≥ {TARGET_RATE:,} products/s, "
        f"≥ {TARGET_UNCHANGED_RATE:,} products/s unchanged, peak RSS < {TARGET_MB} MB, not growing with size.\n\n"
        f"{table(results, floors)}\n\n"
        "Time per step:\n\n"
        f"{steps(results)}\n" + (f"\n{notes.strip()}\n" if notes.strip() else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-parse", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--products", type=int, action="append", help="Catalogue size (repeatable; 10000 and 100000).")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG), help="A PostgreSQL server.")
    parser.add_argument(
        "--profile", help="py-spy the worker into this file (collapsed stacks if .txt, else speedscope)."
    )
    parser.add_argument(
        "--largest-db", choices=("sqlite", "postgres", "both"), help="Databases for sizes above the smallest."
    )
    parser.add_argument("--lxml-floor-only", action="store_true", help="Skip the reader-alone floor (slow).")
    parser.add_argument("--notes", default="", help="A paragraph appended to the section (e.g. before/after).")
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    args = parser.parse_args()
    if args.child_parse:
        child_parse(args.child_parse)
        return
    sizes = args.products or [10_000, 100_000]
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: list[dict[str, Any]] = []
    floors: dict[int, dict[str, Any]] = {}
    for size in sizes:
        pack = package(size)
        floors[size] = parse_floor(pack, args.lxml_floor_only)
        print(f"{size} products, {pack.xml_bytes / 2**20:.0f} MB XML: floor {floors[size]}", flush=True)
        wanted = databases
        if args.largest_db and size > min(sizes):
            wanted = ["sqlite", "postgres"] if args.largest_db == "both" else [args.largest_db]
        for db in wanted:
            print(f"{db}, {size} products …", flush=True)
            results.append(measure(pack, db, args.pg_url, args.profile))
    print(table(results, floors))
    print(steps(results))
    if not args.no_write:
        write_section(DOC, SECTION, section(results, floors, args.notes))
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
