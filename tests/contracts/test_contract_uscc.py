"""统一社会信用代码 (GB 32100-2015) check characters (contracts/uscc.py) against published codes.

The valid codes below are copied from python-stdnum's tests, which collected them from public
registrations: https://github.com/arthurdejong/python-stdnum, tests/test_cn_uscc.doctest
("These have been found online and should all be valid numbers") and the doctest of
stdnum/cn/uscc.py (``validate('91110000600037341L')``, ``validate('91110000600037341N')`` →
InvalidChecksum, ``validate('9111000060003IOZSV')`` → InvalidFormat, ``validate('12345')`` →
InvalidLength). They are an oracle independent of the code under test.
"""

import pytest
from contract_book import SC_A, uscc

from contracts.uscc import ALPHABET, check_character, uscc_error

# python-stdnum tests/test_cn_uscc.doctest (a selection covering digits and letters, and 'X'
# and '0' as check characters).
PUBLISHED = [
    "121200004013590816",
    "91110000600037341L",
    "91110000710926094P",
    "91120224064012553U",
    "911522010783710635",
    "91152201078371135X",
    "9115220107837757XE",
    "9115220107837941X1",
    "91310000631696382C",
    "91310115MA1K3BTP2B",
    "9131012056010553X5",
    "91340600MA2PBM9HXD",
    "91340600MA2PBNE723",
    "91340600MA2PBP2120",
    "91420684MA4927PJ7B",
    "91440300568520498A",
    "9144030071526726XG",
    "91620105L015101280",
    "91620105MA73NBBLXE",
    "92340602MA2PBMEM24",
    "92340603MA2UK1TD00",
    "92340621MA2UK3PJXE",
]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_accepted(code):
    assert uscc_error(code) is None
    assert check_character(code[:17]) == code[17]


@pytest.mark.parametrize("code", PUBLISHED)
def test_every_other_check_character_is_refused(code):
    for wrong in ALPHABET:
        if wrong != code[17]:
            assert uscc_error(code[:17] + wrong) is not None, code[:17] + wrong


@pytest.mark.parametrize("code", [
    "91110000600037341N",            # stdnum: InvalidChecksum
    "12345",                         # stdnum: InvalidLength
    "91110000600037341",             # 17 characters
    "91110000600037341LL",           # 19 characters
    "",
    "9111000060003IOZSV",            # stdnum: InvalidFormat (I, O, Z, S, V are never used)
    "91110000600037341l",            # lower case
    "9111000060003734 L",
    "91AB0000600037341L",            # the division code (characters 3–8) is digits
])
def test_malformed_codes_are_refused(code):
    assert uscc_error(code) is not None


@pytest.mark.parametrize("letter", "IOSVZ")
def test_forbidden_letters_are_refused_even_with_a_matching_check_character(letter):
    # put the letter in the organisation code; whatever the last character, the code is refused
    body = "91510100MA6C0000" + letter
    for last in ALPHABET + letter:
        assert uscc_error(body + last) is not None
    assert letter not in ALPHABET


def test_alphabet_is_gb_32100s_31_characters():
    assert ALPHABET == "0123456789ABCDEFGHJKLMNPQRTUWXY"
    assert len(ALPHABET) == 31


def test_account_open_validates_the_uscc(standard_book):
    book = standard_book
    good = "SC:ENT:91510100MA6C00009" + check_character("91510100MA6C00009")
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert book.refused("sc-exchange", {"op": "account.open", "account": bad_check,
                                        "name": "X"}).code == "INVALID_USCC"
    assert book.refused("sc-exchange", {"op": "account.open", "account": "SC:ENT:9111000060003IOZSV",
                                        "name": "X"}).code == "INVALID_USCC"
    assert book.refused("sc-exchange", {"op": "account.open", "account": "SC:ENT:91110000600037341",
                                        "name": "X"}).code == "INVALID_USCC"
    # a published code opens (the division code is not matched against the province)
    assert book.do("sc-exchange", {"op": "account.open", "account": "SC:ENT:91110000600037341L",
                                   "name": "X"}).results == [{"account": "SC:ENT:91110000600037341L"}]
    assert book.do("sc-exchange", {"op": "account.open", "account": good, "name": "Y"}).results == [
        {"account": good}]
    assert SC_A == "SC:ENT:" + uscc("91510100MA6C00001")
