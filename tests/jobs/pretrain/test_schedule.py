"""The learning-rate schedule (jobs/pretrain/schedule.py): warm-up, then decay, within bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.pretrain.schedule import lr_at, scaled_lr


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 5000), warmup=st.integers(0, 500), peak=st.floats(1e-4, 10.0))
def test_schedule_warms_up_then_decays_within_bounds(total, warmup, peak):
    lrs = (
        [lr_at(s, total, peak, warmup) for s in range(total)]
        if total <= 600
        else [lr_at(s, total, peak, warmup) for s in sorted({0, total - 1, *range(0, total, max(1, total // 300))})]
    )
    assert all(0 < lr <= peak * (1 + 1e-12) for lr in lrs)
    if total <= 600:
        w = min(warmup, total)
        assert all(a < b for a, b in zip(lrs[:w], lrs[1:w]))  # strictly rising during warmup
        assert all(a >= b - 1e-15 for a, b in zip(lrs[w:], lrs[w + 1 :]))  # then never rising
        if warmup < total:
            assert lrs[warmup] == pytest.approx(peak)


def test_schedule_values():
    assert lr_at(0, 100, 1.0) == 1.0
    assert lr_at(50, 100, 1.0) == pytest.approx(0.5)
    assert lr_at(4, 100, 1.0, warmup=10) == pytest.approx(0.5)
    assert lr_at(10, 110, 1.0, warmup=10) == 1.0
    assert scaled_lr(0.1, 256, 64) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        lr_at(100, 100, 1.0)


def test_milestones_step_the_rate_down_as_multistep_lr():
    # RSPNet's released HMDB51 C3D config: lr x 0.1 at epochs 50, 70 and 90 (here 1 step per epoch)
    lrs = [lr_at(s, 100, 1.0, milestones=(50, 70, 90)) for s in range(100)]
    assert lrs[:50] == [1.0] * 50 and lrs[50:70] == pytest.approx([0.1] * 20)
    assert lrs[70:90] == pytest.approx([0.01] * 20) and lrs[90:] == pytest.approx([0.001] * 10)
    assert lr_at(3, 10, 1.0, warmup=5, milestones=(2,)) == pytest.approx(0.8)  # warmup first
