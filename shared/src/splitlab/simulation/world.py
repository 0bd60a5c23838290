"""The simulated world (pure and seeded): who arrives, what they looked like before the
experiment, and what they do after a model served them.

A user has attributes (``country``, ``device``, ``tenure_days``) and a latent propensity to
click, from which their pre-exposure history is drawn (``sessions_30d``, ``clicks_30d``,
``spend_30d``: written to ``unit_features`` before the user arrives, so CUPED and CUPAC have
real covariates). After ``/predict`` the user clicks with probability

    p_click = min(0.95, base_ctr(user) * lift[model that served the request])

then converts with ``conversion_rate`` (times its lift) and spends a lognormal amount scaled by
their past spend. ``lift`` belongs to the *model*, so a request that fell back to control's
model gets control's behaviour: a better model yields a true lift only where it really served.
A user comes back ``visits`` times (more if they had more sessions before), each visit a
request and a chance to click. The true effect of a variant is then known exactly
(:meth:`World.expected`), which is what the whole-system tests compare the platform's estimates
with.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

COUNTRIES: tuple[str, ...] = ("US", "DE", "BR", "IN", "JP")
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
FEATURES: tuple[str, ...] = (
    "tenure_days",
    "sessions_30d",
    "clicks_30d",
    "spend_30d",
    "is_mobile",
    "country_index",
)
"""What the models see (numbers only), in this order."""
HISTORY: tuple[str, ...] = ("sessions_30d", "clicks_30d", "spend_30d", "tenure_days")
"""The pre-exposure features written to ``unit_features``."""
OutcomeType = Literal["click", "conversion", "revenue"]
MAX_VISITS = 6


@dataclass(frozen=True)
class User:
    unit_id: str
    country: str
    device: str
    tenure_days: float
    sessions_30d: float
    clicks_30d: float
    spend_30d: float
    base_ctr: float
    """The probability that this user clicks what control's model shows them."""
    visits: int
    """Requests this user makes during the experiment (each a ``/predict`` and a chance to
    click): frequent users come back more often."""

    @property
    def attributes(self) -> dict[str, str | float]:
        return {"country": self.country, "device": self.device, "tenure_days": self.tenure_days}

    @property
    def features(self) -> dict[str, float]:
        """The model's input (``FEATURES``)."""
        return {
            "tenure_days": self.tenure_days,
            "sessions_30d": self.sessions_30d,
            "clicks_30d": self.clicks_30d,
            "spend_30d": self.spend_30d,
            "is_mobile": 1.0 if self.device == "mobile" else 0.0,
            "country_index": float(COUNTRIES.index(self.country)),
        }

    @property
    def history(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in HISTORY}


@dataclass(frozen=True)
class Outcome:
    unit_id: str
    outcome_type: OutcomeType
    value: float


