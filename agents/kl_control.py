"""The KL coefficient controllers of the agents and the SB3 callback: fixed, or adapting toward a target KL."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from agents.functional import _check_number

__all__ = ["AdaptiveKLController", "FixedKLController"]


class _KLControllerState:
    """``state_dict``/``load_state_dict`` shared by the KL controllers (dataclasses)."""

    value: float
    __dataclass_fields__: ClassVar[dict[str, Any]]  # the controllers are dataclasses

    def state_dict(self) -> dict[str, float]:
        """Settings and current coefficient, for checkpoints."""
        return asdict(self)

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        """Restore what :meth:`state_dict` returned, validated like the constructor's arguments."""
        expected = sorted(f.name for f in fields(self))
        if sorted(state_dict) != expected:
            raise ValueError(f"Expected state_dict keys {expected}, got {sorted(state_dict)}")
        restored = type(self)(**{f.name: state_dict[f.name] for f in fields(self) if f.init})
        _check_number("value", state_dict["value"], 0.0, low_inclusive=True)
        self.__dict__.update(restored.__dict__, value=float(state_dict["value"]))


@dataclass
class AdaptiveKLController(_KLControllerState):
    """Adaptive KL coefficient of Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences".

    After each batch: ``error = clip(current_kl / target - 1, -0.2, 0.2)``,
    ``value *= 1 + error * n_steps / horizon``. The coefficient grows while the KL is above target and shrinks below.
    """

    init_kl_coef: float
    """Starting coefficient (> 0)."""
    target: float
    """KL the controller steers towards (> 0), in the same units as ``current_kl``."""
    horizon: float
    """Steps over which a full proportional correction applies (> 0); Ziegler et al. use 10000."""
    min_kl_coef: float = 0.0
    """Floor of the coefficient (>= 0): early on, when the policy is still close to the reference, the plain
    controller shrinks the coefficient, and then reacts too slowly once the KL grows."""
    value: float = field(init=False)
    """Current coefficient."""

    def __post_init__(self) -> None:
        for name in ("init_kl_coef", "target", "horizon"):
            _check_number(name, getattr(self, name), 0.0)
        _check_number("min_kl_coef", self.min_kl_coef, 0.0, low_inclusive=True)
        self.value = float(self.init_kl_coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Adapt ``value`` after ``n_steps`` samples whose mean KL was ``current_kl``."""
        current_kl = float(current_kl)
        if not math.isfinite(current_kl):
            raise ValueError(f"Expected current_kl to be finite, got {current_kl}")
        _check_number("n_steps", n_steps, 0.0, low_inclusive=True)
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value = max(self.value * (1.0 + error * n_steps / self.horizon), self.min_kl_coef)


@dataclass
class FixedKLController(_KLControllerState):
    """Constant KL coefficient with the :class:`AdaptiveKLController` interface; ``update`` does nothing."""

    kl_coef: float
    """The coefficient (>= 0; 0 disables the KL penalty)."""
    value: float = field(init=False)
    """Current coefficient, always ``kl_coef``."""

    def __post_init__(self) -> None:
        _check_number("kl_coef", self.kl_coef, 0.0, low_inclusive=True)
        self.value = float(self.kl_coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Do nothing: the coefficient is fixed."""
