"""Building blocks every kind's config shares: the strict base model, key-path problems,
credential-checked headers, thresholds and the fields common to all probes."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from opstui.config.types import Duration, PositiveDuration, Secret, SecretText, Text, is_reference

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
IDENT_RE = re.compile(IDENT)
IDENT_HINT = "use letters, digits, _ . - and start with a letter or digit"


class ReferenceProblem(ValueError):
    """An error that knows the key path it belongs to, for the loader's line.

    `loc` is relative to the value whose validator raised it (the whole Config for
    cross-references, the headers mapping for a literal secret, ...).
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class ReferenceProblems(ValueError):
    """Several ReferenceProblems found by one validator, reported together."""

    def __init__(self, problems: list[ReferenceProblem]) -> None:
        super().__init__(problems[0].message if problems else "invalid")
        self.problems = problems


def raise_all(problems: list[ReferenceProblem]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ReferenceProblems(problems)


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
        populate_by_name=True,
        serialize_by_alias=True,
    )


# --- headers ------------------------------------------------------------------------------

_SENSITIVE = ("authorization", "cookie", "token", "key", "secret", "password")


def is_sensitive_header(name: str) -> bool:
    """Header names whose values are credentials: they must come from `${ENV}` or `file:`."""
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE)


def _no_literal_secrets(headers: dict[str, str | Secret]) -> dict[str, str | Secret]:
    problems = [
        ReferenceProblem(
            (name,),
            f"header {name!r} carries a credential: write it as ${{ENV_VAR}} or file:/path, "
            "not as a literal",
        )
        for name, value in headers.items()
        if is_sensitive_header(name) and not is_reference(value)
    ]
    raise_all(problems)
    return headers


Headers = Annotated[dict[str, SecretText], AfterValidator(_no_literal_secrets)]


# --- thresholds -------------------------------------------------------------------------


class Band(Model):
    """Warn and crit limits on one side of a value."""

    warn: FiniteFloat | None = Field(None, description="limit for warn")
    crit: FiniteFloat | None = Field(None, description="limit for crit")

    @model_validator(mode="after")
    def _one_limit(self) -> Band:
        if self.warn is None and self.crit is None:
            raise ValueError("a band needs warn, crit or both")
        return self


class Thresholds(Model):
    """Bands on a numeric field, with a `for` delay, hysteresis and flap detection."""

    field: str | None = Field(None, description="field to judge; default: the probe's value")
    above: Band | None = Field(None, description="breached when the value is above a limit")
    below: Band | None = Field(None, description="breached when the value is below a limit")
    for_: Duration = Field(0.0, alias="for", description="how long a breach lasts before firing")
    hysteresis: FiniteFloat = Field(
        0.0, ge=0, description="recovery margin, as a fraction of the limit (0.1 = 10 %)"
    )
    flap_low: FiniteFloat = Field(
        0.25, ge=0, le=1, description="flapping ends below this change ratio"
    )
    flap_high: FiniteFloat = Field(
        0.5, ge=0, le=1, description="flapping starts above this change ratio"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Thresholds:
        if self.above is None and self.below is None:
            raise ValueError("thresholds need `above`, `below` or both")
        problems: list[ReferenceProblem] = []
        if self.flap_low > self.flap_high:
            problems.append(
                ReferenceProblem(
                    ("flap_low",),
                    f"flap_low ({self.flap_low:g}) must not exceed flap_high ({self.flap_high:g})",
                )
            )
        above, below = self.above, self.below
        if above and above.warn is not None and above.crit is not None and above.warn > above.crit:
            problems.append(
                ReferenceProblem(
                    ("above", "warn"),
                    f"above: warn ({above.warn:g}) must not exceed crit ({above.crit:g})",
                )
            )
        if below and below.warn is not None and below.crit is not None and below.warn < below.crit:
            problems.append(
                ReferenceProblem(
                    ("below", "warn"),
                    f"below: warn ({below.warn:g}) must not be under crit ({below.crit:g})",
                )
            )
        raise_all(problems)
        return self


# --- probes -----------------------------------------------------------------------------


class ProbeCommon(Model):
    id: str = Field(pattern=IDENT, description="unique name; views and runbooks refer to it")
    title: Text | None = Field(None, description="panel title; default: the id")
    connection: str = Field(description="name of the connection to poll through")
    interval: PositiveDuration | None = Field(None, description="poll interval; default: `refresh`")
    timeout: PositiveDuration | None = Field(
        None, description="poll timeout; default: the connection's"
    )
    unit: str | None = Field(None, description="unit shown after the value")
    thresholds: Thresholds | None = Field(None, description="bands that turn the panel warn/crit")
    runbook: str | None = Field(None, description="runbook suggested when this panel is red")
    history: int = Field(600, ge=10, le=100_000, description="readings kept for sparkline/detail")

    @property
    def display_title(self) -> str:
        return self.title or self.id
