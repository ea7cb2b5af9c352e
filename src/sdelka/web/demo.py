"""The demo company that `sdelka seed_demo` loads: a believable Russian wholesaler with two sales teams.

Everything is drawn from one `random.Random(seed)`, so the same seed and sizes give the same data;
only the dates move with `today`, so that overdue tasks stay overdue. Rows are written with
`bulk_create` in batches (history rows too, through simple_history's bulk helper), which keeps the
full company well under a minute on SQLite and PostgreSQL.

Requisites are valid by construction (ru-requisites.md): ИНН and ОГРН check digits, КПП paired with
a 10-digit ИНН, accounts whose control key matches the БИК of a real bank, EAN-13 check digits.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth.hashers import make_password
from django.db import models, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from sdelka.accounts.models import Role, Team, User
from sdelka.activities.models import Note, Task
from sdelka.catalog.models import Price, PriceType, Product, ProductGroup, ProductKind, StockLevel, Unit, Warehouse
from sdelka.core.models import ExchangeRate
from sdelka.core.requisites import account_key_matches
from sdelka.core.vat import VatMode, VatRate, line_amounts, money
from sdelka.parties.models import (
    ContactPerson,
    Counterparty,
    CounterpartyBankAccount,
    CounterpartyGroup,
    CounterpartyKind,
    Tag,
)
from sdelka.sales.models import (
    OPEN_INVOICE_STATUSES,
    Contract,
    ContractKind,
    Deal,
    Invoice,
    InvoiceLine,
    InvoiceNumberSeries,
    InvoiceStatus,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    PaymentDirection,
    PaymentSource,
    Pipeline,
    Stage,
    StageKind,
)

DEFAULT_SEED = 20260101
DEFAULT_PASSWORD = "demo12345"
DEFAULT_COUNTERPARTIES = 500
DEFAULT_PRODUCTS = 300
BATCH = 500
HISTORY_REASON = "Демо-данные"
VAT_22_FROM = date(2026, 1, 1)

M = TypeVar("M", bound=models.Model)

# ---------------------------------------------------------------------------------------------------
# Valid requisites
# ---------------------------------------------------------------------------------------------------

INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
INN11_WEIGHTS = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def _inn_check(digits: str, weights: Sequence[int]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 % 10)


def make_inn10(rng: random.Random, region: str) -> str:
    """An organisation's ИНН: region, tax office, five digits, the check digit."""
    base = region + f"{rng.randint(1, 51):02d}" + _digits(rng, 5)
    return base + _inn_check(base, INN10_WEIGHTS)


def make_inn12(rng: random.Random, region: str) -> str:
    """A person's or an entrepreneur's ИНН: region, tax office, six digits, two check digits."""
    base = region + f"{rng.randint(1, 51):02d}" + _digits(rng, 6)
    base += _inn_check(base, INN11_WEIGHTS)
    return base + _inn_check(base, INN12_WEIGHTS)


def make_kpp(inn: str, reason: str = "01") -> str:
    """The КПП of a head office registered where its ИНН was given."""
    return inn[:4] + reason + "001"


def make_ogrn(rng: random.Random, region: str, year: int) -> str:
    """ОГРН: 1, year of registration, region, tax office, five digits, int(d1..d12) mod 11 mod 10."""
    base = "1" + f"{year % 100:02d}" + region + f"{rng.randint(1, 51):02d}" + _digits(rng, 5)
    return base + str(int(base) % 11 % 10)


def make_ogrnip(rng: random.Random, region: str, year: int) -> str:
    """ОГРНИП: 3, year, region, nine digits, int(d1..d14) mod 13 mod 10."""
    base = "3" + f"{year % 100:02d}" + region + _digits(rng, 9)
    return base + str(int(base) % 13 % 10)


def _okpo_check(digits: str) -> str:
    for start in (1, 3):
        remainder = sum(int(d) * ((start + i - 1) % 10 + 1) for i, d in enumerate(digits)) % 11
        if remainder < 10:
            return str(remainder)
    return "0"


def make_okpo(rng: random.Random, length: int = 8) -> str:
    """ОКПО: 8 digits for an organisation, 10 for an entrepreneur, the last one a check digit."""
    base = str(rng.randint(1, 9)) + _digits(rng, length - 2)
    return base + _okpo_check(base)


def make_account(rng: random.Random, bik: str, balance: str = "40702", currency: str = "810") -> str:
    """A 20-digit account (currency code in positions 6–8, 810 for roubles) whose control key (9th digit)
    matches the БИК (Bank of Russia letter № 515)."""
    rest = _digits(rng, 11)
    for key in range(10):
        account = balance + currency + str(key) + rest
        if account_key_matches(account, bik):
            return account
    # The key digit has weight 3, coprime with 10, so exactly one of the ten digits fits.
    raise AssertionError("unreachable")


def ean13_check_digit(digits12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return str((10 - total % 10) % 10)


def make_ean13(rng: random.Random) -> str:
    """An EAN-13 with a Russian GS1 prefix (460–469) and a valid check digit."""
    base = "46" + str(rng.randint(0, 9)) + _digits(rng, 9)
    return base + ean13_check_digit(base)


# fmt: off
# ---------------------------------------------------------------------------------------------------
# Reference lists
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bank:
    bik: str
    name: str
    correspondent_account: str


ACCOUNT_CURRENCY_CODES = {"RUB": "810", "USD": "840", "EUR": "978"}  # positions 6–8 of an account number
# The banks whose БИК and correspondent accounts ru-requisites.md §5 lists as verified.
BANKS = (
    Bank("044525225", "ПАО Сбербанк", "30101810400000000225"),
    Bank("044525187", "Банк ВТБ (ПАО)", "30101810700000000187"),
    Bank("044525593", "АО «Альфа-Банк»", "30101810200000000593"),
    Bank("044525411", "Филиал «Центральный» Банка ВТБ (ПАО)", "30101810145250000411"),
)


@dataclass(frozen=True)
class City:
    name: str
    region: str  # first two digits of ИНН and ОГРН region
    phone_code: str
    postcode: int  # first postcode of the city; offices get nearby ones


CITIES = (
    City("Москва", "77", "495", 101000), City("Москва", "77", "499", 115000),
    City("Санкт-Петербург", "78", "812", 190000), City("Екатеринбург", "66", "343", 620000),
    City("Новосибирск", "54", "383", 630000), City("Казань", "16", "843", 420000),
    City("Нижний Новгород", "52", "831", 603000), City("Самара", "63", "846", 443000),
    City("Ростов-на-Дону", "61", "863", 344000), City("Краснодар", "23", "861", 350000),
    City("Воронеж", "36", "473", 394000), City("Пермь", "59", "342", 614000), City("Челябинск", "74", "351", 454000),
    City("Уфа", "02", "347", 450000), City("Омск", "55", "3812", 644000), City("Красноярск", "24", "391", 660000),
    City("Тюмень", "72", "3452", 625000), City("Ярославль", "76", "4852", 150000), City("Тула", "71", "4872", 300000),
)
MOSCOW = CITIES[0]

STREETS = (
    "ул. Ленина", "ул. Советская", "пр-т Мира", "ул. Гагарина", "ул. Садовая", "ул. Промышленная", "ул. Заводская",
    "ул. Комсомольская", "ул. Молодёжная", "ул. Московская", "ул. Строителей", "ул. Пушкина", "ул. Кирова",
    "ул. Свердлова", "пр-т Победы", "ул. Энергетиков", "ул. Индустриальная", "ул. Транспортная", "ш. Энтузиастов",
    "ул. Складочная", "Варшавское ш.", "ул. Лесная", "ул. Чкалова",
)

MALE_FIRST = (
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Борис", "Вадим", "Виктор", "Владимир", "Дмитрий", "Евгений",
    "Игорь", "Илья", "Кирилл", "Константин", "Максим", "Михаил", "Николай", "Олег", "Павел", "Роман", "Сергей",
    "Станислав", "Юрий",
)
FEMALE_FIRST = (
    "Анна", "Алёна", "Валентина", "Виктория", "Галина", "Дарья", "Екатерина", "Елена", "Ирина", "Ксения", "Людмила",
    "Марина", "Мария", "Наталья", "Ольга", "Светлана", "Татьяна", "Юлия",
)
# Male surname; the female form adds «а».
SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
    "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев",
    "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев",
    "Романов", "Воробьёв", "Сергеев", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин",
    "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков",
    "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев",
    "Титов", "Марков",
)
# Father's name → (male patronymic, female patronymic).
PATRONYMICS = (
    ("Иванович", "Ивановна"), ("Петрович", "Петровна"), ("Сергеевич", "Сергеевна"),
    ("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"), ("Андреевич", "Андреевна"),
    ("Викторович", "Викторовна"), ("Владимирович", "Владимировна"), ("Дмитриевич", "Дмитриевна"),
    ("Николаевич", "Николаевна"), ("Олегович", "Олеговна"), ("Павлович", "Павловна"), ("Михайлович", "Михайловна"),
    ("Юрьевич", "Юрьевна"), ("Евгеньевич", "Евгеньевна"), ("Игоревич", "Игоревна"), ("Анатольевич", "Анатольевна"),
    ("Борисович", "Борисовна"),
)

