"""A one-node SLURM on loopback for the ``slurm`` tests: started here when none is running.

Debian's ``slurm-wlm`` and ``munge`` (installed by ``.ci/run``, or here with apt-get when running as
root): a munge key, a slurm.conf naming this host with a ``debug`` partition, then munged, slurmctld
and slurmd, and a wait until the node is idle. ``ensure_cluster()`` returns None when SLURM is
ready, or the reason it cannot be, for ``pytest.skip``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by speedrep's tests/slurm_cluster.py"
BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "sinfo", "scontrol")


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def node_state() -> str | None:
    if shutil.which("sinfo") is None:
        return None
    try:
        out = _run("sinfo", "-h", "-o", "%T", timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return out.stdout.strip().splitlines()[0].rstrip("*") if out.returncode == 0 and out.stdout.strip() else None


def _install() -> str | None:
    if all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in BINARIES):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "slurm-wlm and munge are not installed, and apt-get cannot install them here (not root)"
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if cmd[1] == "install" and done.returncode == 0:
            return None
    return f"apt-get could not install slurm-wlm and munge: {done.stderr.strip().splitlines()[-1:]}"


def _write_conf() -> None:
    if CONF.exists() and MARK not in CONF.read_text():
        return  # a cluster's own configuration: never overwritten
    host = socket.gethostname()
    text = f"""{MARK}
ClusterName=speedrep-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurmctld.log
SlurmdLogFile=/var/log/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
    if CONF.exists() and CONF.read_text() == text:
        return  # a running cluster reads it: never rewrite it in place
    CONF.parent.mkdir(parents=True, exist_ok=True)
    tmp = CONF.with_name(f".{CONF.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, CONF)


def _start_munge() -> None:
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "munge", "munge")
    if _run("pgrep", "-x", "munged").returncode != 0:
        _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")


def ensure_cluster(timeout_s: float = 120) -> str | None:
    """Start SLURM if needed; None when its node is idle, else why not."""
    if node_state() in ("idle", "mixed", "allocated"):
        return None
    if os.environ.get("SPEEDREP_NO_SLURM_START"):
        return "no running SLURM, and SPEEDREP_NO_SLURM_START forbids starting one"
    if (reason := _install()) is not None:
        return reason
    if os.geteuid() != 0:
        return "no running SLURM, and starting one needs root"
    _write_conf()
    for folder in ("/var/spool/slurmctld", "/var/spool/slurmd"):
        Path(folder).mkdir(parents=True, exist_ok=True)
    _start_munge()
    for daemon in ("slurmctld", "slurmd"):
        if _run("pgrep", "-x", daemon).returncode != 0:
            _run(f"/usr/sbin/{daemon}")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = node_state()
        if state in ("idle", "mixed", "allocated"):
            return None
        if state and state.startswith(("down", "drain")):
            _run("scontrol", "update", f"nodename={socket.gethostname()}", "state=resume")
        time.sleep(1)
    return f"SLURM did not become ready in {timeout_s:.0f} s (node state {node_state()!r}; see /var/log/slurmctld.log)"
