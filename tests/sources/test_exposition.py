"""Exposition arithmetic against hand-computed answers (histogram_quantile as Prometheus)."""

from __future__ import annotations

import math

import pytest

from opstui.sources.exposition import (
    ExpositionError,
    LabelSet,
    aggregate,
    bucket_series,
    buckets_by_le,
    counter_increase,
    histogram_quantile,
    increases,
    label_text,
    parse_exposition,
    rates,
    sample_names,
    select,
)

PAGE = """# HELP jobs_total jobs done
# TYPE jobs_total counter
jobs_total{queue="a",worker="1"} 10
jobs_total{queue="a",worker="2"} 5
jobs_total{queue="b",worker="1"} 7
# TYPE depth gauge
depth 3.5
# TYPE lat histogram
lat_bucket{le="0.1"} 2
lat_bucket{le="0.25"} 3
lat_bucket{le="0.5"} 6
lat_bucket{le="1"} 8
lat_bucket{le="2.5"} 9
lat_bucket{le="+Inf"} 10
lat_sum 7.4
lat_count 10
"""

# Cumulative buckets of 0.05 0.05 0.2 0.3 0.3 0.4 0.7 0.9 1.5 3.0
BUCKETS = [(0.1, 2.0), (0.25, 3.0), (0.5, 6.0), (1.0, 8.0), (2.5, 9.0), (math.inf, 10.0)]


def test_select_by_name_and_labels() -> None:
    page = parse_exposition(PAGE)
    # The parser names the counter family `jobs`; both spellings find the samples.
    assert sample_names(page, "jobs") == {"jobs", "jobs_total"}
    everything = select(page, sample_names(page, "jobs_total"), {})
    assert sorted(everything.values()) == [5.0, 7.0, 10.0]
    queue_a = select(page, sample_names(page, "jobs"), {"queue": "a"})
    assert sorted(queue_a.values()) == [5.0, 10.0]
    assert select(page, ["jobs_total"], {"queue": "zzz"}) == {}
    assert select(page, ["depth"], {}) == {(): 3.5}


def test_aggregates() -> None:
    assert aggregate([1.0, 2.0, 6.0], "sum") == 9.0
    assert aggregate([1.0, 2.0, 6.0], "max") == 6.0
    assert aggregate([1.0, 2.0, 6.0], "min") == 1.0
    assert aggregate([1.0, 2.0, 6.0], "avg") == 3.0
    with pytest.raises(ExpositionError):
        aggregate([], "sum")


def test_counter_reset_counts_from_zero_per_series() -> None:
    assert counter_increase(10.0, 15.0) == 5.0
    assert counter_increase(10.0, 3.0) == 3.0  # reset: the process restarted and counted 3
    before: dict[LabelSet, float] = {
        (("s", "a"),): 100.0,
        (("s", "b"),): 5.0,
        (("s", "gone"),): 1.0,
    }
    after: dict[LabelSet, float] = {(("s", "a"),): 4.0, (("s", "b"),): 9.0, (("s", "new"),): 50.0}
    assert increases(before, after) == {(("s", "a"),): 4.0, (("s", "b"),): 4.0}
    assert rates(before, after, 2.0) == {(("s", "a"),): 2.0, (("s", "b"),): 2.0}
    with pytest.raises(ExpositionError):
        rates(before, after, 0.0)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.1, 0.05),  # rank 1 of the 2 in (0, 0.1]
        (0.5, 0.25 + 0.25 * 2 / 3),  # rank 5: 2 of the 3 in (0.25, 0.5]
        (0.9, 2.5),  # rank 9: the only one in (1, 2.5]
        (0.95, 2.5),  # rank 9.5 lands in +Inf: the highest finite bound
        (1.5, math.inf),
        (-0.1, -math.inf),
    ],
)
def test_histogram_quantile_by_hand(q: float, expected: float) -> None:
    assert histogram_quantile(q, BUCKETS) == pytest.approx(expected)


def test_buckets_from_page_are_summed_by_le() -> None:
    page = parse_exposition(PAGE)
    assert buckets_by_le(bucket_series(page, "lat", {})) == BUCKETS
    assert buckets_by_le(bucket_series(page, "lat_bucket", {})) == BUCKETS
    two: dict[LabelSet, float] = {
        (("le", "1"), ("pod", "a")): 1.0,
        (("le", "+Inf"), ("pod", "a")): 2.0,
        (("le", "1"), ("pod", "b")): 3.0,
        (("le", "+Inf"), ("pod", "b")): 3.0,
    }
    assert buckets_by_le(two) == [(1.0, 4.0), (math.inf, 5.0)]


def test_histogram_edge_cases() -> None:
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))
    # Non-monotonic counts (scraped mid-update) are lifted, as Prometheus does.
    assert histogram_quantile(0.5, [(1.0, 4.0), (2.0, 3.0), (math.inf, 4.0)]) == 0.5
    # A first bucket with a bound <= 0 answers its bound.
    assert histogram_quantile(0.1, [(-1.0, 5.0), (math.inf, 10.0)]) == -1.0
    with pytest.raises(ExpositionError, match=r"\+Inf"):
        histogram_quantile(0.5, [(1.0, 1.0), (2.0, 2.0)])
    with pytest.raises(ExpositionError, match="two buckets"):
        histogram_quantile(0.5, [(math.inf, 2.0)])
    with pytest.raises(ExpositionError, match="le"):
        buckets_by_le({(("le", "abc"),): 1.0})
    with pytest.raises(ExpositionError, match="le"):
        buckets_by_le({(("x", "1"),): 1.0})


@pytest.mark.parametrize(
    "text",
    ["metric{ 1", 'metric{a="1"} one', "<html><body>hi</body></html>", 'm{a="b"}'],
)
def test_bad_exposition_is_a_typed_error(text: str) -> None:
    with pytest.raises(ExpositionError):
        parse_exposition(text)


def test_label_text() -> None:
    labels = (("instance", "a:9100"), ("job", "api"))
    assert label_text(labels) == '{instance="a:9100",job="api"}'
    assert label_text(labels, skip={"job"}) == '{instance="a:9100"}'
    assert label_text(()) == "{}"