NAME_ROOTS = (
    "Вектор", "Альянс", "Гранит", "Меридиан", "Техносфера", "Энергия", "Прогресс", "Север", "Восток", "Континент",
    "Ресурс", "Партнёр", "Монолит", "Атлант", "Феникс", "Орион", "Лидер", "Горизонт", "Спектр", "Импульс", "Квант",
    "Элемент", "Радиус", "Фактор", "Базис", "Профиль", "Эталон", "Магистраль", "Арсенал", "Полюс", "Союз", "Стандарт",
    "Форвард", "Сигма", "Триада", "Кредо", "Вертикаль", "Омега", "Престиж", "Регион", "Династия", "Содружество",
    "Велес", "Ладога", "Алтай",
)
NAME_HEADS = (
    "Строй", "Техно", "Энерго", "Урал", "Сибирь", "Волга", "Пром", "Агро", "Металл", "Электро", "Авто", "Тепло",
    "Газ", "Мед", "Инвест", "Транс", "Лес", "Нева", "Кама", "Дон", "Инжиниринг", "Спец",
)
NAME_TAILS = (
    "снаб", "сервис", "комплект", "монтаж", "торг", "пром", "ресурс", "систем", "логистик", "трейд", "строй",
    "маркет", "проект", "техника", "мастер", "групп",
)
NAME_PREFIXES = ("", "", "", "", "Торговый дом ", "Группа компаний ", "ПК ", "СК ", "ТК ", "НПО ")

POSITIONS = (
    "Коммерческий директор", "Главный бухгалтер", "Менеджер по закупкам", "Начальник отдела снабжения",
    "Главный инженер", "Заведующий складом", "Инженер-энергетик", "Специалист по закупкам", "Руководитель проекта",
    "Офис-менеджер", "Прораб", "Заместитель директора",
)
DEAL_SOURCES = (
    "Сайт", "Входящий звонок", "Рекомендация", "Выставка", "Холодный звонок", "Тендер", "Повторная продажа",
)
LOST_REASONS = (
    "Дорого: выбрали поставщика дешевле", "Нет бюджета в этом году", "Проект отложен заказчиком",
    "Не устроили сроки поставки", "Не выходит на связь", "Закупили у постоянного поставщика", "Проиграли тендер",
)
TAGS = (
    "Ключевой клиент", "Дилер", "Строительство", "Розница", "Производство", "Новый клиент", "Тендеры",
    "Просрочка оплаты",
)
NOTES = (
    "Обсудили условия поставки, клиент просит отсрочку платежа 14 дней.",
    "Отправил коммерческое предложение с оптовыми ценами, ждём ответа до конца недели.",
    "Клиент планирует ремонт склада во втором квартале, интересуется кабелем и освещением.",
    "Бухгалтерия просит присылать счета на электронную почту главного бухгалтера.",
    "Встреча в офисе клиента: показали каталог, договорились о тестовой поставке.",
    "Сменился менеджер по закупкам, новый контакт внесён в карточку.",
    "Просят доставку до объекта, разгрузка своими силами.", "Сверка взаиморасчётов проведена, расхождений нет.",
    "Клиент участвует в тендере, нужна спецификация с ценами до пятницы.",
    "Претензий по последней поставке нет, готовят следующую заявку.",
)
TASK_TITLES = (
    "Позвонить: уточнить решение по КП", "Отправить коммерческое предложение", "Согласовать спецификацию",
    "Уточнить реквизиты для договора", "Подготовить договор поставки", "Назначить встречу с закупщиком",
    "Отправить акт сверки", "Согласовать сроки отгрузки", "Поздравить с днём рождения", "Выслать каталог новинок",
)
INTERNAL_TASKS = (
    "Подготовить отчёт по продажам за месяц", "Обновить прайс-лист для дилеров", "Провести планёрку отдела",
    "Проверить дебиторскую задолженность",
)

TRANSLIT = {
    **dict(zip("абвгдезийклмнопрстуфыэ", "abvgdeziyklmnoprstufye", strict=True)),
    "ё": "e", "ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ъ": "", "ь": "", "ю": "yu", "я": "ya",
}


def translit(text: str) -> str:
    """Latin letters for logins, e-mails and domains: «Фёдоров» → «fedorov»."""
    out = "".join(TRANSLIT.get(ch, ch) for ch in text.lower())
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "-") else "-" for ch in out).strip("-")


# Staff: username, last name, first name, patronymic, role, team key.
STAFF = (
    ("sokolov", "Соколов", "Андрей", "Викторович", Role.DIRECTOR, None),
    ("belova", "Белова", "Ирина", "Сергеевна", Role.ACCOUNTANT, None),
    ("kuznetsov", "Кузнецов", "Дмитрий", "Олегович", Role.HEAD, "moscow"),
    ("smirnova", "Смирнова", "Анна", "Павловна", Role.MANAGER, "moscow"),
    ("volkov", "Волков", "Игорь", "Алексеевич", Role.MANAGER, "moscow"),
    ("morozova", "Морозова", "Екатерина", "Андреевна", Role.MANAGER, "moscow"),
    ("lebedev", "Лебедев", "Сергей", "Николаевич", Role.HEAD, "regions"),
    ("novikov", "Новиков", "Павел", "Игоревич", Role.MANAGER, "regions"),
    ("fedorova", "Фёдорова", "Ольга", "Викторовна", Role.MANAGER, "regions"),
    ("kozlov", "Козлов", "Максим", "Сергеевич", Role.MANAGER, "regions"),
)
TEAMS = {"moscow": "Отдел продаж Москва", "regions": "Отдел продаж Регионы"}
COMPANY_DOMAIN = "td-vektor.ru"

# ---------------------------------------------------------------------------------------------------
# Catalogue templates: (group key, name, variants, ОКЕИ, price range in roubles, VAT, kind, makers)
# ---------------------------------------------------------------------------------------------------

GROUPS = (
    ("el", "Электротехника", None, ""), ("cable", "Кабель и провод", "el", "CAB"),
    ("auto", "Автоматика и щиты", "el", "AUT"), ("light", "Освещение", "el", "LGT"),
    ("tools", "Инструмент", None, ""), ("power", "Электроинструмент", "tools", "PWT"),
    ("hand", "Ручной инструмент", "tools", "HND"), ("plumb", "Сантехника и отопление", None, ""),
    ("pipes", "Трубы и фитинги", "plumb", "PIP"), ("valves", "Краны, смесители, радиаторы", "plumb", "VLV"),
    ("fast", "Крепёж и метизы", None, ""), ("screws", "Саморезы и шурупы", "fast", "SCR"),
    ("anchors", "Анкеры, дюбели, гвозди", "fast", "ANC"), ("ppe", "Спецодежда и СИЗ", None, "PPE"),
    ("food", "Продукты для офиса и столовой", None, ""), ("grocery", "Бакалея и напитки", "food", "GRO"),
    ("dairy", "Молочная продукция", "food", "DAI"), ("services", "Услуги", None, "SRV"),
)


@dataclass(frozen=True)
class Template:
    group: str
    name: str
    variants: tuple[str, ...]
    okei: str
    low: int
    high: int
    vat: str = VatRate.VAT_22
    kind: str = ProductKind.GOODS
    makers: tuple[str, ...] = ("",)


R10 = VatRate.VAT_10
SERVICE = ProductKind.SERVICE
AMPS = ("6 А", "10 А", "16 А", "20 А", "25 А", "32 А", "40 А", "50 А", "63 А")
SIZES = ("48-50", "52-54", "56-58", "60-62")
POWER_BRANDS = ("Makita", "Bosch", "Интерскол", "DeWALT", "Metabo")
HAND_BRANDS = ("Зубр", "Kraftool", "Stayer")
MIXER_BRANDS = ("Grohe", "Iddis", "Rossinka")
BRAND_VARIANTS = (POWER_BRANDS, HAND_BRANDS, MIXER_BRANDS)  # the variant is the maker

