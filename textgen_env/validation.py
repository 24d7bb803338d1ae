"""The one set of argument checks every config uses: each raises ValueError "Expected <argument> to be ..., got ..."."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = ["check_choice", "check_int", "check_positive", "check_unit", "torch_dtype"]


def check_choice(argument: str, value: Any, valid: Sequence[Any]) -> None:
    """`value` must be one of `valid`."""
    if value not in valid:
        raise ValueError(f"Expected {argument} to be one of {list(valid)}, got {value!r}")


def check_int(argument: str, value: Any, minimum: int) -> None:
    """`value` must be an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"Expected {argument} to be an int >= {minimum}, got {value!r}")


def check_positive(argument: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    """`value` must be a finite number (an int with `integer`) > 0 (>= 0 with `allow_zero`)."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "an int" if integer else "a finite number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Expected {argument} to be {what} {bound}, got {value!r}")


def check_unit(argument: str, value: Any) -> None:
    """`value` must be a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"Expected {argument} to be a number in [0, 1], got {value!r}")


def torch_dtype(argument: str, value: Any) -> Any:
    """`value` as a ``torch.dtype``: a dtype, or its name like ``"float32"``."""
    import torch

    dtype = getattr(torch, value, None) if isinstance(value, str) else value
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"Expected {argument} to be a torch dtype name like 'float32', got {value!r}")
    return dtype
