"""Fixtures of the SpeedNet application tests."""

from __future__ import annotations

import pytest

from tests.support.speed import motion_oracle


@pytest.fixture(scope="package")
def oracle_analysis(slow_motion_video, tmp_path_factory):
    """(the motion oracle, its analysis of the slow-motion video): a network with a known answer,
    analysed once for the tests that need it (11 rates of sliding windows are the slow part)."""
    from jobs.speed.analysis import analyse, normalised_video

    truth, work = slow_motion_video, tmp_path_factory.mktemp("oracle")
    oracle = motion_oracle(normalised_video(truth["path"], work / "calibrate"), truth["slow_start"])
    return oracle, analyse(oracle, truth["path"], work / "work", size=64)