TEMPLATES = (
    Template(
        "cable", "Кабель ВВГнг(А)-LS",
        ("2х1,5", "3х1,5", "3х2,5", "3х4", "3х6", "3х10", "5х2,5", "5х4", "5х6", "5х10"), "006", 40, 900,
        makers=("Кольчугино", "Севкабель", "Камкабель"),
    ),
    Template("cable", "Провод ПуГВ", ("1х1,5", "1х2,5", "1х4", "1х6", "1х10"), "006", 15, 150),
    Template("cable", "Кабель NYM", ("3х1,5", "3х2,5", "5х1,5", "5х2,5"), "006", 50, 260),
    Template("cable", "Кабель КГ-ХЛ", ("3х2,5", "3х4", "4х6", "4х10"), "006", 90, 700),
    Template("cable", "Кабель витая пара U/UTP кат. 5e 4х2х0,52", ("",), "006", 18, 30),
    Template("auto", "Автоматический выключатель ВА47-29 1P C", AMPS, "796", 110, 400, makers=("IEK",)),
    Template("auto", "Автоматический выключатель ВА47-29 3P C", AMPS, "796", 450, 1300, makers=("IEK",)),
    Template(
        "auto", "Выключатель дифференциального тока Easy9 2P 30 мА", ("16 А", "25 А", "40 А", "63 А"), "796", 2200,
        4800, makers=("Schneider Electric",),
    ),
    Template("auto", "Контактор КМИ", ("9 А", "12 А", "18 А", "25 А", "32 А"), "796", 900, 3500, makers=("IEK",)),
    Template(
        "auto", "Щит распределительный ЩРН-П", ("8 модулей", "12 модулей", "18 модулей", "24 модуля", "36 модулей"),
        "796", 700, 3200, makers=("EKF",),
    ),
    Template("light", "Светильник светодиодный ДПО", ("18 Вт", "24 Вт", "36 Вт", "40 Вт"), "796", 600, 1900),
    Template(
        "light", "Панель светодиодная 595х595", ("36 Вт 4000 К", "36 Вт 6500 К", "40 Вт 4000 К", "40 Вт 6500 К"),
        "796", 950, 1800, makers=("Gauss",),
    ),
    Template(
        "light", "Прожектор светодиодный СДО", ("10 Вт", "20 Вт", "30 Вт", "50 Вт", "100 Вт", "150 Вт"), "796", 350,
        4500, makers=("Navigator",),
    ),
    Template(
        "light", "Лампа светодиодная A60 E27", ("7 Вт", "10 Вт", "13 Вт", "15 Вт", "20 Вт"), "796", 70, 260,
        makers=("Navigator",),
    ),
    Template("light", "Светильник уличный консольный ДКУ", ("30 Вт", "50 Вт", "100 Вт", "150 Вт"), "796", 2500, 9500),
    Template("power", "Дрель ударная", POWER_BRANDS, "796", 3500, 12000),
    Template("power", "Шуруповёрт аккумуляторный 18 В", POWER_BRANDS, "796", 5500, 21000),
    Template("power", "Перфоратор SDS-plus", POWER_BRANDS, "796", 6500, 28000),
    Template("power", "Углошлифовальная машина 125 мм", POWER_BRANDS, "796", 3200, 14000),
    Template("power", "Лобзик электрический", POWER_BRANDS, "796", 3900, 16000),
    Template("power", "Пила циркулярная 190 мм", POWER_BRANDS, "796", 6900, 24000),
    Template("power", "Фен строительный 2000 Вт", POWER_BRANDS, "796", 2300, 9000),
    Template("power", "Миксер строительный", POWER_BRANDS, "796", 6500, 19000),
    Template("hand", "Набор отвёрток, 6 предметов", HAND_BRANDS, "704", 450, 1500),
    Template("hand", 'Набор торцевых головок 1/2", 24 предмета', HAND_BRANDS, "704", 2900, 7500),
    Template("hand", "Молоток слесарный 500 г", HAND_BRANDS, "796", 380, 950),
    Template("hand", "Плоскогубцы комбинированные 180 мм", HAND_BRANDS, "796", 420, 1300),
    Template("hand", "Бокорезы 160 мм", HAND_BRANDS, "796", 390, 1200),
    Template("hand", "Рулетка 5 м", HAND_BRANDS, "796", 190, 650),
    Template("hand", "Рулетка 8 м", HAND_BRANDS, "796", 290, 850),
    Template("hand", "Уровень строительный 600 мм", HAND_BRANDS, "796", 450, 1400),
    Template("hand", "Уровень строительный 1000 мм", HAND_BRANDS, "796", 650, 1900),
    Template("hand", "Ножовка по дереву 450 мм", HAND_BRANDS, "796", 350, 990),
    Template("hand", "Ключ разводной 250 мм", HAND_BRANDS, "796", 520, 1500),
    Template("hand", "Нож строительный 18 мм", HAND_BRANDS, "796", 150, 480),
    Template("hand", "Стеклорез масляный", HAND_BRANDS, "796", 260, 790),
    Template("hand", "Киянка резиновая 680 г", HAND_BRANDS, "796", 250, 700),
    Template("pipes", "Труба полипропиленовая PN20", ("20 мм", "25 мм", "32 мм", "40 мм"), "006", 45, 260),
    Template(
        "pipes", "Труба ПНД ПЭ100 SDR17", ("20 мм", "25 мм", "32 мм", "40 мм", "50 мм", "63 мм"), "006", 30, 290,
    ),
    Template("pipes", "Муфта полипропиленовая", ("20 мм", "25 мм", "32 мм", "40 мм"), "796", 8, 60),
    Template("pipes", "Угольник полипропиленовый 90°", ("20 мм", "25 мм", "32 мм", "40 мм"), "796", 9, 75),
    Template("pipes", "Тройник полипропиленовый", ("20 мм", "25 мм", "32 мм"), "796", 12, 70),
    Template("pipes", "Труба канализационная ПП", ("50х1000 мм", "110х1000 мм", "110х2000 мм"), "796", 120, 650),
    Template(
        "valves", "Кран шаровой латунный ВР-ВР", ('1/2"', '3/4"', '1"', '1 1/4"'), "796", 350, 2100,
        makers=("Valtec",),
    ),
    Template(
        "valves", "Кран шаровой латунный ВР-НР", ('1/2"', '3/4"', '1"', '1 1/4"'), "796", 360, 2200,
        makers=("Valtec",),
    ),
    Template("valves", "Смеситель для раковины", MIXER_BRANDS, "796", 2500, 14000),
    Template("valves", "Смеситель для ванны с душем", MIXER_BRANDS, "796", 3900, 19000),
    Template("valves", "Фильтр сетчатый косой", ('1/2"', '3/4"'), "796", 380, 750),
    Template("valves", "Редуктор давления", ('1/2"', '3/4"'), "796", 1900, 3900),
    Template(
        "valves", "Радиатор биметаллический 500/80", ("4 секции", "6 секций", "8 секций", "10 секций", "12 секций"),
        "796", 3900, 14500, makers=("Rifar",),
    ),
    Template("screws", "Саморез по металлу, 200 шт.", ("3,5х25", "3,5х35", "3,5х51", "4,2х76"), "778", 180, 520),
    Template(
        "screws", "Саморез по дереву, 200 шт.", ("3,5х25", "3,5х35", "3,5х41", "3,5х55", "4,2х65", "4,2х76"), "778",
        150, 600,
    ),
    Template("screws", "Саморез кровельный, 250 шт.", ("4,8х29", "4,8х35", "5,5х19"), "778", 450, 950),
    Template("screws", "Шуруп-глухарь, 50 шт.", ("8х60", "8х80", "10х100"), "778", 380, 1100),
    Template("anchors", "Дюбель-гвоздь, 100 шт.", ("6х40", "6х60", "8х80", "8х100"), "778", 190, 690),
    Template("anchors", "Анкерный болт с гайкой", ("8х60", "10х80", "12х100", "16х150"), "796", 12, 95),
    Template("anchors", "Дюбель распорный, 100 шт.", ("6х30", "8х40", "10х50"), "778", 120, 380),
    Template("anchors", "Гвозди строительные", ("2х40", "3х70", "4х100", "5х150"), "166", 140, 260),
    Template("anchors", "Болт с гайкой DIN 933", ("М8х40", "М10х50", "М12х60", "М16х80"), "166", 290, 520),
    Template("ppe", "Костюм рабочий летний", SIZES, "704", 1600, 3200),
    Template("ppe", "Костюм рабочий утеплённый", SIZES, "704", 3900, 7800),
    Template(
        "ppe", "Ботинки рабочие с металлическим подноском",
        ("р. 40", "р. 41", "р. 42", "р. 43", "р. 44", "р. 45", "р. 46"), "796", 2400, 4300,
    ),
    Template("ppe", "Каска защитная", ("белая", "оранжевая", "жёлтая", "красная"), "796", 280, 690),
    Template("ppe", "Жилет сигнальный", ("оранжевый", "жёлтый"), "796", 150, 350),
    Template("ppe", "Перчатки х/б с ПВХ, 10 пар", ("",), "778", 250, 450),
    Template("ppe", "Очки защитные открытые", ("",), "796", 90, 290),
    Template("ppe", "Респиратор FFP2", ("",), "796", 60, 190),
    Template("grocery", "Сахар-песок", ("1 кг", "5 кг", "50 кг"), "796", 85, 3900, vat=R10),
    Template("grocery", "Крупа гречневая ядрица", ("800 г", "5 кг"), "796", 85, 520, vat=R10),
    Template("grocery", "Рис круглозёрный", ("900 г", "5 кг"), "796", 95, 480, vat=R10),
    Template("grocery", "Мука пшеничная высшего сорта", ("2 кг", "50 кг"), "796", 95, 2200, vat=R10),
    Template("grocery", "Макаронные изделия", ("450 г",), "796", 65, 120, vat=R10),
    Template("grocery", "Соль поваренная", ("1 кг",), "796", 25, 45, vat=R10),
    Template("grocery", "Чай чёрный листовой", ("100 г", "250 г"), "796", 120, 450),
    Template("grocery", "Кофе в зёрнах", ("1 кг",), "796", 1400, 2600),
    Template("grocery", "Вода питьевая", ("5 л", "19 л"), "796", 90, 420),
    Template("dairy", "Молоко 3,2%", ("0,9 л", "1 л"), "796", 85, 120, vat=R10),
    Template("dairy", "Сливки 10%", ("0,5 л",), "796", 110, 170, vat=R10),
    Template("dairy", "Масло сливочное 82,5%", ("180 г",), "796", 180, 290, vat=R10),
    Template("dairy", "Сыр полутвёрдый", ("",), "166", 750, 1100, vat=R10),
    Template("dairy", "Творог 5%", ("200 г",), "796", 95, 150, vat=R10),
    Template("services", "Доставка по городу", ("",), "839", 1500, 3500, kind=SERVICE),
    Template("services", "Доставка по области", ("",), "839", 4500, 9000, kind=SERVICE),
    Template("services", "Монтаж электропроводки", ("",), "356", 1200, 2500, kind=SERVICE),
    Template("services", "Выезд специалиста на объект", ("",), "839", 2000, 4000, kind=SERVICE),
    Template("services", "Пусконаладочные работы", ("",), "356", 2500, 4500, kind=SERVICE),
    Template("services", "Аренда бензогенератора 5 кВт", ("",), "359", 1800, 3000, kind=SERVICE),
    Template("services", "Аренда перфоратора", ("",), "359", 600, 1200, kind=SERVICE),
    Template("services", "Техническое обслуживание электрощитов", ("",), "362", 8000, 25000, kind=SERVICE),
    Template("services", "Проектирование электроснабжения", ("",), "839", 25000, 90000, kind=SERVICE),
    Template("services", "Сборка металлоконструкций", ("",), "356", 1500, 3000, kind=SERVICE),
    Template("services", "Погрузочно-разгрузочные работы", ("",), "356", 700, 1200, kind=SERVICE),
    Template("services", "Резка кабеля в размер", ("",), "839", 150, 400, kind=SERVICE),
)

