"""The speediness command (jobs/speed/speediness.py), and what the speediness and speedup commands refuse."""

from __future__ import annotations

import json

import pytest


def test_speediness_command_writes_curves_plot_and_summary(
    slow_motion_video, tiny_speednet_checkpoint, tmp_path, capsys
):
    from jobs.speed.speediness import main

    out = tmp_path / "sp"
    assert (
        main(
            [
                truth := slow_motion_video["path"],
                "--checkpoint",
                str(tiny_speednet_checkpoint),
                "--size",
                "64",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 200 and len(summary["rates"]) == 11 and truth == summary["video"]
    rows = (out / "curves.csv").read_text().splitlines()
    assert len(rows) == 201 and len(rows[0].split(",")) == 2 + 11 + 2
    assert (out / "speediness.png").stat().st_size > 10_000


def test_commands_refuse_bad_input(tiny_checkpoint, tiny_speednet_checkpoint, tmp_path, capsys):
    from jobs.speed.speediness import main as speediness_main
    from jobs.speed.speedup import main as speedup_main

    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert speediness_main([str(bad), "--checkpoint", str(tiny_speednet_checkpoint)]) == 2
    assert "not a readable video" in capsys.readouterr().err
    assert speediness_main([str(bad), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "needs a SpeedNet checkpoint" in capsys.readouterr().err
    assert (
        speedup_main(
            [str(bad), "--checkpoint", str(tiny_speednet_checkpoint), "--rate", "0.5", "-o", str(tmp_path / "x.mp4")]
        )
        == 2
    )
    assert "--rate must be at least 1" in capsys.readouterr().err
    assert speediness_main([str(bad), "--checkpoint", str(bad)]) == 2  # not a checkpoint at all
    assert "is not a checkpoint written by jobs.pretrain" in capsys.readouterr().err
    assert speediness_main([str(bad), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    for args in (["--size", "0"], ["--alpha", "-1", "-o", str(tmp_path / "x.mp4")]):  # refused before any work
        with pytest.raises(SystemExit) as exit:
            (speedup_main if "--alpha" in args else speediness_main)([str(bad), "--checkpoint", str(bad), *args])
        assert exit.value.code == 2
