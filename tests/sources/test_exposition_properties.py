"""Property tests: the exposition code raises only ExpositionError, and quantiles behave."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from opstui.sources.exposition import (
    ExpositionError,
    LabelSet,
    buckets_by_le,
    counter_increase,
    histogram_quantile,
    increases,
    parse_exposition,
    select,
)

LINE_PARTS = st.sampled_from(
    [
        "metric",
        "m_total",
        "{",
        "}",
        '"',
        "le=",
        'a="b"',
        ",",
        " ",
        "1",
        "NaN",
        "+Inf",
        "\n",
        "# TYPE m counter\n",
        "# HELP m x\n",
        "\\",
        "=",
        "e5",
        "-",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(LINE_PARTS, max_size=40).map("".join)))
def test_parse_raises_only_exposition_error(text: str) -> None:
    try:
        page = parse_exposition(text)
    except ExpositionError:
        return
    for name, labels, value in page.samples:
        assert isinstance(name, str) and isinstance(value, float)
        assert select(page, [name], dict(labels))


@st.composite
def histograms(draw: st.DrawFn) -> list[tuple[float, float]]:
    bounds = draw(
        st.lists(
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    counts = draw(
        st.lists(
            st.floats(min_value=0, max_value=1e9, allow_nan=False),
            min_size=len(bounds) + 1,
            max_size=len(bounds) + 1,
        )
    )
    counts.sort()
    return list(zip([*sorted(bounds), math.inf], counts, strict=True))


@settings(max_examples=300, deadline=None)
@given(histograms(), st.floats(0.001, 0.999), st.floats(0.001, 0.999))
def test_quantile_is_monotone_in_q(
    buckets: list[tuple[float, float]], q1: float, q2: float
) -> None:
    low, high = sorted((q1, q2))
    a, b = histogram_quantile(low, buckets), histogram_quantile(high, buckets)
    if buckets[-1][1] == 0:
        assert math.isnan(a) and math.isnan(b)
        return
    assert a <= b + 1e-9 * max(1.0, abs(b))
    finite = [bound for bound, _ in buckets[:-1]]
    assert min(min(finite), 0.0) - 1e-9 <= b <= max(finite) + 1e-9 or b == finite[-1]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["0.1", "1", "+Inf", "-Inf", "x", "NaN", "1e3"])).map(
            lambda t: (("le", t[0]),)
        ),
        st.floats(allow_nan=True, allow_infinity=True),
        max_size=5,
    ),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_quantile_from_any_buckets_raises_only_exposition_error(
    series: dict[tuple[tuple[str, str], ...], float], q: float
) -> None:
    try:
        result = histogram_quantile(q, buckets_by_le(series))
    except ExpositionError:
        return
    assert isinstance(result, float)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_counter_increase_is_never_negative(previous: float, current: float) -> None:
    result = counter_increase(previous, current)
    assert math.isnan(result) or result >= 0


@given(
    st.dictionaries(st.sampled_from("abcd"), st.floats(0, 1e12), max_size=4),
    st.dictionaries(st.sampled_from("abcd"), st.floats(0, 1e12), max_size=4),
)
def test_increases_only_for_series_in_both(
    before: dict[str, float], after: dict[str, float]
) -> None:
    keyed_before: dict[LabelSet, float] = {(("s", k),): v for k, v in before.items()}
    keyed_after: dict[LabelSet, float] = {(("s", k),): v for k, v in after.items()}
    result = increases(keyed_before, keyed_after)
    assert set(result) == set(keyed_before) & set(keyed_after)
    assert all(v >= 0 for v in result.values())