PRICE_TYPES = (("Розничная", Decimal("1.00")), ("Оптовая", Decimal("0.88")), ("Дилерская", Decimal("0.80")))
WAREHOUSES = (
    ("Основной склад (Москва)", "109029, г. Москва, ул. Скотопрогонная, д. 29/1, стр. 3"),
    ("Склад Екатеринбург", "620017, г. Екатеринбург, ул. Фронтовых Бригад, д. 18, лит. Б"),
)

# fmt: on

# ---------------------------------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    seed: int = DEFAULT_SEED
    password: str = DEFAULT_PASSWORD
    counterparties: int = DEFAULT_COUNTERPARTIES
    products: int = DEFAULT_PRODUCTS
    today: date | None = None


@dataclass(frozen=True)
class DemoLogin:
    username: str
    full_name: str
    role: str
    team: str


@dataclass
class DemoResult:
    logins: list[DemoLogin] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def database_has_data() -> bool:
    """Demo data goes only into a database without counterparties."""
    return Counterparty.objects.exists()


def load_demo(options: DemoOptions | None = None) -> DemoResult | None:
    """Load the demo company in one transaction and return the demo logins and row counts.

    None when the database already has counterparties: the check runs inside the transaction, so two
    first starts at once cannot both load (SQLite transactions are IMMEDIATE)."""
    with transaction.atomic():
        if database_has_data():
            return None
        return _Builder(options or DemoOptions()).build()


def _bulk(model: type[M], objs: Sequence[M]) -> list[M]:
    return model._default_manager.bulk_create(objs, batch_size=BATCH)


def _bulk_history(model: type[M], objs: Sequence[M]) -> list[M]:
    return bulk_create_with_history(objs, model, batch_size=BATCH, default_change_reason=HISTORY_REASON)


def _backdate(model: type[M], objs: Sequence[M]) -> None:
    """`created_at` is auto_now_add, so bulk_create stamps now; the demo wants a history behind it."""
    model._default_manager.bulk_update(objs, ["created_at"], batch_size=BATCH)


@dataclass
class _Person:
    last: str
    first: str
    middle: str
    female: bool

    @property
    def full(self) -> str:
        return f"{self.last} {self.first} {self.middle}"


@dataclass
class _PlannedInvoice:
    invoice: Invoice
    lines: list[InvoiceLine]
    payments: list[tuple[date, Decimal, Decimal]]  # date, payment amount, allocated to this invoice
    order: int


