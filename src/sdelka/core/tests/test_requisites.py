"""Property tests and the spec's vectors (ru-requisites.md) for core/requisites.py.

The generators below build valid numbers by construction from the spec's formulas, independently of
the code under test. A note on "any single-digit change is refused": the ИНН and ОГРН check digits are
`remainder mod 10`, so a change that moves the remainder between 0 and 10 (ОГРНИП: between r and r+10)
keeps the same check digit; no validator can see it. The properties assert exactly that: a changed number
is accepted only in that collision. The account control key has weights 7, 1, 3 (coprime with 10), so for
accounts every single-digit change is refused, without exception, as long as the account stays in its
class (client / correspondent / treasury): a change of the balance code that moves it to another class
changes which БИК digits enter the sum.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from sdelka.core import requisites as r

INN10_W = [2, 4, 10, 3, 5, 9, 4, 6, 8]
INN11_W = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
INN12_W = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
KEY_W = [7, 1, 3] * 8


def weighted(digits: str, weights: list[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False))


def build_inn10(body: str) -> str:
    return body + str(weighted(body, INN10_W) % 11 % 10)


def build_inn12(body: str) -> str:
    with_11 = body + str(weighted(body, INN11_W) % 11 % 10)
    return with_11 + str(weighted(with_11, INN12_W) % 11 % 10)


def build_ogrn(body: str) -> str:
    modulus = 11 if len(body) == 12 else 13
    return body + str(int(body) % modulus % 10)


def inn_remainders(inn: str) -> tuple[int, ...]:
    """The raw remainders (before `mod 10`) the check digits of this ИНН are computed from."""
    if len(inn) == 10:
        return (weighted(inn[:9], INN10_W) % 11,)
    return (weighted(inn[:10], INN11_W) % 11, weighted(inn[:11], INN12_W) % 11)


def ogrn_remainder(ogrn: str) -> int:
    return int(ogrn[:-1]) % (11 if len(ogrn) == 13 else 13)


def build_account(balance: str, rest: str, bik: str) -> str:
    """`balance`(5) + "810" + key + `rest`(11) with the key that makes the account match the БИК."""
    prefix = "0" + bik[4:6] if balance in ("30101", "30125", "40102") else bik[6:9]
    for key in "0123456789":
        account = balance + "810" + key + rest
        if weighted(prefix + account, KEY_W) % 10 == 0:
            return account
    raise AssertionError("the key digit has weight 3, coprime with 10: one digit always fits")


def account_class(account: str) -> str:
    """Treasury, correspondent or client: the class decides which БИК digits prefix the key sum."""
    if account.startswith("03"):
        return "treasury"
    return "correspondent" if account.startswith(("30101", "30125", "40102")) else "client"


def accepted(check, *args: str) -> bool:
    try:
        check(*args)
    except ValidationError:
        return False
    return True


def digits(n: int, first: str = "0123456789") -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(first), st.text("0123456789", min_size=n - 1, max_size=n - 1)).map("".join)


def changed_digit(value: str, data: st.DataObject) -> str:
    position = data.draw(st.integers(0, len(value) - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != value[position]]))
    return value[:position] + new + value[position + 1 :]


inn10s = digits(9, "123456789").map(build_inn10)
inn12s = digits(10, "123456789").map(build_inn12)
ogrns = digits(12, "15").map(build_ogrn)
ogrnips = digits(14, "3").map(build_ogrn)
biks = digits(9)


# --- ИНН --------------------------------------------------------------------------------------


@given(st.one_of(inn10s, inn12s))
def test_inn_built_by_the_formula_is_accepted(inn):
    r.validate_inn(inn)


@given(st.one_of(inn10s, inn12s), st.data())
def test_inn_with_one_digit_changed_is_refused_unless_the_remainder_collides(inn, data):
    changed = changed_digit(inn, data)
    if accepted(r.validate_inn, changed):
        before, after = inn_remainders(inn), inn_remainders(changed)
        assert any({b, a} == {0, 10} for b, a in zip(before, after, strict=True)), (inn, changed)


@given(st.one_of(inn10s, inn12s), st.data())
def test_inn_with_its_last_check_digit_changed_is_always_refused(inn, data):
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != inn[-1]]))
    assert not accepted(r.validate_inn, inn[:-1] + new)


@pytest.mark.parametrize(
    "inn", ["7707083893", "7702070139", "7707049388", "1234567894", "123456789047", "366220664163", "504908996115"]
)
def test_inn_spec_valid_vectors(inn):
    r.validate_inn(inn)


@pytest.mark.parametrize("inn", ["7707083894", "123456789037"])
def test_inn_spec_invalid_vectors(inn):
    with pytest.raises(ValidationError) as exc:
        r.validate_inn(inn)
    assert exc.value.code == "inn_checksum"


@pytest.mark.parametrize("inn", ["0000000000", "000000000000"])
def test_all_zero_inn_is_refused_though_it_passes_the_checksum(inn):
    with pytest.raises(ValidationError) as exc:
        r.validate_inn(inn)
    assert exc.value.code == "inn_zeros"


@pytest.mark.parametrize(
    "inn",
    # Digits of other scripts count as digits for str.isdigit: "٧٧٠٧٠٨٣٨٩٣" (Arabic-Indic), "７７０７０８３８９３"
    # (fullwidth), "²" (superscript).
    [
        "",
        "770708389",
        "77070838931",
        "77070838930000",
        "77070838a3",
        "7707 083893",
        "٧٧٠٧٠٨٣٨٩٣",
        "７７０７０８３８９３",
        "770708389²",
    ],
)
def test_inn_of_wrong_length_or_with_non_digits_is_refused(inn):
    with pytest.raises(ValidationError) as exc:
        r.validate_inn(inn)
    assert exc.value.code == "inn_length"
    assert "10 digits" in str(exc.value.messages[0])


# --- ОГРН / ОГРНИП -------------------------------------------------------------------------------


@given(st.one_of(ogrns, ogrnips))
def test_ogrn_and_ogrnip_built_by_the_formula_are_accepted(ogrn):
    r.validate_ogrn(ogrn)


@given(st.one_of(ogrns, ogrnips), st.data())
def test_ogrn_with_one_digit_changed_is_refused_unless_the_remainder_collides(ogrn, data):
    changed = changed_digit(ogrn, data)
    if accepted(r.validate_ogrn, changed):
        assert ogrn_remainder(ogrn) % 10 == ogrn_remainder(changed) % 10
        assert ogrn_remainder(ogrn) != ogrn_remainder(changed), (ogrn, changed)


def test_ogrnip_whose_remainder_is_ten_or_more_is_accepted():
    """python-stdnum 2.2 forgets the final `mod 10` for ОГРНИП; ours must not."""
    body = next(f"3{n:013d}" for n in range(10**6) if int(f"3{n:013d}") % 13 >= 10)
    r.validate_ogrn(build_ogrn(body))


@pytest.mark.parametrize("ogrn", ["1027700132195", "1027739609391", "4057910142110", "304500116000157"])
def test_ogrn_spec_valid_vectors(ogrn):
    r.validate_ogrn(ogrn)


@pytest.mark.parametrize("ogrn", ["1027739609392", "313242342342332"])
def test_ogrn_spec_invalid_vectors(ogrn):
    with pytest.raises(ValidationError) as exc:
        r.validate_ogrn(ogrn)
    assert exc.value.code == "ogrn_checksum"


@pytest.mark.parametrize(("ogrn", "code"), [("102770013219", "ogrn_length"), ("0000000000000", "ogrn_zero")])
def test_ogrn_of_wrong_shape_is_refused(ogrn, code):
    with pytest.raises(ValidationError) as exc:
        r.validate_ogrn(ogrn)
    assert exc.value.code == code


# --- КПП, БИК, ОКПО --------------------------------------------------------------------------------


@given(st.from_regex(r"\A\d{4}[\dA-Z]{2}\d{3}\Z"))
def test_kpp_matching_the_pattern_is_accepted(kpp):
    r.validate_kpp(kpp)


@pytest.mark.parametrize("kpp", ["773601001", "7736AB001", "77360A001", "7750Z0001"])
def test_kpp_with_capital_latin_letters_in_the_reason_code(kpp):
    r.validate_kpp(kpp)


@pytest.mark.parametrize("kpp", ["7736ab001", "77360100", "7736010011", "A73601001", "773601A01", "7736АБ001"])
def test_kpp_off_the_pattern_is_refused(kpp):
    with pytest.raises(ValidationError) as exc:
        r.validate_kpp(kpp)
    assert exc.value.code == "kpp_format"


@pytest.mark.parametrize("bik", ["044525225", "004525988", "024501901", "017003983"])
def test_bik_without_04_prefix_is_accepted(bik):
    r.validate_bik(bik)


@pytest.mark.parametrize("bik", ["04452522", "0445252250", "04452522a"])
def test_bik_of_wrong_shape_is_refused(bik):
    with pytest.raises(ValidationError):
        r.validate_bik(bik)


def test_digits_only_keeps_leading_zeros():
    assert r.digits_only(" 0245-019 01 ") == "024501901"


# --- Accounts ---------------------------------------------------------------------------------------


client_balances = st.sampled_from(["40702", "40701", "40703", "40802", "40817", "40502"])
corr_balances = st.sampled_from(["30101", "30125", "40102"])
rests = st.text("0123456789", min_size=11, max_size=11)


@given(client_balances, rests, biks)
def test_client_account_built_with_the_key_is_accepted(balance, rest, bik):
    r.validate_account_against_bik(build_account(balance, rest, bik), bik)


@given(client_balances, rests, biks, st.data())
def test_client_account_with_any_digit_changed_is_refused(balance, rest, bik, data):
    account = build_account(balance, rest, bik)
    changed = changed_digit(account, data)
    if account_class(changed) != "client":  # e.g. 40702 -> 40102: another prefix, another sum
        return
    assert not accepted(r.validate_account_against_bik, changed, bik)


@given(client_balances, rests, biks, st.data())
def test_client_account_refused_with_a_changed_bik_digit_in_the_key_prefix(balance, rest, bik, data):
    account = build_account(balance, rest, bik)
    position = data.draw(st.integers(6, 8))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != bik[position]]))
    assert not accepted(r.validate_account_against_bik, account, bik[:position] + new + bik[position + 1 :])


@given(corr_balances, rests, biks)
def test_correspondent_account_uses_zero_plus_bik_digits_5_and_6(balance, rest, bik):
    account = build_account(balance, rest, bik)
    assert r.account_key_matches(account, bik) is True
    # Its key depends on БИК digits 5-6 only: changing them breaks it, changing the tail does not.
    other_region = bik[:4] + f"{(int(bik[4:6]) + 1) % 100:02d}" + bik[6:]
    assert r.account_key_matches(account, other_region) is False
    other_tail = bik[:6] + f"{(int(bik[6:]) + 1) % 1000:03d}"
    assert r.account_key_matches(account, other_tail) is True


@given(st.text("0123456789", min_size=18, max_size=18), biks)
def test_treasury_accounts_skip_the_key_check(rest, bik):
    account = "03" + rest
    assert r.account_key_matches(account, bik) is None
    r.validate_account_against_bik(account, bik)


@pytest.mark.parametrize(
    ("account", "bik"),
    [
        ("30101810400000000225", "044525225"),
        ("30101810700000000187", "044525187"),
        ("30101810200000000593", "044525593"),
        ("30101810145250000411", "044525411"),
        ("40702810138250123017", "044525225"),
        ("40702810938120061991", "044525225"),
        ("40702810400000004583", "046015804"),
        ("40102810445370000059", "017003983"),
    ],
)
def test_account_spec_vectors_valid_and_every_flip_invalid(account, bik):
    r.validate_account_against_bik(account, bik)
    for position in range(20):
        for new in "0123456789":
            if new == account[position]:
                continue
            flipped = account[:position] + new + account[position + 1 :]
            if account_class(flipped) != account_class(account):
                continue
            assert not accepted(r.validate_account_against_bik, flipped, bik), flipped


def test_spec_vector_where_last_two_bik_digits_would_be_the_wrong_prefix():
    # 044525411: "0" + BIK[4:6] = "025", while "0" + last two digits = "011".
    account, bik = "30101810145250000411", "044525411"
    assert r.account_key_matches(account, bik) is True
    assert weighted("011" + account, KEY_W) % 10 != 0


def test_treasury_spec_vector_passes_on_length_only():
    r.validate_account_against_bik("03100643000000018500", "017003983")


@pytest.mark.parametrize(
    ("account", "bik"),
    [("30101810400000000225", "044525225"), ("30101810145250000411", "044525411")],
)
def test_correspondent_account_spec_vectors(account, bik):
    r.validate_correspondent_account(account, bik)


def test_correspondent_account_must_start_with_a_correspondent_balance():
    with pytest.raises(ValidationError) as exc:
        r.validate_correspondent_account("40702810138250123017", "044525225")
    assert exc.value.code == "corr_account_prefix"


def test_correspondent_account_of_another_bank_is_refused():
    # ВТБ's correspondent account is key-valid for ВТБ's БИК only.
    with pytest.raises(ValidationError) as exc:
        r.validate_correspondent_account("30101810700000000187", "044525225")
    assert exc.value.code in {"account_key", "corr_account_bik"}


def test_correspondent_account_must_end_with_the_bik_tail():
    # Same key prefix "025" (БИК digits 5-6), so the key passes, but the tail names another bank.
    bik = "044525999"
    account = build_account("30101", "00000000225", bik)
    assert r.account_key_matches(account, bik) is True
    with pytest.raises(ValidationError) as exc:
        r.validate_correspondent_account(account, bik)
    assert exc.value.code == "corr_account_bik"


def test_bank_account_errors_are_keyed_by_field():
    errors = r.bank_account_errors(bik="044525225", number="40702810138250123018", correspondent_account="123")
    assert set(errors) == {"number", "correspondent_account"}
    assert errors["number"].code == "account_key"
    assert r.bank_account_errors(bik="0445", number="40702810138250123017").keys() == {"bik"}
    assert (
        r.bank_account_errors(
            bik="044525225", number="40702810138250123017", correspondent_account="30101810400000000225"
        )
        == {}
    )


@pytest.mark.parametrize(
    ("inn", "kpp", "code"),
    [("7707083893", "", "kpp_required"), ("123456789047", "773601001", "kpp_forbidden")],
)
def test_inn_kpp_pairing(inn, kpp, code):
    errors = r.validate_inn_kpp_pair(inn, kpp)
    assert errors["kpp"].code == code
    assert r.validate_inn_kpp_pair("7707083893", "773601001") == {}
    assert r.validate_inn_kpp_pair("123456789047", "") == {}
