"""The Kubernetes CEL library functions the CRD's rules call, for cel-python.

The API server evaluates the CRD's ``x-kubernetes-validations`` with Kubernetes' CEL libraries;
cel-python has only standard CEL. This module supplies the part of Kubernetes' quantity library
(``k8s.io/apiserver/pkg/cel/library/quantity.go``) the rules use, parsing as
``resource.ParseQuantity`` does, so ``render`` and the server agree on what a quantity is.
A function raises ValueError or TypeError where the server's returns an error value:
cel-python turns those into CEL errors, which ``||`` and ``&&`` absorb as CEL requires.
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

from celpy import celtypes

# ParseQuantity's scanner: a sign, digits, a fraction, then a suffix made of the letters
# eEinumkKMGTP, a sign and digits; the suffix must then be one it knows.
_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<num>[0-9]*)(?:\.(?P<denom>[0-9]*))?(?P<suffix>[eEinumkKMGTP]*[+-]?[0-9]*)$"
)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_INT64 = 2**63
_INT32 = 2**31
# Exact for any quantity a string of the CRD's 64 characters at most can write.
_EXACT = Context(prec=200, Emax=MAX_EMAX, Emin=MIN_EMIN)


class Quantity(celtypes.StringType):
    """A parsed quantity: its text, and its exact value."""

    value: Decimal

    def __new__(cls, text: str, value: Decimal) -> Quantity:
        quantity = super().__new__(cls, text)
        quantity.value = value
        return quantity


def _exponent(text: str) -> int | None:
    """A decimal exponent as the suffix handler reads it: an int64, then cut to int32."""
    if not re.fullmatch(r"[+-]?[0-9]+", text) or not -_INT64 <= int(text) < _INT64:
        return None
    return (int(text) + _INT32) % (2 * _INT32) - _INT32


def parse(text: Any) -> Decimal | None:
    """The exact value of a quantity string, or None where ParseQuantity refuses it."""
    match = _QUANTITY.match(text) if isinstance(text, str) and text else None
    if not match:
        return None
    suffix = match["suffix"]
    number = Decimal(f"{match['sign']}{match['num'] or '0'}.{match['denom'] or '0'}")
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix], _EXACT)
    if suffix in _BINARY:
        return _EXACT.multiply(number, 2 ** _BINARY[suffix])
    exponent = _exponent(suffix[1:]) if suffix[:1] in ("e", "E") else None
    return None if exponent is None else number.scaleb(exponent, _EXACT)


def is_quantity(text: Any) -> celtypes.BoolType:
    return celtypes.BoolType(parse(text) is not None)


def quantity(text: Any) -> Quantity:
    value = parse(text)
    if value is None:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    return Quantity(str(text), value)


def _quantity(value: Any) -> Quantity:
    if not isinstance(value, Quantity):
        raise TypeError(f"no such overload: expected a quantity, got {value!r}")
    return value


def compare_to(left: Any, right: Any) -> celtypes.IntType:
    a, b = _quantity(left).value, _quantity(right).value
    return celtypes.IntType((a > b) - (a < b))


FUNCTIONS = {
    "isQuantity": is_quantity,
    "quantity": quantity,
    "compareTo": compare_to,
    "isLessThan": lambda a, b: celtypes.BoolType(compare_to(a, b) < 0),
    "isGreaterThan": lambda a, b: celtypes.BoolType(compare_to(a, b) > 0),
}