@dataclass(frozen=True)
class Behaviour:
    """What a model does to the users it serves: multipliers of the click and conversion
    probabilities and of the amount spent, relative to control's model (1.0 = the same)."""

    click: float = 1.0
    conversion: float = 1.0
    revenue: float = 1.0

    def __post_init__(self) -> None:
        for name in ("click", "conversion", "revenue"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: a lift must be a positive finite number, got {value}")


@dataclass(frozen=True)
class World:
    """Users and behaviour, reproducible from ``seed``.

    ``ctr`` is the mean click probability under control's model; ``behaviours`` maps a model
    reference (``name:version``) to its :class:`Behaviour`; a model not named behaves as control.
    """

    seed: int = 7
    ctr: float = 0.07
    conversion_rate: float = 0.2
    mean_order: float = 40.0
    behaviours: dict[str, Behaviour] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.ctr < 0.5:
            raise ValueError(f"ctr: must be in (0, 0.5), got {self.ctr}")
        if not 0 < self.conversion_rate <= 1:
            raise ValueError(f"conversion_rate: must be in (0, 1], got {self.conversion_rate}")
        if not (math.isfinite(self.mean_order) and self.mean_order > 0):
            raise ValueError(f"mean_order: must be positive, got {self.mean_order}")

    # --- users -------------------------------------------------------------------------------
    def user(self, index: int, prefix: str = "sim") -> User:
        """User number ``index``: the same user for the same seed, whatever else was drawn."""
        rng, country, device, tenure, shift = self._profile(index)
        base = _logistic(_intercept(self.ctr) + shift)
        sessions = float(rng.poisson(4.0 + 10.0 * (device == "mobile") + 6.0 * rng.random()))
        clicks = float(rng.binomial(int(sessions) * 3, min(0.95, base)))
        spend = float(
            np.round(clicks * self.conversion_rate * self.mean_order * rng.lognormal(0.0, 0.3), 2)
        )
        visits = int(min(MAX_VISITS, 1 + rng.poisson(sessions / 8.0)))
        return User(
            unit_id=f"{prefix}-{self.seed}-{index}",
            country=country,
            device=device,
            tenure_days=tenure,
            sessions_30d=sessions,
            clicks_30d=clicks,
            spend_30d=spend,
            base_ctr=float(base),
            visits=visits,
        )

    def _profile(self, index: int) -> tuple[np.random.Generator, str, str, float, float]:
        """User ``index``'s attributes and the log-odds shift of their click propensity (from
        the attributes plus a personal part); the history drawn from it predicts the outcome."""
        rng = np.random.default_rng([self.seed, index])
        country = COUNTRIES[int(rng.choice(len(COUNTRIES), p=[0.35, 0.2, 0.2, 0.15, 0.1]))]
        device = DEVICES[int(rng.choice(len(DEVICES), p=[0.6, 0.3, 0.1]))]
        tenure = float(np.round(rng.gamma(2.0, 180.0), 1))
        shift = (
            0.35 * (device == "mobile")
            - 0.25 * (country == "JP")
            + 0.15 * math.tanh((tenure - 200.0) / 200.0)
            + 0.8 * float(rng.normal())
        )
        return rng, country, device, tenure, shift

    def behaviour(self, model_ref: str) -> Behaviour:
        return self.behaviours.get(model_ref, Behaviour())

    # --- outcomes ----------------------------------------------------------------------------
    def click_probability(self, user: User, model_ref: str) -> float:
        return min(0.95, user.base_ctr * self.behaviour(model_ref).click)

    def outcomes(self, user: User, model_ref: str, draw: int = 0) -> list[Outcome]:
        """What ``user`` does after ``model_ref`` served them (``draw`` numbers repeat visits).
        Only events that happened are returned: no click, no event."""
        rng = np.random.default_rng([self.seed, 1_000_003, _stable(user.unit_id), draw])
        behaviour = self.behaviour(model_ref)
        if rng.random() >= self.click_probability(user, model_ref):
            return []
        events = [Outcome(user.unit_id, "click", 1.0)]
        if rng.random() < min(1.0, self.conversion_rate * behaviour.conversion):
            events.append(Outcome(user.unit_id, "conversion", 1.0))
            scale = self.mean_order * behaviour.revenue * (0.5 + user.spend_30d / 200.0)
            amount = float(np.round(scale * rng.lognormal(-0.1, 0.45), 2))
            events.append(Outcome(user.unit_id, "revenue", amount))
        return events

    # --- the truth ---------------------------------------------------------------------------
    def expected(self, model_ref: str, users: int = 20_000) -> dict[str, float]:
        """The truth under ``model_ref``: per user, the mean number of ``visits`` (requests),
        ``click`` events, ``conversion`` events and ``revenue``, the share of users with a
        click (``any_click``) and with a conversion (``any_conversion``), and the ``ctr`` as
        clicks over requests. Exact probabilities averaged over ``users`` users of this world
        (drawn apart from any run's users, so a run's sample differs from it by sampling error
        only)."""
        behaviour = self.behaviour(model_ref)
        conversion = min(1.0, self.conversion_rate * behaviour.conversion)
        order = math.exp(-0.1 + 0.45**2 / 2)
        total = dict.fromkeys(
            ("visits", "click", "conversion", "revenue", "any_click", "any_conversion"), 0.0
        )
        for index in range(users):
            user = self.user(index, prefix="truth")
            p = self.click_probability(user, model_ref)
            scale = self.mean_order * behaviour.revenue * (0.5 + user.spend_30d / 200.0)
            total["visits"] += user.visits
            total["click"] += user.visits * p
            total["conversion"] += user.visits * p * conversion
            total["revenue"] += user.visits * p * conversion * scale * order
            total["any_click"] += 1 - (1 - p) ** user.visits
            total["any_conversion"] += 1 - (1 - p * conversion) ** user.visits
        truth = {name: value / users for name, value in total.items()}
        truth["ctr"] = truth["click"] / truth["visits"]
        return truth


@functools.lru_cache(maxsize=64)
def _intercept(ctr: float) -> float:
    """The log-odds intercept that makes the mean click probability ``ctr`` (bisection over a
    fixed sample of the users' shifts)."""
    world = World(seed=0, ctr=ctr)
    shifts = np.array([world._profile(index)[4] for index in range(4000)])
    low, high = -12.0, 4.0
    for _ in range(60):
        middle = (low + high) / 2
        mean = float(np.mean(1.0 / (1.0 + np.exp(-(middle + shifts)))))
        low, high = (middle, high) if mean < ctr else (low, middle)
    return (low + high) / 2


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _stable(text: str) -> int:
    """A hash of ``text`` that is the same in every process (``hash()`` is salted)."""
    value = 0
    for char in text.encode():
        value = (value * 131 + char) % (2**61 - 1)
    return value
