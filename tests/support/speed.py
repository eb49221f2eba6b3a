"""Shared parts of the SpeedNet application tests (tests/jobs/speed): random speed-up vectors, the
re-timing rule worked out in exact fractions, and a stand-in SpeedNet with a known answer."""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

speedups = st.lists(st.integers(0, 10), min_size=1, max_size=40).map(lambda e: 1.25 ** np.array(e, float))


def assert_follows_integral(source, S, rate=None):
    """``source`` is the re-timing rule worked out in exact fractions: input frame t lasts u_t = 1 / S_t
    (as frame_sources computes it in floats) of output time, all scaled to last D = L / rate (or sum u to 1/1000), so it
    starts at U_t = D * sum_{s<t} u_s / sum u; output frame k of N = round(D) shows the frame whose
    [U_t, U_t+1) holds k D / N. The next frame is accepted only where it starts within rounding after."""
    u = [Fraction(1.0 / float(s)) for s in S]
    D = (
        Fraction(len(u)) / Fraction(rate).limit_denominator(1000)
        if rate is not None
        else Fraction(float(np.sum(1.0 / np.asarray(S, float)))).limit_denominator(1000)
    )
    U, total = [Fraction(0)], sum(u)
    for x in u[:-1]:
        U.append(U[-1] + x)
    U = [x * D / total for x in U] + [D]
    N = max(1, round(D))
    assert len(source) == N
    for k, t in enumerate(source):
        p = k * D / N
        e = bisect_right(U, p) - 1
        assert t == e or (t == e + 1 and U[t] - p <= D / 10**9), f"output frame {k} shows {t}, the integral says {e}"


def motion_oracle(tars, slow_start):
    """A stand-in SpeedNet with a known answer: P(sped up) rises with frame-to-frame change, with the
    threshold halfway (geometrically) between this pan at 1x and at 2x, measured on its normal part."""
    from pipeline.augment import AugmentConfig
    from pipeline.loader import VideoLoader

    def motion(video):
        return (video[:, :, 1:] - video[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))

    def level(rate):
        loader = VideoLoader(
            tars,
            plan="sliding",
            plan_options={"T": 16, "stride": 4, "rate": rate},
            augment=AugmentConfig("eval", out=64),
            batch_size=1,
            device="cpu",
            shuffle=False,
        )
        (batch,) = list(loader)  # the loader yields pipeline.batches.Batch
        video = batch.video
        normal = batch.indices[:, -1] < slow_start
        return float(motion(video)[normal].median())

    threshold = (level(1.0) * level(2.0)) ** 0.5
    return lambda video: 20 * (motion(video) / threshold - 1)
