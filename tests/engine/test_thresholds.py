"""ThresholdJudge: bands, `for` (pending countdown, firing, recovery), hysteresis, escalation."""

from __future__ import annotations

from typing import Any

from opstui.config.models import Thresholds
from opstui.engine.thresholds import ThresholdJudge
from opstui.states import Severity


def judge(**spec: Any) -> ThresholdJudge:
    return ThresholdJudge(Thresholds.model_validate(spec))


def test_no_breach_is_ok() -> None:
    j = judge(above={"warn": 100, "crit": 200})
    result = j.observe(50, 0.0)
    assert result.fired is Severity.OK and result.pending is None and result.fires_at is None


def test_immediate_without_for() -> None:
    j = judge(above={"warn": 100, "crit": 200})
    assert j.observe(150, 0.0).fired is Severity.WARN
    assert j.observe(250, 1.0).fired is Severity.CRIT
    assert j.observe(100, 2.0).fired is Severity.WARN  # leaves crit, still not below 100
    assert j.observe(99, 3.0).fired is Severity.OK


def test_for_pending_countdown_then_fires() -> None:
    j = judge(above={"warn": 100}, **{"for": "1m"})
    first = j.observe(150, 10.0)
    assert first.fired is Severity.OK
    assert first.pending is Severity.WARN
    assert first.fires_at == 70.0
    assert j.observe(160, 40.0).fires_at == 70.0  # measured from the first breaching reading
    assert j.judge(69.9).pending is Severity.WARN
    fired = j.judge(70.0)
    assert fired.fired is Severity.WARN and fired.pending is None


def test_recovery_before_firing_resets_the_timer() -> None:
    j = judge(above={"warn": 100}, **{"for": 60})
    j.observe(150, 0.0)
    assert j.observe(50, 30.0).pending is None
    again = j.observe(150, 40.0)
    assert again.pending is Severity.WARN and again.fires_at == 100.0
    assert j.judge(61.0).fired is Severity.OK


def test_crossing_both_limits_at_once_pends_as_crit() -> None:
    j = judge(above={"warn": 100, "crit": 200}, **{"for": 60})
    result = j.observe(500, 0.0)
    assert result.pending is Severity.CRIT and result.fires_at == 60.0
    assert j.judge(60.0).fired is Severity.CRIT


def test_escalation_and_de_escalation_each_have_their_own_timer() -> None:
    j = judge(above={"warn": 100, "crit": 200}, **{"for": 10})
    j.observe(150, 0.0)
    assert j.judge(10.0).fired is Severity.WARN
    escalating = j.observe(250, 12.0)
    assert escalating.fired is Severity.WARN
    assert escalating.pending is Severity.CRIT and escalating.fires_at == 22.0
    assert j.judge(22.0).fired is Severity.CRIT
    # De-escalation is immediate for crit; warn stays fired (its breach never ended).
    assert j.observe(150, 23.0).fired is Severity.WARN
    assert j.observe(50, 24.0).fired is Severity.OK


def test_hysteresis_above() -> None:
    j = judge(above={"warn": 100}, hysteresis=0.1)
    assert j.observe(100, 0).fired is Severity.OK  # enter only when strictly above
    assert j.observe(101, 1).fired is Severity.WARN
    assert j.observe(95, 2).fired is Severity.WARN  # inside the margin: still breached
    assert j.observe(90, 3).fired is Severity.WARN  # not below 90 yet
    assert j.observe(89.9, 4).fired is Severity.OK
    assert j.observe(95, 5).fired is Severity.OK  # re-entry needs > 100 again


def test_hysteresis_below() -> None:
    j = judge(below={"warn": 10, "crit": 5}, hysteresis=0.2)
    assert j.observe(9, 0).fired is Severity.WARN
    assert j.observe(4, 1).fired is Severity.CRIT
    assert j.observe(5.5, 2).fired is Severity.CRIT  # crit leaves only above 6
    assert j.observe(6.5, 3).fired is Severity.WARN
    assert j.observe(11, 4).fired is Severity.WARN  # warn leaves only above 12
    assert j.observe(12.5, 5).fired is Severity.OK


def test_hysteresis_with_a_negative_limit_points_the_safe_way() -> None:
    j = judge(below={"warn": -10}, hysteresis=0.1)
    assert j.observe(-11, 0).fired is Severity.WARN
    assert j.observe(-9.5, 1).fired is Severity.WARN  # must rise above -9 to recover
    assert j.observe(-8.9, 2).fired is Severity.OK


def test_describe_names_the_field_and_limit() -> None:
    j = judge(field="depth", above={"warn": 5000, "crit": 10000}, **{"for": "2m"})
    assert j.describe() is None
    j.observe(7200, 0)
    assert j.describe() == "depth 7200 > 5000 for 2m"
    j.observe(12000, 1)
    assert j.describe() == "depth 12000 > 10000 for 2m"
    j.observe(10, 2)
    assert j.describe() is None


def test_reset_forgets_breaches() -> None:
    j = judge(above={"warn": 1}, **{"for": 5})
    j.observe(2, 0)
    j.reset()
    assert j.judge(100).fired is Severity.OK
