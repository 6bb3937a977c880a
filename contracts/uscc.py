"""统一社会信用代码 (Unified Social Credit Code), GB 32100-2015.

18 characters from a 31-character alphabet (digits and capitals without I, O, Z, S, V); the
18th is a check character: 31 − (Σ value(cᵢ) × wᵢ mod 31), with 31 written as 0.
"""

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_error(code: str) -> str | None:
    """Why ``code`` is not a valid USCC, or None if it is."""
    if len(code) != 18:
        return f"a USCC has 18 characters, {code!r} has {len(code)}"
    if bad := sorted({c for c in code if c not in ALPHABET}):
        return f"{code!r} contains characters a USCC never uses: {''.join(bad)}"
    if not code[2:8].isdigit():
        return f"characters 3–8 of {code!r} must be the administrative division code (digits)"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"the check character of {code!r} should be {expected!r}"
    return None
