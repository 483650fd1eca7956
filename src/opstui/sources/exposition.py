"""Prometheus text exposition: parse, pick series, rates between scrapes, histogram quantiles.

Pure functions, no I/O, so the `scrape` source stays a thin shell and the arithmetic gets
property tests. Every failure is an ExpositionError with a short message.

Rates follow Prometheus' counter rules per series: a value lower than the previous scrape's
is a reset, and the interval then counts from zero (the new value), so a rate is never
negative; a series seen in only one of the two scrapes has no rate. Quantiles follow
`histogram_quantile` (promql/quantile.go): cumulative `le` buckets summed by `le`, linear
interpolation inside the bucket holding the rank, the lowest bucket starting at 0 (unless its
bound is <= 0), a rank in the +Inf bucket answering the highest finite bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from opstui.sources.errors import one_line

Aggregate = Literal["sum", "max", "min", "avg"]
LabelSet = tuple[tuple[str, str], ...]
"""A series' labels, sorted by name: hashable, so it can key a scrape's values."""


class ExpositionError(ValueError):
    """The page is not a usable exposition (syntax, or a histogram without its +Inf bucket)."""


@dataclass(frozen=True, slots=True)
class Exposition:
    """One parsed page: every sample's name, labels and value, and each family's type."""

    samples: tuple[tuple[str, LabelSet, float], ...]
    types: Mapping[str, str]


def parse_exposition(text: str) -> Exposition:
    """Parse with prometheus_client's parser; any parser failure becomes ExpositionError."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: list[tuple[str, LabelSet, float]] = []
    types: dict[str, str] = {}
    try:
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                samples.append(
                    (sample.name, tuple(sorted(sample.labels.items())), float(sample.value))
                )
    except Exception as exc:  # the parser raises ValueError, IndexError, KeyError...
        raise ExpositionError(one_line(str(exc), 120) or type(exc).__name__) from exc
    return Exposition(tuple(samples), types)


def sample_names(exposition: Exposition, metric: str) -> frozenset[str]:
    """The sample names `metric` stands for: itself, and for a counter family named without
    its suffix (the parser's family name), `<metric>_total` as well."""
    names = {metric}
    if exposition.types.get(metric) == "counter":
        names.add(f"{metric}_total")
    return frozenset(names)


def select(
    exposition: Exposition, names: Iterable[str], labels: Mapping[str, str]
) -> dict[LabelSet, float]:
    """Samples named one of `names` whose labels include every pair of `labels`."""
    wanted = frozenset(names)
    picked: dict[LabelSet, float] = {}
    for name, label_set, value in exposition.samples:
        if name not in wanted:
            continue
        present = dict(label_set)
        if all(present.get(k) == v for k, v in labels.items()):
            picked[label_set] = value
    return picked


def aggregate(values: Sequence[float], how: Aggregate) -> float:
    """Several matching series as one number; an empty sequence is an error (no data)."""
    if not values:
        raise ExpositionError("no series to aggregate")
    if how == "sum":
        return math.fsum(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    if how == "avg":
        return math.fsum(values) / len(values)
    raise ExpositionError(f"unknown aggregate {how!r}")


def counter_increase(previous: float, current: float) -> float:
    """What a counter added between two scrapes; after a reset (it went down) the interval
    counts from zero. Never negative; NaN when either value is NaN."""
    if math.isnan(previous) or math.isnan(current):
        return math.nan
    if current < previous:
        return max(current, 0.0)
    return current - previous


def increases(
    previous: Mapping[LabelSet, float], current: Mapping[LabelSet, float]
) -> dict[LabelSet, float]:
    """Per-series increase between two scrapes, for series present in both."""
    return {
        key: counter_increase(previous[key], value)
        for key, value in current.items()
        if key in previous
    }


def rates(
    previous: Mapping[LabelSet, float], current: Mapping[LabelSet, float], seconds: float
) -> dict[LabelSet, float]:
    """Per-series per-second rate over `seconds` (> 0) between two scrapes."""
    if not seconds > 0:
        raise ExpositionError("a rate needs two scrapes at different times")
    return {key: delta / seconds for key, delta in increases(previous, current).items()}


def bucket_series(
    exposition: Exposition, metric: str, labels: Mapping[str, str]
) -> dict[LabelSet, float]:
    """The `<metric>_bucket` samples matching `labels` (each still with its `le`)."""
    base = metric.removesuffix("_bucket")
    return select(exposition, [f"{base}_bucket"], labels)


def buckets_by_le(series: Mapping[LabelSet, float]) -> list[tuple[float, float]]:
    """Sum bucket counts by their `le` bound (PromQL's `sum by (le)`), sorted by bound."""
    totals: dict[float, float] = {}
    for label_set, count in series.items():
        le = dict(label_set).get("le")
        if le is None:
            raise ExpositionError("a _bucket series has no le label")
        try:
            bound = float(le)
        except ValueError:
            raise ExpositionError(f"bad le label {le[:20]!r}") from None
        if math.isnan(bound) or bound == -math.inf:
            raise ExpositionError(f"bad le label {le[:20]!r}")
        totals[bound] = totals.get(bound, 0.0) + count
    return sorted(totals.items())


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The q-quantile of cumulative (upper bound, count) buckets sorted by bound.

    As Prometheus: q < 0 -> -Inf, q > 1 -> +Inf; NaN when there are no observations.
    Errors for what Prometheus also cannot answer: fewer than two buckets, no +Inf bucket,
    NaN counts.
    """
    if math.isnan(q):
        raise ExpositionError("quantile is NaN")
    if len(buckets) < 2:
        raise ExpositionError("a histogram needs at least two buckets")
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        raise ExpositionError("histogram has no +Inf bucket")
    if any(math.isnan(bound) or bound == -math.inf for bound, _ in buckets):
        raise ExpositionError("a bucket bound is NaN or -Inf")
    if any(math.isnan(count) for _, count in buckets):
        raise ExpositionError("a bucket count is NaN")
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    # Cumulative counts can dip when buckets are scraped mid-update: keep them monotonic.
    fixed: list[tuple[float, float]] = []
    highest = -math.inf
    for bound, count in buckets:
        highest = max(highest, count)
        fixed.append((bound, highest))
    observations = fixed[-1][1]
    if observations <= 0:
        return math.nan
    rank = q * observations
    index = next(i for i, (_, count) in enumerate(fixed) if count >= rank)
    if index == len(fixed) - 1:
        return fixed[-2][0]
    upper, count = fixed[index]
    if index == 0 and upper <= 0:
        return upper
    lower = 0.0
    if index > 0:
        lower = fixed[index - 1][0]
        count -= fixed[index - 1][1]
        rank -= fixed[index - 1][1]
    if count <= 0:  # only when q == 0 and the first bucket is empty
        return lower
    return lower + (upper - lower) * (rank / count)


def label_text(labels: LabelSet, *, skip: Iterable[str] = ()) -> str:
    """`{job="api",instance="a:9100"}`, without the names in `skip`; `{}` for none."""
    hidden = set(skip)
    inner = ",".join(f'{k}="{v}"' for k, v in labels if k not in hidden)
    return "{" + inner + "}"

