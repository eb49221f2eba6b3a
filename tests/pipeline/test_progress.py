"""Progress (pipeline/progress.py): a tqdm bar on a terminal; in a log file whole lines, every 5%,
at least every few minutes, and at the end, never a carriage return."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios

from tqdm import tqdm

from pipeline import logs
from pipeline.progress import LogProgress, progress
from tests.support.paths import REPO

# 200 items through progress(), as a command would show them
SCRIPT = (
    "from pipeline import logs; from pipeline.progress import progress; logs.configure(); "
    "[None for _ in progress(range(200), desc='work', unit='item')]"
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_in_a_log_file_progress_is_whole_lines_every_five_percent_and_at_the_end():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, cwd=REPO, check=True)
    text = (done.stdout + done.stderr).decode()
    assert "\r" not in text
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 20  # 5%, 10%, ... 100%; the end adds nothing the 100% line did not say
    assert [line.split(" (")[0] for line in lines[:2]] == ["work: 10/200", "work: 20/200"]
    assert lines[-1].startswith("work: 200/200 (100%), ") and " item/s, " in lines[-1] and " elapsed" in lines[-1]
    assert done.stderr == b""


def test_on_a_terminal_progress_is_tqdms_bar():
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 wide
    try:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=terminal, stderr=terminal, cwd=REPO)
        os.close(terminal)
        seen = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            try:
                chunk = os.read(controller, 4096) if ready else b""
            except OSError:  # the terminal closes when the process ends
                chunk = b""
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(controller)
    assert b"\r" in seen and b"200/200" in seen and b"item/s" in seen  # tqdm redrawing its one line
    assert b"work: 10/200 (5%)" not in seen  # and no log lines


def test_the_choice_follows_stderr_and_no_progress_shows_nothing(capsys):
    assert isinstance(progress(range(3), terminal=True), tqdm)
    assert isinstance(progress(range(3), terminal=False), LogProgress)
    assert isinstance(progress(range(3)), LogProgress)  # pytest's captured stderr is no terminal
    capsys.readouterr()  # the bar drawn by the first
    logs.configure()
    assert list(progress(range(3), desc="quiet", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")


def test_lines_count_from_a_resumed_start_with_rate_time_left_and_postfix(caplog):
    clock = Clock()
    caplog.set_level("INFO", logger="pipeline.progress")
    bar = LogProgress(total=100, initial=40, desc="pretrain", unit="step", clock=clock)
    clock.now = 10.0
    bar.update(4)  # 44%: still in the 40% part
    assert caplog.messages == []
    bar.set_postfix({"loss": "0.693"})
    bar.update(1)  # 45%
    assert caplog.messages == ["pretrain: 45/100 (45%), 2 s/step, 0:10 elapsed, 1:50 left, loss=0.693"]
    clock.now = 20.0
    bar.update(55)
    bar.close()
    bar.close()  # the 100% line said it all: no end line, and never twice
    assert caplog.messages[1:] == ["pretrain: 100/100 (100%), 3 step/s, 0:20 elapsed, loss=0.693"]


def test_without_a_total_a_line_comes_every_few_minutes_and_at_the_end(caplog):
    clock = Clock()
    caplog.set_level("INFO", logger="pipeline.progress")
    bar = LogProgress(desc="embed", unit="batch", every_s=300, clock=clock)
    for _ in range(9):
        clock.now += 60
        bar.update(1)
    bar.close()
    assert caplog.messages == [
        "embed: 5 batch, 60 s/batch, 5:00 elapsed",
        "embed: 9 batch, 60 s/batch, 9:00 elapsed",
    ]


def test_a_loop_ended_early_still_says_where_it_stopped(caplog):
    caplog.set_level("INFO", logger="pipeline.progress")
    bar = LogProgress(range(1000), desc="test", unit="batch")
    for i, _ in enumerate(bar):
        if i == 30:
            break
    del bar  # the loop's generator is closed on leaving it: its ``finally`` reports
    assert caplog.messages[-1].startswith("test: 30/1000 (3%)")
