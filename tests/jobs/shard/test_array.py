"""The shard job's array path (jobs/shard/array.py) on submitit's local executor."""

from __future__ import annotations

from tests.support.shards import read_split


def test_array_tasks_write_the_same_shards_as_a_local_run(resumable, tmp_path):
    from jobs.shard import array
    from jobs.shard.run import JobSettings, finish_split, load_or_assign
    from jobs.shard.sources import read_kinetics
    from pipeline.normalise import EncodeSettings

    listing = read_kinetics(resumable["root"], ["train"])
    settings = JobSettings(encode=EncodeSettings(), videos_per_shard=2)
    assignment = load_or_assign(listing, "train", resumable["root"], tmp_path, settings, workers=1)
    jobs = array.submit(
        tmp_path, [assignment], cluster="local", tasks=3, workers=1, partition=None, time_min=10, mem_gb=None
    )
    assert len(jobs) == 3 and array.wait(jobs, poll_s=0.5) == []
    manifest = finish_split(tmp_path, assignment, listing.labels)
    ref_manifest, ref_samples = read_split(resumable["reference"] / "train")
    _, samples = read_split(tmp_path / "train")
    assert manifest["ok"] == ref_manifest["ok"] and samples.keys() == ref_samples.keys()