class _Builder:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.today = options.today or timezone.localdate()
        self.tz = timezone.get_current_timezone()
        self.used_inns: set[str] = set()
        self.used_names: set[str] = set()
        self.result = DemoResult()

    # -- helpers ----------------------------------------------------------------------------------

    def at(self, day: date, hour: int | None = None) -> datetime:
        hour = self.rng.randint(9, 18) if hour is None else hour
        return datetime.combine(day, time(hour, self.rng.choice((0, 15, 30, 45))), tzinfo=self.tz)

    def days_ago(self, low: int, high: int) -> date:
        return self.today - timedelta(days=self.rng.randint(low, high))

    def person(self, female: bool | None = None) -> _Person:
        female = self.rng.random() < 0.45 if female is None else female
        surname = self.rng.choice(SURNAMES)
        paternal = self.rng.choice(PATRONYMICS)
        if female:
            return _Person(surname + "а", self.rng.choice(FEMALE_FIRST), paternal[1], True)
        return _Person(surname, self.rng.choice(MALE_FIRST), paternal[0], False)

    def unique_inn(self, length: int, region: str) -> str:
        while True:
            inn = make_inn10(self.rng, region) if length == 10 else make_inn12(self.rng, region)
            if inn not in self.used_inns:
                self.used_inns.add(inn)
                return inn

    def address(self, city: City) -> str:
        postcode = city.postcode + self.rng.randint(1, 99) * (10 if city.postcode % 10000 == 0 else 1)
        house = self.rng.randint(1, 150)
        extra = self.rng.choice(("", "", f", стр. {self.rng.randint(1, 5)}", f", корп. {self.rng.randint(1, 4)}"))
        office = self.rng.choice(("", f", офис {self.rng.randint(101, 915)}", f", пом. {self.rng.randint(1, 40)}"))
        return f"{postcode}, г. {city.name}, {self.rng.choice(STREETS)}, д. {house}{extra}{office}"

    def city_phone(self, city: City) -> str:
        if len(city.phone_code) == 3:
            number = f"{self.rng.randint(200, 999)}-{self.rng.randint(10, 99)}-{self.rng.randint(10, 99)}"
        else:
            number = f"{self.rng.randint(20, 99)}-{self.rng.randint(10, 99)}-{self.rng.randint(10, 99)}"
        return f"+7 ({city.phone_code}) {number}"

    def mobile(self) -> str:
        return (
            f"+7 ({self.rng.choice(('903', '905', '910', '915', '916', '926', '977', '985', '999', '921', '912'))}) "
            f"{self.rng.randint(200, 999)}-{self.rng.randint(10, 99)}-{self.rng.randint(10, 99)}"
        )

    def bank_account(self, balance: str, bank: Bank | None = None, currency: str = "RUB") -> dict[str, Any]:
        bank = bank or self.rng.choice(BANKS)
        return {
            "bik": bank.bik,
            "bank_name": bank.name,
            "correspondent_account": bank.correspondent_account,
            "number": make_account(self.rng, bank.bik, balance, ACCOUNT_CURRENCY_CODES[currency]),
            "currency_id": currency,
        }

    # -- the company ------------------------------------------------------------------------------

    def build(self) -> DemoResult:
        self.staff()
        self.organisations()
        self.catalogue()
        self.exchange_rates()
        self.counterparties()
        self.contracts()
        self.deals_and_invoices()
        self.tasks_and_notes()
        return self.result

    def staff(self) -> None:
        teams = {}
        for key, name in TEAMS.items():
            teams[key], _created = Team.objects.get_or_create(name=name, parent=None)
        existing = {u.username: u for u in User.objects.filter(username__in=[row[0] for row in STAFF])}
        password = make_password(self.options.password)  # one hash: PBKDF2 is slow on purpose
        new = [
            User(
                username=username,
                last_name=last,
                first_name=first,
                middle_name=middle,
                role=role,
                team=teams[team] if team else None,
                email=f"{username}@{COMPANY_DOMAIN}",
                password=password,
                phone=f"+7 (495) 120-45-{10 + index:02d}",
            )
            for index, (username, last, first, middle, role, team) in enumerate(STAFF)
            if username not in existing
        ]
        _bulk(User, new)
        users = existing | {u.username: u for u in new}
        self.users = [users[row[0]] for row in STAFF]
        self.director, self.accountant = self.users[0], self.users[1]
        self.heads = {"moscow": users["kuznetsov"], "regions": users["lebedev"]}
        for key, head in self.heads.items():
            if teams[key].head_id is None:
                teams[key].head = head
                teams[key].save(update_fields=["head"])
        self.managers = [u for u in self.users if u.role == Role.MANAGER]
        self.head_of = {u.pk: self.heads[row[5]] for u, row in zip(self.users, STAFF, strict=True) if row[5]}
        for user, (_username, _l, _f, _m, role, team) in zip(self.users, STAFF, strict=True):
            self.result.logins.append(
                DemoLogin(
                    user.username,
                    f"{user.last_name} {user.first_name} {user.middle_name}",
                    str(Role(role).label),
                    TEAMS.get(team or "", ""),
                )
            )

    def organisations(self) -> None:
        director = f"{self.director.last_name} {self.director.first_name} {self.director.middle_name}"
        accountant = f"{self.accountant.last_name} {self.accountant.first_name[0]}. {self.accountant.middle_name[0]}."
        inn = self.unique_inn(10, "77")
        ip_inn = self.unique_inn(12, "50")
        specs = [
            Organisation(
                name="ООО «ТД «Вектор»",
                full_name="Общество с ограниченной ответственностью «Торговый дом «Вектор»",
                inn=inn,
                kpp=make_kpp(inn),
                ogrn=make_ogrn(self.rng, "77", 2012),
                okpo=make_okpo(self.rng),
                legal_address="109029, г. Москва, ул. Скотопрогонная, д. 29/1, стр. 3, офис 12",
                postal_address="109029, г. Москва, ул. Скотопрогонная, д. 29/1, стр. 3, офис 12",
                phone="+7 (495) 120-45-00",
                email=f"info@{COMPANY_DOMAIN}",
                director_title="Генеральный директор",
                director_name=director,
                accountant_name=accountant,
                vat_mode=VatMode.INCLUDED,
                invoice_prefix="ТД-",
            ),
            Organisation(
                name=f"ИП {self.director.last_name} {self.director.first_name[0]}. {self.director.middle_name[0]}.",
                full_name=f"Индивидуальный предприниматель {director}",
                is_entrepreneur=True,
                inn=ip_inn,
                kpp="",
                ogrn=make_ogrnip(self.rng, "50", 2016),
                okpo=make_okpo(self.rng, 10),
                legal_address="141400, Московская обл., г. Химки, ул. Молодёжная, д. 8, кв. 41",
                postal_address="109029, г. Москва, ул. Скотопрогонная, д. 29/1, стр. 3, офис 12",
                phone="+7 (495) 120-45-01",
                email=f"ip@{COMPANY_DOMAIN}",
                director_title="Индивидуальный предприниматель",
                director_name=director,
                accountant_name="",
                vat_mode=VatMode.WITHOUT,
                invoice_prefix="ИП-",
            ),
        ]
        existing = {o.inn: o for o in Organisation.objects.filter(inn__in=[o.inn for o in specs])}
        _bulk(Organisation, [o for o in specs if o.inn not in existing])
        self.orgs = [existing.get(o.inn, o) for o in specs]
        company, entrepreneur = self.orgs
        accounts = [
            OrganisationBankAccount(organisation=company, is_main=True, **self.bank_account("40702", BANKS[0])),
            OrganisationBankAccount(organisation=company, is_main=False, **self.bank_account("40702", BANKS[1])),
            # Currency current accounts for the invoices in dollars and euros.
            OrganisationBankAccount(organisation=company, **self.bank_account("40702", BANKS[0], "USD")),
            OrganisationBankAccount(organisation=company, **self.bank_account("40702", BANKS[0], "EUR")),
            OrganisationBankAccount(organisation=entrepreneur, is_main=True, **self.bank_account("40802", BANKS[2])),
        ]
        _bulk(OrganisationBankAccount, [a for a in accounts if a.organisation.inn not in existing])
        # Per organisation and currency, the main account first: the one invoices name.
        self.org_account: dict[tuple[int, str | None], OrganisationBankAccount] = {}
        for account in OrganisationBankAccount.objects.filter(organisation__in=self.orgs).order_by("-is_main", "id"):
            self.org_account.setdefault((account.organisation_id, account.currency_id), account)

    def catalogue(self) -> None:
        groups = self.product_groups()
        prefixes = {key: prefix for key, _name, _parent, prefix in GROUPS}
        units = {u.okei: u for u in Unit.objects.filter(okei__in={t.okei for t in TEMPLATES})}
        barcodes: set[str] = set()
        counters: dict[str, int] = defaultdict(int)
        products: list[Product] = []
        self.retail: list[Decimal] = []
        for template, variant, repeat in self.catalogue_plan():
            maker = self.rng.choice(template.makers)
            brand = variant if template.variants in BRAND_VARIANTS else ""
            name = " ".join(part for part in (template.name, brand or variant, "" if brand else maker) if part)
            if repeat:
                name += f" (исп. {repeat + 1})"
            counters[template.group] += 1
            products.append(
                Product(
                    group=groups[template.group],
                    article=f"{prefixes[template.group]}-{counters[template.group]:04d}",
                    barcode=self.unique_barcode(barcodes) if template.kind == ProductKind.GOODS else "",
                    name=name,
                    full_name=name,
                    unit=units[template.okei],
                    vat_rate=template.vat,
                    kind=template.kind,
                    manufacturer=brand or maker,
                    description="" if template.kind == ProductKind.SERVICE else f"{name}. Гарантия производителя.",
                )
            )
            retail = Decimal(self.rng.randint(template.low * 100, template.high * 100)) / 100
            self.retail.append(retail.quantize(Decimal("1")) if retail >= 100 else money(retail))
        self.products = _bulk_history(Product, products)
        self.price_lists()
        self.stock_levels()

    def product_groups(self) -> dict[str, ProductGroup]:
        groups: dict[str, ProductGroup] = {}
        for key, name, parent, _prefix in GROUPS:
            groups[key] = ProductGroup(name=name, parent=groups[parent] if parent else None)
        _bulk(ProductGroup, [g for g in groups.values() if g.parent is None])
        _bulk(ProductGroup, [g for g in groups.values() if g.parent is not None])
        return groups

    def catalogue_plan(self) -> list[tuple[Template, str, int]]:
        """(template, variant, repeat) of each product to make, `options.products` of them."""
        # Round-robin over the leaf groups so that even a small catalogue has goods, food and services.
        by_group: dict[str, list[tuple[Template, str]]] = defaultdict(list)
        for template in TEMPLATES:
            for variant in template.variants:
                by_group[template.group].append((template, variant))
        for combos in by_group.values():
            self.rng.shuffle(combos)
        pool = [
            (template, variant, round_no)
            for round_no in range(max(len(c) for c in by_group.values()))
            for combos in by_group.values()
            if round_no < len(combos)
            for template, variant in [combos[round_no]]
        ]
        # A catalogue bigger than the templates repeats them as further versions («исп. 2»).
        chosen = [
            (t, v, i // len(pool)) for i, (t, v, _r) in enumerate(pool * (self.options.products // len(pool) + 1))
        ]
        return chosen[: self.options.products]

    def unique_barcode(self, barcodes: set[str]) -> str:
        barcode = make_ean13(self.rng)
        while barcode in barcodes:
            barcode = make_ean13(self.rng)
        barcodes.add(barcode)
        return barcode

    def price_lists(self) -> None:
        """Each price type's price of every product: the retail price times the type's factor."""
        price_types = [
            PriceType(name=name, currency_id="RUB", vat_included=True, is_default=name == "Оптовая")
            for name, _factor in PRICE_TYPES
        ]
        existing_types = {p.name: p for p in PriceType.objects.filter(name__in=[p.name for p in price_types])}
        _bulk(PriceType, [p for p in price_types if p.name not in existing_types])
        self.price_types = {p.name: existing_types.get(p.name, p) for p in price_types}
        prices: list[Price] = []
        self.prices: dict[tuple[str, int], Decimal] = {}
        for (name, factor), price_type in zip(PRICE_TYPES, self.price_types.values(), strict=True):
            for index, (product, retail) in enumerate(zip(self.products, self.retail, strict=True)):
                value = money(retail * factor)
                self.prices[name, index] = value
                prices.append(Price(price_type=price_type, product=product, value=value))
        _bulk(Price, prices)

    def stock_levels(self) -> None:
        """Goods in stock: all of them in the first warehouse, most in the others, some at zero."""
        warehouses = [Warehouse(name=name, address=address) for name, address in WAREHOUSES]
        existing_wh = {w.name: w for w in Warehouse.objects.filter(name__in=[w.name for w in warehouses])}
        _bulk(Warehouse, [w for w in warehouses if w.name not in existing_wh])
        stock = []
        for index, warehouse in enumerate(existing_wh.get(w.name, w) for w in warehouses):
            for product in self.products:
                if product.kind != ProductKind.GOODS or (index and self.rng.random() < 0.3):
                    continue
                high = 3000 if product.unit.okei == "006" else 400
                quantity = 0 if self.rng.random() < 0.08 else self.rng.randint(1, high) // (index + 1)
                stock.append(StockLevel(warehouse=warehouse, product=product, quantity=Decimal(quantity)))
        _bulk(StockLevel, stock)

    def exchange_rates(self) -> None:
        rates = []
        for code, start in (("USD", Decimal("79.85")), ("EUR", Decimal("92.40"))):
            value = start
            for back in range(45, -1, -1):
                day = self.today - timedelta(days=back)
                if day.weekday() >= 5:
                    continue
                value += Decimal(self.rng.randint(-60, 60)) / 100
                rates.append(ExchangeRate(currency_id=code, date=day, rate=value.quantize(Decimal("0.0001"))))
        ExchangeRate.objects.bulk_create(rates, batch_size=BATCH, ignore_conflicts=True)
        self.rates = {(r.currency_id, r.date): r.rate for r in rates}

    # -- counterparties ---------------------------------------------------------------------------

    def company_name(self) -> tuple[str, str]:
        """A unique name in quotes («Торговый дом Вектор») and the root a domain is made of («vektor»)."""
        for attempt in range(50):
            if self.rng.random() < 0.45:
                root = self.rng.choice(NAME_ROOTS)
            else:
                root = self.rng.choice(NAME_HEADS) + self.rng.choice(NAME_TAILS)
            if attempt > 20:
                root += f"-{attempt}"
            name = self.rng.choice(NAME_PREFIXES) + root
            if name not in self.used_names:
                self.used_names.add(name)
                return name, root
        raise AssertionError("unreachable")

    def counterparties(self) -> None:
        groups = {name: CounterpartyGroup(name=name) for name in ("Покупатели", "Дилеры", "Частные лица")}
        _bulk(CounterpartyGroup, list(groups.values()))
        tags = {t.name: t for t in Tag.objects.filter(name__in=TAGS)}
        new_tags = [Tag(name=name) for name in TAGS if name not in tags]
        _bulk(Tag, new_tags)
        tags |= {t.name: t for t in new_tags}
        sellers = self.managers + list(self.heads.values())

        rows: list[Counterparty] = []
        created: list[datetime] = []
        self.cp_people: list[_Person | None] = []
        self.cp_city: list[City] = []
        self.cp_tags: list[list[str]] = []
        for index in range(self.options.counterparties):
            rows.append(self.new_counterparty(index, groups, sellers))
            created.append(self.at(self.days_ago(200, 1100)))
        self.cps = _bulk_history(Counterparty, rows)
        for cp, when in zip(self.cps, created, strict=True):
            cp.created_at = when
        self.counterparty_links(tags)
        _backdate(Counterparty, self.cps)
        self.contacts_and_accounts()

    def contracts(self) -> None:
        """A supply contract with two companies in three, for any of our organisations; their invoices name it.
        Drawn from a random stream of their own, so the rest of the demo stays as it was."""
        rng = random.Random(self.options.seed + 1)
        rows = []
        for index, cp in enumerate(self.cps):
            if cp.kind != CounterpartyKind.LEGAL or index % 3 == 2:
                continue
            signed = self.today - timedelta(days=rng.randint(380, 1000))
            number = f"{signed.year % 100:02d}/{index + 1:04d}-П"
            rows.append(
                Contract(
                    counterparty=cp,
                    kind=ContractKind.SALE,
                    number=number,
                    date=signed,
                    name=f"Договор поставки № {number} от {signed:%d.%m.%Y}",
                    valid_until=date(self.today.year + rng.choice((0, 1, 1, 2)), 12, 31),
                )
            )
        self.contract_of = {contract.counterparty_id: contract.pk for contract in _bulk_history(Contract, rows)}

    def new_counterparty(self, index: int, groups: dict[str, CounterpartyGroup], sellers: list[User]) -> Counterparty:
        """One counterparty, not saved; its contact person, city and tags are kept for the steps that follow."""
        kind = self.counterparty_kind(index)
        city = MOSCOW if self.rng.random() < 0.35 else self.rng.choice(CITIES)
        owner = self.rng.choice(self.managers) if self.rng.random() < 0.93 else self.rng.choice(sellers)
        year = self.rng.randint(2003, 2024)
        tag_names = sorted(set(self.rng.sample(TAGS, self.rng.choice((0, 0, 1, 1, 2)))))
        person: _Person | None = None
        phones = self.city_phone(city)
        if kind == CounterpartyKind.LEGAL:
            values, phones = self.company_values(city, year, phones)
            group = groups["Дилеры" if "Дилер" in tag_names else "Покупатели"]
        else:
            person = self.person()
            values, phones = self.person_values(kind, person, city, year)
            group = groups["Покупатели" if kind == CounterpartyKind.ENTREPRENEUR else "Частные лица"]
        address = self.address(city)
        # A few key accounts are VIP: hidden from everyone not named on them.
        is_vip = kind == CounterpartyKind.LEGAL and (index == 0 or self.rng.random() < 0.03)
        row = Counterparty(
            kind=kind,
            is_vip=is_vip,
            legal_address=address,
            postal_address=address if self.rng.random() < 0.8 else self.address(city),
            phones=phones,
            group=group,
            owner=owner,
            is_active=self.rng.random() > 0.03,
            comment="Работает по предоплате." if self.rng.random() < 0.1 else "",
            **values,
        )
        self.cp_people.append(person)
        self.cp_city.append(city)
        self.cp_tags.append(tag_names)
        return row

    def counterparty_kind(self, index: int) -> str:
        roll = self.rng.random()
        if index < 3:  # the first three rows fix one of each kind, so even a tiny demo shows all of them
            return (CounterpartyKind.LEGAL, CounterpartyKind.ENTREPRENEUR, CounterpartyKind.PERSON)[index]
        if roll < 0.84:
            return CounterpartyKind.LEGAL
        return CounterpartyKind.ENTREPRENEUR if roll < 0.95 else CounterpartyKind.PERSON

    def company_values(self, city: City, year: int, phones: str) -> tuple[dict[str, Any], str]:
        """A company's requisites, e-mails and site; its phones with a second line now and then."""
        form = self.rng.choices(("ООО", "АО", "ПАО"), weights=(80, 16, 4))[0]
        long_form = {
            "ООО": "Общество с ограниченной ответственностью",
            "АО": "Акционерное общество",
            "ПАО": "Публичное акционерное общество",
        }[form]
        name, root = self.company_name()
        inn = self.unique_inn(10, city.region)
        domain = translit(root) + self.rng.choice((".ru", ".ru", ".ru", ".com", ".su"))
        values: dict[str, Any] = {
            "name": f"{form} «{name}»",
            "full_name": f"{long_form} «{name}»",
            "inn": inn,
            "kpp": make_kpp(inn, "43" if self.rng.random() < 0.05 else "01"),
            "ogrn": make_ogrn(self.rng, city.region, year),
            "okpo": make_okpo(self.rng),
            "emails": f"info@{domain}",
            "site": f"https://{domain}",
        }
        if self.rng.random() < 0.3:
            values["emails"] += f", zakupki@{domain}"
        if self.rng.random() < 0.4:
            phones += ", " + self.city_phone(city)
        return values, phones

    def person_values(self, kind: str, person: _Person, city: City, year: int) -> tuple[dict[str, Any], str]:
        """An entrepreneur's or a private person's requisites and e-mail; a mobile phone."""
        mail = f"{translit(person.last)}.{translit(person.first)[0]}{self.rng.randint(1, 99)}"
        mail += self.rng.choice(("@mail.ru", "@yandex.ru", "@gmail.com", "@bk.ru"))
        phones = self.mobile()
        if kind == CounterpartyKind.ENTREPRENEUR:
            values = {
                "name": f"ИП {person.full}",
                "full_name": f"Индивидуальный предприниматель {person.full}",
                "inn": self.unique_inn(12, city.region),
                "ogrn": make_ogrnip(self.rng, city.region, year),
                "okpo": make_okpo(self.rng, 10),
                "emails": mail,
            }
        else:
            values = {
                "name": person.full,
                "full_name": person.full,
                "emails": mail,
                "inn": self.unique_inn(12, city.region) if self.rng.random() < 0.5 else "",
            }
        return values, phones

    def counterparty_links(self, tags: dict[str, Tag]) -> None:
        """Co-owners (one counterparty in ten), the people named on VIP ones, and tags."""
        co_owners, vip_users, tag_links = [], [], []
        co_owner_of: dict[int, list[int]] = defaultdict(list)
        for index, cp in enumerate(self.cps):
            if self.rng.random() < 0.1:
                other = self.rng.choice([m for m in self.managers if m.pk != cp.owner_id])
                co_owners.append(Counterparty.co_owners.through(counterparty_id=cp.pk, user_id=other.pk))
                co_owner_of[cp.pk].append(other.pk)
            if cp.is_vip:
                named = {cp.owner_id, self.head_of.get(cp.owner_id, self.director).pk, self.director.pk}
                vip_users += [Counterparty.vip_users.through(counterparty_id=cp.pk, user_id=pk) for pk in named]
            tag_links += [
                Counterparty.tags.through(counterparty_id=cp.pk, tag_id=tags[name].pk) for name in self.cp_tags[index]
            ]
        _bulk(Counterparty.co_owners.through, co_owners)
        _bulk(Counterparty.vip_users.through, vip_users)
        _bulk(Counterparty.tags.through, tag_links)
        self.co_owner_of = co_owner_of

    def contacts_and_accounts(self) -> None:
        contacts: list[ContactPerson] = []
        accounts: list[CounterpartyBankAccount] = []
        self.cp_contacts: list[list[ContactPerson]] = []
        for cp, person, city in zip(self.cps, self.cp_people, self.cp_city, strict=True):
            own = self.contacts_of(cp, person, city)
            contacts += own
            self.cp_contacts.append(own)
            balance = {"legal": "40702", "entrepreneur": "40802", "person": "40817"}[cp.kind]
            for number in range(1 if cp.kind == CounterpartyKind.PERSON else self.rng.choice((1, 1, 1, 2))):
                accounts.append(
                    CounterpartyBankAccount(counterparty=cp, is_main=number == 0, **self.bank_account(balance))
                )
        _bulk(ContactPerson, contacts)
        _bulk(CounterpartyBankAccount, accounts)
        self.cp_account = {a.counterparty_id: a for a in accounts if a.is_main}

    def contacts_of(self, cp: Counterparty, person: _Person | None, city: City) -> list[ContactPerson]:
        """One to three contact persons; the first of a company is its director, of a person the person."""
        own: list[ContactPerson] = []
        count = self.rng.choice((1, 1, 2, 2, 2, 3))
        for position_no in range(count):
            contact_person = person if person and position_no == 0 else self.person()
            if cp.kind == CounterpartyKind.LEGAL and position_no == 0:
                position = "Генеральный директор"
            elif person and position_no == 0:
                position = "Индивидуальный предприниматель" if cp.kind == CounterpartyKind.ENTREPRENEUR else ""
            else:
                position = self.rng.choice(POSITIONS)
            domain = cp.site.removeprefix("https://")
            email = f"{translit(contact_person.last)}@{domain}" if domain else cp.emails.split(",")[0]
            own.append(
                ContactPerson(
                    counterparty=cp,
                    last_name=contact_person.last,
                    first_name=contact_person.first,
                    middle_name=contact_person.middle,
                    position=position,
                    phones=self.mobile() + (f", {self.city_phone(city)}" if self.rng.random() < 0.3 else ""),
                    emails=email,
                    birthday=date(self.rng.randint(1962, 2001), self.rng.randint(1, 12), self.rng.randint(1, 28))
                    if self.rng.random() < 0.7
                    else None,
                    notes="Предпочитает связь через мессенджер." if self.rng.random() < 0.1 else "",
                )
            )
        return own

    # -- deals, invoices, payments ----------------------------------------------------------------

    def price_type_for(self, index: int) -> str:
        if "Дилер" in self.cp_tags[index]:
            return "Дилерская"
        return "Розничная" if self.cps[index].kind == CounterpartyKind.PERSON else "Оптовая"

    def deals_and_invoices(self) -> None:
        pipeline = Pipeline.objects.get(is_default=True)
        stages = list(Stage.objects.filter(pipeline=pipeline).order_by("order"))
        open_stages = [s for s in stages if s.kind == StageKind.OPEN]
        invoice_stage = open_stages[-1]
        proposal_stage = open_stages[-2] if len(open_stages) > 1 else open_stages[0]
        weights = [15 if s.kind == StageKind.OPEN else 30 if s.kind == StageKind.WON else 14 for s in stages]

        deals: list[Deal] = []
        deal_created: list[datetime] = []
        planned: list[_PlannedInvoice] = []
        deal_of_plan: list[int | None] = []
        # The first deals walk through every stage (the invoice stage twice: issued, then partly paid).
        forced = [*stages, invoice_stage]
        statuses_seen: set[str] = set()
        for index, cp in enumerate(self.cps):
            for _ in range(self.rng.choice((0, 1, 1, 1, 2, 2, 3))):
                stage = forced.pop(0) if forced else self.rng.choices(stages, weights=weights)[0]
                contact = self.rng.choice(self.cp_contacts[index])
                owner_id = self.rng.choice([cp.owner_id, *self.co_owner_of.get(cp.pk, [])])
                deal = self.new_deal(pipeline, stage, cp, contact, owner_id)
                statuses = self.deal_invoice_statuses(stage, invoice_stage, proposal_stage, statuses_seen)
                statuses_seen.update(statuses)
                start = self.deal_start(stage, invoice_stage)
                total = Decimal("0.00")
                closed = start
                for status in statuses:
                    plan = self.plan_invoice(index, status, start, owner_id, contact, len(planned))
                    planned.append(plan)
                    deal_of_plan.append(len(deals))
                    total += plan.invoice.total * plan.invoice.exchange_rate
                    closed = max([closed, plan.invoice.date, *(p[0] for p in plan.payments)])
                self.settle_deal(deal, money(total) if statuses else None, closed)
                deals.append(deal)
                deal_created.append(self.at(start - timedelta(days=self.rng.randint(1, 20))))
            # Repeat orders without a deal: paid, issued, sometimes in a foreign currency.
            if self.rng.random() < 0.25:
                status = self.rng.choice((InvoiceStatus.PAID, InvoiceStatus.PAID, InvoiceStatus.ISSUED))
                start = self.days_ago(3, 380) if status == InvoiceStatus.PAID else self.days_ago(0, 30)
                planned.append(self.plan_invoice(index, status, start, cp.owner_id, None, len(planned)))
                deal_of_plan.append(None)

        self.deals = _bulk_history(Deal, deals)
        for deal, when in zip(self.deals, deal_created, strict=True):
            deal.created_at = when
        _backdate(Deal, self.deals)
        for plan, deal_index in zip(planned, deal_of_plan, strict=True):
            plan.invoice.contract_id = self.contract_of.get(plan.invoice.counterparty_id)
            if deal_index is not None:
                plan.invoice.deal = self.deals[deal_index]
                plan.invoice.basis = f"Сделка «{self.deals[deal_index].title}»"
        self.number_invoices(planned)
        self.save_invoices(planned)

    def new_deal(self, pipeline: Pipeline, stage: Stage, cp: Counterparty, contact: ContactPerson,
                 owner_id: int) -> Deal:  # fmt: skip
        group = self.rng.choice([g for g in GROUPS if g[3]])[1]
        return Deal(
            title=f"{self.rng.choice(('Поставка', 'Заявка', 'Комплектация объекта', 'Закупка'))}: {group.lower()}",
            pipeline=pipeline,
            stage=stage,
            counterparty=cp,
            contact=contact,
            owner_id=owner_id,
            currency_id="RUB",
            probability=stage.probability,
            source=self.rng.choice(DEAL_SOURCES),
        )

    def deal_invoice_statuses(self, stage: Stage, invoice_stage: Stage, proposal_stage: Stage,
                              seen: set[str]) -> list[str]:  # fmt: skip
        """The invoices a deal at `stage` has, by status; each status appears early on, so a small demo has all."""
        if stage.kind == StageKind.WON:
            return [InvoiceStatus.PAID] * self.rng.choice((1, 1, 1, 2))
        if stage.pk == invoice_stage.pk:
            need = [s for s in OPEN_INVOICE_STATUSES if s not in seen]
            return [need[0] if need else self.rng.choice(OPEN_INVOICE_STATUSES)]
        if stage.kind == StageKind.LOST and (InvoiceStatus.CANCELLED not in seen or self.rng.random() < 0.3):
            return [InvoiceStatus.CANCELLED]
        if stage.pk == proposal_stage.pk and (InvoiceStatus.DRAFT not in seen or self.rng.random() < 0.3):
            return [InvoiceStatus.DRAFT]
        return []

    def settle_deal(self, deal: Deal, invoiced: Decimal | None, closed: date) -> None:
        """The deal's amount (its invoices', else a round guess) and dates: expected, or closed on `closed`."""
        deal.amount = invoiced if invoiced is not None else Decimal(self.rng.randint(30, 3000) * 1000)
        if deal.stage.kind == StageKind.OPEN:
            deal.expected_close_date = self.today + timedelta(days=self.rng.randint(5, 90))
            if self.rng.random() < 0.06:
                deal.currency_id = self.rng.choice(("USD", "EUR"))
                deal.amount = Decimal(self.rng.randint(5, 120) * 500)
        else:
            deal.expected_close_date = closed
            deal.closed_at = self.at(closed)
        if deal.stage.kind == StageKind.LOST:
            deal.lost_reason = self.rng.choice(LOST_REASONS)

    def deal_start(self, stage: Stage, invoice_stage: Stage) -> date:
        if stage.kind == StageKind.WON:
            return self.days_ago(10, 400)
        if stage.kind == StageKind.LOST:
            return self.days_ago(10, 250)
        if stage.pk == invoice_stage.pk:
            return self.days_ago(0, 50)
        return self.days_ago(0, 30)

    def plan_invoice(
        self, index: int, status: str, day: date, owner_id: int, contact: ContactPerson | None, order: int
    ) -> _PlannedInvoice:
        cp = self.cps[index]
        org = self.orgs[1] if self.rng.random() < 0.2 else self.orgs[0]
        mode = org.vat_mode
        if mode == VatMode.INCLUDED and self.rng.random() < 0.1:
            mode = VatMode.ON_TOP
        currency, rate = "RUB", Decimal("1.0000")
        # Both draws always happen, so the random stream does not depend on which dates have rates.
        foreign, code = self.rng.random() < 0.05, self.rng.choice(("USD", "EUR"))
        if foreign and org is self.orgs[0] and cp.kind == CounterpartyKind.LEGAL:
            known = [d for (c, d) in self.rates if c == code and d <= day]
            if known:
                currency, rate = code, self.rates[code, max(known)]
        price_type = self.price_type_for(index)
        lines = [
            self.plan_line(position, price_type, day, mode, currency, rate)
            for position in range(1, self.rng.choice((1, 2, 2, 3, 3, 4, 5)) + 1)
        ]
        due = day + timedelta(days=self.rng.choice((3, 5, 5, 10, 14)))
        invoice = Invoice(
            organisation=org,
            year=day.year,
            date=day,
            bank_account=self.org_account.get((org.pk, currency)),
            counterparty=cp,
            contact=contact,
            owner_id=owner_id,
            currency_id=currency,
            exchange_rate=rate,
            vat_mode=mode,
            due_date=due,
            status=status,
            amount=sum((line.amount for line in lines), Decimal("0.00")),
            vat_amount=sum((line.vat_amount for line in lines), Decimal("0.00")),
            total=sum((line.total for line in lines), Decimal("0.00")),
        )
        payments = self.plan_payments(invoice, lines)
        invoice.paid_amount = sum((p[2] for p in payments), Decimal("0.00"))
        if status == InvoiceStatus.CANCELLED:
            invoice.comment = "Аннулирован: клиент отказался от заказа."
        return _PlannedInvoice(invoice=invoice, lines=lines, payments=payments, order=order)

    def plan_line(self, position: int, price_type: str, day: date, mode: str, currency: str,
                  rate: Decimal) -> InvoiceLine:  # fmt: skip
        """A random product at its price in `price_type`, VAT as of `day`, converted to the invoice's currency."""
        product_index = self.rng.randrange(len(self.products))
        product = self.products[product_index]
        price = self.prices[price_type, product_index]
        vat_rate = product.vat_rate
        if vat_rate == VatRate.VAT_22 and day < VAT_22_FROM:
            vat_rate = VatRate.VAT_20
        if mode == VatMode.WITHOUT:
            vat_rate = VatRate.WITHOUT
        percent = VatRate(vat_rate).percent
        if mode == VatMode.ON_TOP and percent:
            price = money(price * 100 / (100 + percent))
        if currency != "RUB":
            price = money(price / rate)
        if product.kind == ProductKind.SERVICE:
            quantity = Decimal(self.rng.randint(1, 16))
        elif product.unit.okei == "006":
            quantity = Decimal(self.rng.randint(1, 50) * 10)
        else:
            quantity = Decimal(self.rng.choice((1, 2, 3, 5, 10, 12, 20, 24, 50, 100)))
        discount = money(quantity * price * Decimal("0.05")) if self.rng.random() < 0.12 else Decimal("0.00")
        amounts = line_amounts(quantity=quantity, price=price, discount=discount, rate=vat_rate, mode=mode)
        return InvoiceLine(
            position=position,
            product=product,
            description=product.name,
            quantity=quantity,
            unit=product.unit,
            price=price,
            discount=discount,
            vat_rate=vat_rate,
            amount=amounts.amount,
            vat_amount=amounts.vat,
            total=amounts.total,
        )

    def plan_payments(self, invoice: Invoice, lines: list[InvoiceLine]) -> list[tuple[date, Decimal, Decimal]]:
        """(day, amount paid, amount allocated to the invoice) of a paid or partly paid invoice; a paid one with
        goods is shipped on its last payment's day."""
        day = invoice.date
        payments: list[tuple[date, Decimal, Decimal]] = []
        if invoice.status == InvoiceStatus.PAID:
            first_day = min(day + timedelta(days=self.rng.randint(0, 12)), self.today)
            if self.rng.random() < 0.2 and invoice.total > 1:
                part = money(invoice.total * Decimal(self.rng.randint(30, 70)) / 100)
                second_day = min(first_day + timedelta(days=self.rng.randint(3, 20)), self.today)
                payments = [(first_day, part, part), (second_day, invoice.total - part, invoice.total - part)]
            else:
                # Now and then a customer pays more than billed; the rest stays an unallocated advance.
                extra = Decimal(self.rng.randint(1, 20) * 1000) if self.rng.random() < 0.05 else Decimal("0.00")
                payments = [(first_day, invoice.total + extra, invoice.total)]
            invoice.shipped_date = (
                max(p[0] for p in payments)
                if any(line.product and line.product.kind == ProductKind.GOODS for line in lines)
                else None
            )
        elif invoice.status == InvoiceStatus.PARTLY_PAID:
            part = money(invoice.total * Decimal(self.rng.randint(20, 80)) / 100)
            part = min(max(part, Decimal("0.01")), invoice.total - Decimal("0.01"))
            payments = [(min(day + timedelta(days=self.rng.randint(0, 7)), self.today), part, part)]
        return payments

    def number_invoices(self, planned: list[_PlannedInvoice]) -> None:
        """Numbers run per organisation and year in date order, continuing any series already there."""
        series = {
            (s.organisation_id, s.year): s for s in InvoiceNumberSeries.objects.filter(organisation__in=self.orgs)
        }
        for plan in sorted(planned, key=lambda p: (p.invoice.organisation.pk, p.invoice.date, p.order)):
            invoice = plan.invoice
            key = (invoice.organisation.pk, invoice.year)
            if key not in series:
                series[key] = InvoiceNumberSeries(organisation=invoice.organisation, year=invoice.year)
            series[key].last_number += 1
            invoice.sequence = series[key].last_number
            invoice.number = f"{invoice.organisation.invoice_prefix}{invoice.sequence}"
        _bulk(InvoiceNumberSeries, [s for s in series.values() if s.pk is None])
        InvoiceNumberSeries.objects.bulk_update([s for s in series.values() if s.pk], ["last_number"])

    def save_invoices(self, planned: list[_PlannedInvoice]) -> None:
        invoices = _bulk_history(Invoice, [p.invoice for p in planned])
        for invoice, plan in zip(invoices, planned, strict=True):
            invoice.created_at = self.at(plan.invoice.date)
            for line in plan.lines:
                line.invoice = invoice
        _backdate(Invoice, invoices)
        _bulk(InvoiceLine, [line for plan in planned for line in plan.lines])
        self.invoices = invoices

        payments: list[Payment] = []
        allocations: list[PaymentAllocation] = []
        for plan in planned:
            invoice = plan.invoice
            cp = invoice.counterparty
            account = self.cp_account.get(cp.pk)
            for day, amount, allocated in plan.payments:
                vat_sum = f"{invoice.vat_amount:.2f}".replace(".", ",")
                vat = f"в т.ч. НДС {vat_sum}" if invoice.vat_amount else "НДС не облагается"
                payment = Payment(
                    organisation=invoice.organisation,
                    bank_account=invoice.bank_account,
                    counterparty=cp,
                    direction=PaymentDirection.INCOMING,
                    source=PaymentSource.BANK,
                    date=day,
                    number=str(self.rng.randint(1, 9999)),
                    amount=amount,
                    currency_id=invoice.currency_id,
                    purpose=f"Оплата по счету № {invoice.number} от {invoice.date:%d.%m.%Y}, {vat}",
                    payer_name=cp.full_name or cp.name,
                    payer_inn=cp.inn,
                    payer_kpp=cp.kpp,
                    payer_account=account.number if account and invoice.currency_id == "RUB" else "",
                    allocated_amount=allocated,
                    created_by=self.accountant,
                )
                payment.created_at = self.at(day)
                payments.append(payment)
                allocations.append(PaymentAllocation(payment=payment, invoice=invoice, amount=allocated))
        payments = _bulk_history(Payment, payments)
        _backdate(Payment, payments)
        _bulk(PaymentAllocation, allocations)
        self.payments = payments

    # -- tasks and notes --------------------------------------------------------------------------

    def tasks_and_notes(self) -> None:
        now = timezone.now()
        planned = [*self.payment_reminder_tasks(), *self.deal_tasks(now), *self.internal_tasks(now)]
        tasks = _bulk(Task, [task for task, _created in planned])
        for task, (_planned, created) in zip(tasks, planned, strict=True):
            task.created_at = created
        _backdate(Task, tasks)
        notes = self.notes()
        self.result.counts = {
            "users": len(self.users),
            "organisations": len(self.orgs),
            "counterparties": len(self.cps),
            "contacts": sum(len(c) for c in self.cp_contacts),
            "contracts": len(self.contract_of),
            "products": len(self.products),
            "deals": len(self.deals),
            "invoices": len(self.invoices),
            "payments": len(self.payments),
            "tasks": len(tasks),
            "notes": len(notes),
        }

    def payment_reminder_tasks(self) -> Iterator[tuple[Task, datetime]]:
        """(task, created) for the accountant's reminders of overdue invoices, already sent."""
        overdue_invoices = [
            (i, i.due_date)
            for i in self.invoices
            if i.status in OPEN_INVOICE_STATUSES and i.due_date and i.due_date < self.today
        ]
        for invoice, due_date in overdue_invoices:
            due = self.at(due_date + timedelta(days=1), 10)
            task = Task(
                title=f"Напомнить об оплате счёта № {invoice.number}",
                assignee_id=invoice.owner_id,
                author=self.accountant,
                counterparty=invoice.counterparty,
                deal=invoice.deal,
                invoice=invoice,
                due_at=due,
                remind_at=due - timedelta(hours=1),
                reminded_at=due - timedelta(hours=1),
            )
            yield task, self.at(due_date)

    def deal_tasks(self, now: datetime) -> Iterator[tuple[Task, datetime]]:
        """(task, created) for most open deals: overdue (at least one), upcoming with a reminder, or done."""
        forced_overdue = True
        for deal in self.deals:
            if deal.closed_at is not None or self.rng.random() < 0.3:
                continue
            roll = self.rng.random()
            if forced_overdue or roll < 0.3:  # overdue, still open, its reminder already went out
                forced_overdue = False
                due = self.at(self.days_ago(1, 14))
                task = Task(remind_at=due - timedelta(hours=2), reminded_at=due - timedelta(hours=2))
            elif roll < 0.7:  # upcoming, with a reminder ahead
                due = self.at(self.today + timedelta(days=self.rng.randint(1, 21)))
                task = Task(remind_at=due - timedelta(hours=self.rng.choice((1, 2, 24))))
            else:  # done
                due = self.at(self.days_ago(1, 30))
                task = Task(is_done=True, done_at=min(due + timedelta(hours=self.rng.randint(-20, 20)), now))
            task.title = self.rng.choice(TASK_TITLES)
            task.due_at = due
            task.assignee_id = deal.owner_id
            task.author_id = deal.owner_id
            task.counterparty = deal.counterparty
            task.deal = deal
            task.description = f"По сделке «{deal.title}»."
            yield task, min(due - timedelta(days=self.rng.randint(1, 10)), now)

    def internal_tasks(self, now: datetime) -> Iterator[tuple[Task, datetime]]:
        """(task, created) for the director's tasks to every head of sales."""
        for title in INTERNAL_TASKS:
            for head in self.heads.values():
                due = self.at(self.today + timedelta(days=self.rng.randint(-3, 10)))
                yield (
                    Task(title=title, assignee=head, author=self.director, due_at=due),
                    min(due - timedelta(days=7), now),
                )

    def notes(self) -> list[Note]:
        notes: list[Note] = []
        deals_of: dict[int, list[Deal]] = defaultdict(list)
        for deal in self.deals:
            deals_of[deal.counterparty_id].append(deal)
        for cp in self.cps:
            for _ in range(self.rng.choice((0, 0, 1, 1, 2, 3))):
                about = self.rng.choice(deals_of[cp.pk]) if deals_of[cp.pk] and self.rng.random() < 0.5 else None
                note = Note(
                    counterparty=cp,
                    deal=about,
                    author_id=about.owner_id if about else cp.owner_id,
                    text=self.rng.choice(NOTES),
                )
                note.created_at = self.at(self.days_ago(0, 180))
                notes.append(note)
        notes = _bulk(Note, notes)
        _backdate(Note, notes)
        return notes


def format_logins(logins: Iterable[DemoLogin], password: str) -> list[str]:
    rows = [
        f"  {login.username:<12} {login.full_name:<36} {login.role}" + (f", {login.team}" if login.team else "")
        for login in logins
    ]
    return [f"Demo users (password «{password}»):", *rows]
