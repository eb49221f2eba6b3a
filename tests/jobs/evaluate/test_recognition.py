"""jobs.evaluate.recognition: clip- and video-level accuracy of a classifier."""

from __future__ import annotations

import numpy as np

from jobs.evaluate.probe import topk_accuracy
from jobs.evaluate.recognition import video_level


def test_video_level_accuracy_equals_a_hand_count():
    # 3 videos x 2 clips, 3 classes. Video 0 (label 0): clips say 0 and 1, the mean favours 0: right.
    # Video 1 (label 1): both clips say 2, class 1 second: wrong at top-1, right at top-2.
    # Video 2 (label 2): clips say 1 (weakly) and 2 (strongly), the mean favours 2: right.
    p = np.array([[0.7, 0.3, 0.0], [0.4, 0.5, 0.1], [0.1, 0.2, 0.7], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3], [0.0, 0.1, 0.9]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    videos = np.array([5, 5, 6, 6, 9, 9])  # any ids, clips of a video adjacent
    means, first = video_level(p, videos)
    assert list(first) == [0, 2, 4]
    assert np.allclose(means, [[0.55, 0.4, 0.05], [0.15, 0.25, 0.6], [0.15, 0.25, 0.6]])
    assert topk_accuracy(means, labels[first], ks=(1, 2)) == {"top1": 2 / 3, "top2": 1.0}
    # clip level, each clip alone: only clips 0 and 5 rank their label first
    assert topk_accuracy(p, labels, ks=(1,))["top1"] == 2 / 6
