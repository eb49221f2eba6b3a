"""The loader on CPU, on both paths (the CPU path and the DALI graph): the planned frames come out,
deterministic, resumable, robust."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")

from jobs.shard.__main__ import main as shard_main  # noqa: E402
from pipeline.augment import AugmentConfig, batch_size_draw, sample_params  # noqa: E402
from pipeline.loader import VideoLoader  # noqa: E402
from pipeline.plans import rspnet_plan  # noqa: E402
from pipeline.shards import ShardIndex, resolve_shards  # noqa: E402
from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset  # noqa: E402
from pipeline.tar_writer import ShardTarWriter  # noqa: E402
from tests.support.media import psnr  # noqa: E402

RAW = AugmentConfig("none")
DECODERS = ["pyav", "dali"]  # the CPU path, and the DALI graph on DALI's CPU decoder


@pytest.fixture(scope="module")
def synthetic_shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kinetics")
    make_kinetics_dataset(root, SyntheticConfig(videos_per_class={"train": 2, "val": 0, "test": 0}, duration_s=3.0))
    out = tmp_path_factory.mktemp("shards")
    assert (
        shard_main(
            [
                "kinetics",
                "--root",
                str(root),
                "--out",
                str(out),
                "--splits",
                "train",
                "--videos-per-shard",
                "4",
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    return out / "train"


def reference_rgb(frame: av.VideoFrame) -> np.ndarray:
    """An independent YUV->RGB: PyAV's decoded planes, BT.601 limited range, centre-sited bilinear chroma."""
    h, w = frame.height, frame.width
    planes = frame.to_ndarray(format="yuv420p").astype(np.float64)
    y = planes[:h]
    u = planes[h : h + h // 4].reshape(h // 2, w // 2)
    v = planes[h + h // 4 :].reshape(h // 2, w // 2)

    def up(c, axis):
        prev, nxt = np.roll(c, 1, axis), np.roll(c, -1, axis)
        first, last = [slice(None)] * 2, [slice(None)] * 2
        first[axis], last[axis] = 0, -1
        prev[tuple(first)], nxt[tuple(last)] = c[tuple(first)], c[tuple(last)]
        return np.stack([0.75 * c + 0.25 * prev, 0.75 * c + 0.25 * nxt], axis + 1).reshape(
            [n * 2 if i == axis else n for i, n in enumerate(c.shape)]
        )

    u, v = up(up(u, 0), 1) - 128, up(up(v, 0), 1) - 128
    y = (y - 16) * 255 / 219
    u, v = u * 255 / 224, v * 255 / 224
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
    return np.clip(np.round(rgb), 0, 255)


class DecodedReference:
    """A sample decoded by PyAV; frames converted to RGB on first use (conversion is the slow part)."""

    def __init__(self, index: ShardIndex, key: str):
        pos = next(i for i, s in enumerate(index.samples) if s.key == key)
        with av.open(io.BytesIO(index.read(pos)[1])) as c:
            self.frames = list(c.decode(video=0))
        self._rgb: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self._rgb:
            self._rgb[i] = reference_rgb(self.frames[i])
        return self._rgb[i]


@pytest.mark.parametrize("plan", ["speednet", "rspnet", "eval"])
@pytest.mark.parametrize("shards", ["synthetic_shards", "real_shards"])
@pytest.mark.parametrize("decoder", DECODERS)
def test_clips_hold_exactly_the_planned_frames(plan, shards, request, decoder):
    """Every returned frame equals the independent decoder's frame at the planned index (up to
    rounding of the colour conversion), and no other frame of the video fits it better."""
    split = request.getfixturevalue(shards)
    loader = VideoLoader(
        split, plan=plan, batch_size=2, device="cpu", decoder=decoder, augment=RAW, normalise_pixels=False
    )
    batch = next(iter(loader))
    video = batch.video
    # uint8 clips (T, H, W, C): one tensor when all samples share a size, else one per sample
    clips = [clip for sample in video for clip in sample] if isinstance(video, list) else list(video)
    per_sample = {}
    for c, key in enumerate(batch.keys):
        ref = per_sample.setdefault(key, DecodedReference(loader.index, key))
        got = clips[c].numpy().astype(np.float64)
        for frame, planned in zip(got, batch.indices[c].tolist()):
            err = np.abs(frame - ref[planned]).max()
            assert err <= 2, (key, planned, err)  # colour conversion rounding only
            near = range(max(0, planned - 2), min(len(ref), planned + 3))  # off-by-one is the risk
            errors = {i: np.abs(ref[i] - frame).mean() for i in near}
            assert errors[planned] == min(errors.values()), (key, planned, errors)


def test_batches_have_the_papers_shapes(synthetic_shards):
    batch = next(iter(VideoLoader(synthetic_shards, plan="speednet", batch_size=4, device="cpu")))
    video = batch.video
    n, c, t, h, w = video.shape
    assert (n, c, t) == (8, 3, 16) and h == w and 64 <= h <= 336 and video.dtype == torch.float32
    assert batch.role == ["normal", "sped_up"] * 4  # both versions of every clip, same batch
    assert all(1 <= s <= 1.2 for s in batch.speed[0::2]) and all(1.7 <= s <= 2.2 for s in batch.speed[1::2])
    batch = next(iter(VideoLoader(synthetic_shards, plan="rspnet", batch_size=4, device="cpu")))
    video = batch.video
    assert video.shape == (12, 3, 16, 112, 112)
    assert batch.role[:3] == ["anchor", "positive", "negative"] and batch.indices.shape == (12, 16)
    batch = next(iter(VideoLoader(synthetic_shards, plan="eval", batch_size=2, device="cpu")))
    video = batch.video
    assert video.shape == (20, 3, 16, 112, 112) and batch.keys[0] == batch.keys[9] != batch.keys[10]


def _epoch(loader, limit=None):
    out = []
    for i, batch in enumerate(loader):
        out.append((batch.video.clone(), batch.keys, batch.indices.clone(), loader.state_dict()))
        if limit is not None and i + 1 == limit:
            break
    return out


@pytest.mark.parametrize("decoder", DECODERS)
def test_same_seed_same_batches_other_seed_other_batches(synthetic_shards, decoder):
    a = _epoch(VideoLoader(synthetic_shards, plan="rspnet", batch_size=3, device="cpu", decoder=decoder, seed=7))
    b = _epoch(VideoLoader(synthetic_shards, plan="rspnet", batch_size=3, device="cpu", decoder=decoder, seed=7))
    c = _epoch(VideoLoader(synthetic_shards, plan="rspnet", batch_size=3, device="cpu", decoder=decoder, seed=8))
    assert len(a) == len(b) == 4
    for (va, ka, ia, _), (vb, kb, ib, _) in zip(a, b):
        assert ka == kb and torch.equal(ia, ib) and torch.equal(va, vb)
    assert [k for _, k, _, _ in a] != [k for _, k, _, _ in c]


@pytest.mark.parametrize("decoder", DECODERS)
def test_resumed_loader_continues_where_it_stopped(synthetic_shards, decoder):
    full = VideoLoader(synthetic_shards, plan="speednet", batch_size=3, device="cpu", decoder=decoder, seed=1)
    first_epoch, second_epoch = _epoch(full), _epoch(full)
    stopped = VideoLoader(synthetic_shards, plan="speednet", batch_size=3, device="cpu", decoder=decoder, seed=1)
    head = _epoch(stopped, limit=2)
    state = stopped.state_dict()
    assert state == {"epoch": 0, "step": 2, "seed": 1}
    resumed = VideoLoader(synthetic_shards, plan="speednet", batch_size=3, device="cpu", decoder=decoder, **state)
    tail = _epoch(resumed)
    for (va, ka, ia, _), (vb, kb, ib, _) in zip(first_epoch, head + tail):
        assert ka == kb and torch.equal(ia, ib) and torch.equal(va, vb)
    assert resumed.state_dict() == {"epoch": 1, "step": 0, "seed": 1}
    assert [k for _, k, _, _ in second_epoch] != [k for _, k, _, _ in first_epoch]  # reshuffled per epoch


def _draws(shards, plan: str, augment: AugmentConfig, epochs: int = 1, **kw) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(indices, video) of every step of one sample read again and again: all differences between
    steps are then the loader's random draws, not its data."""
    loader = VideoLoader(
        shards,
        plan=plan,
        plan_options={"T": 8, "n": 2} if plan == "eval" else {"T": 8},
        augment=augment,
        batch_size=1,
        device="cpu",
        samples=[0, 0, 0],
        **kw,
    )
    return [(batch.indices, batch.video.clone()) for _ in range(epochs) for batch in loader]


@pytest.mark.parametrize("decoder", DECODERS)
def test_draws_differ_across_steps_epochs_and_ranks(synthetic_shards, decoder):
    """The same seed repeats a run, but no two steps, epochs or ranks share their plans or their
    augmentation: each step's generator is seeded by all of (seed, epoch, rank, step)."""
    augment = AugmentConfig("rspnet", base=40, out=32)
    plans = _draws(synthetic_shards, "rspnet", augment, epochs=2, decoder=decoder) + _draws(
        synthetic_shards, "rspnet", augment, rank=1, world=2, decoder=decoder
    )
    # the eval plan is deterministic: equal frames, so any difference is the augmentation's
    crops = _draws(synthetic_shards, "eval", augment, epochs=2, decoder=decoder) + _draws(
        synthetic_shards, "eval", augment, rank=1, world=2, decoder=decoder
    )
    assert len(plans) == len(crops) == 9  # 3 steps of epoch 0, 3 of epoch 1, 3 of rank 1's epoch 0
    assert all(torch.equal(crops[0][0], ix) for ix, _ in crops)
    for i in range(9):
        for j in range(i):
            assert not torch.equal(plans[i][0], plans[j][0]), f"steps {j} and {i} drew the same clips"
            assert not torch.equal(crops[i][1], crops[j][1]), f"steps {j} and {i} drew the same augmentation"
    again = _draws(synthetic_shards, "rspnet", augment, epochs=2, decoder=decoder)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(again, plans))


@pytest.mark.parametrize("decoder", DECODERS)
def test_ranks_read_disjoint_equal_parts(synthetic_shards, decoder):
    keys = [
        set(
            k
            for _, ks, _, _ in _epoch(
                VideoLoader(synthetic_shards, plan="eval", batch_size=2, device="cpu", decoder=decoder, rank=r, world=2)
            )
            for k in ks
        )
        for r in range(2)
    ]
    assert not keys[0] & keys[1] and len(keys[0]) == len(keys[1]) == 6


@pytest.mark.parametrize("decoder", DECODERS)
def test_undecodable_sample_is_dropped_and_counted(synthetic_shards, tmp_path, decoder):
    for p in synthetic_shards.glob("*-00000[01].*"):
        shutil.copy(p, tmp_path)
    index = ShardIndex(resolve_shards(tmp_path))
    meta, _ = index.read(0)
    broken = json.dumps({**meta.to_json_dict(), "key": "broken"}).encode()
    with ShardTarWriter(tmp_path / "train-000002.tar") as w:
        w.add("broken", {"mp4": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40, "json": broken})
        w.commit()
    loader = VideoLoader(tmp_path, plan="rspnet", batch_size=3, device="cpu", decoder=decoder, seed=0)
    seen = {k for _, ks, _, _ in _epoch(loader) for k in ks}
    assert [d["key"] for d in loader.dropped] == ["broken"] and "undecodable" in loader.dropped[0]["reason"]
    assert len(seen) == 8 and "broken" not in seen  # its batch is rerun without it; the epoch goes on


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("decoder", DECODERS)
def test_dropped_samples_are_counted_once_and_batches_keep_their_size(synthetic_shards, tmp_path, seed, decoder):
    """DALI prepares batches ahead; a rerun after an undecodable sample prepares them again."""
    for p in synthetic_shards.glob("*-00000[01].*"):
        shutil.copy(p, tmp_path)
    index = ShardIndex(resolve_shards(tmp_path))
    meta, video = index.read(0)
    with ShardTarWriter(tmp_path / "train-000002.tar") as w:
        for key, data, frames in (
            ("broken", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40, meta.frames),
            ("short", video, 20),
        ):  # 20 frames: fewer than the plan's 32
            record = json.dumps({**meta.to_json_dict(), "key": key, "frames": frames}).encode()
            w.add(key, {"mp4": data, "json": record})
        w.commit()
    loader = VideoLoader(
        tmp_path, plan="rspnet", plan_options={"short": "skip"}, batch_size=2, device="cpu", decoder=decoder, seed=seed
    )
    batches = _epoch(loader)
    seen = {k for _, ks, _, _ in batches for k in ks}
    assert sorted(d["key"] for d in loader.dropped) == ["broken", "short"]
    assert len(seen) == 8 and not seen & {"broken", "short"}
    # training batches are topped up with new clips of their other samples: every rank keeps its
    # batch size and its step count, so none waits on another at a collective
    assert len(batches) == loader.steps_per_epoch and all(len(ks) == 2 * 3 for _, ks, _, _ in batches)
    for rank in (0, 1):
        ranked = VideoLoader(
            tmp_path,
            plan="rspnet",
            plan_options={"short": "skip"},
            batch_size=2,
            device="cpu",
            seed=seed,
            rank=rank,
            world=2,
            decoder=decoder,
        )
        assert [len(ks) for _, ks, _, _ in _epoch(ranked)] == [6] * ranked.steps_per_epoch


@pytest.mark.parametrize("decoder", DECODERS)
def test_too_short_videos_follow_the_stated_policy(synthetic_shards, decoder):
    frames = ShardIndex(resolve_shards(synthetic_shards)).read(0)[0].frames  # 75
    skip = VideoLoader(
        synthetic_shards,
        plan="rspnet",
        plan_options={"T": 48, "short": "skip"},
        batch_size=2,
        device="cpu",
        augment=RAW,
        normalise_pixels=False,
    )
    assert _epoch(skip) == [] and len(skip.dropped) == 12 and "too short" in skip.dropped[0]["reason"]
    pad = VideoLoader(
        synthetic_shards, plan="rspnet", plan_options={"T": 48}, batch_size=2, device="cpu", decoder=decoder
    )
    batch = next(iter(pad))
    assert batch.indices.max() == frames - 1  # padded with the last frame, never past it


def test_positive_and_negative_share_every_spatial_and_colour_parameter():
    """c_k is cut from c_j's augmented clip in the released code: same crop, flip, jitter, grayscale
    and blur; the anchor c_i draws its own."""
    rng = np.random.default_rng(0)
    cfg = AugmentConfig("rspnet", jitter_p=0.8, blur_p=0.5)  # draws that can differ in every field
    anchor_differs = 0
    for _ in range(20):
        clips = rspnet_plan(100, rng)
        p = sample_params(cfg, 240, 320, clips, 112, rng)
        fields = [
            p.matrix.reshape(3, 16, 6),
            p.hsv.reshape(3, 16, 3),
            p.contrast.reshape(3, 16),
            p.sigma.reshape(3, 16),
        ]
        for field in fields:
            assert np.array_equal(field[1], field[2])
        anchor_differs += all(not np.array_equal(field[0], field[1]) for field in fields[:3])
    assert anchor_differs >= 15


@pytest.mark.parametrize("decoder", DECODERS)
def test_positive_and_negative_pixels_agree_where_they_show_the_same_frame(synthetic_shards, decoder):
    """Through either path: c_j (1x) and c_k (2x) start at the same frame (``shared_start``), so
    under shared augmentation their first frames are the same pixels; c_i's are not."""
    loader = VideoLoader(
        synthetic_shards,
        plan="rspnet",
        plan_options={"T": 4, "shared_start": True},
        batch_size=2,
        device="cpu",
        decoder=decoder,
        normalise_pixels=False,
        augment=AugmentConfig("rspnet", base=64, out=48, jitter_p=0.8, blur_p=0.5),
    )
    batch = next(iter(loader))
    video = batch.video.reshape(2, 3, *batch.video.shape[1:])
    indices = batch.indices.reshape(2, 3, -1)
    for clips, frames in zip(video, indices):
        assert frames[1, 0] == frames[2, 0]
        assert torch.equal(clips[1, 0], clips[2, 0])
        assert not torch.equal(clips[0, 0], clips[1, 0])


def test_folding_the_resize_into_the_crop_gives_the_same_geometry(synthetic_shards):
    """Without antialiasing the crop is cut from the stored frame: the same picture, less filtered."""
    smooth = VideoLoader(synthetic_shards, plan="eval", batch_size=2, device="cpu", augment=AugmentConfig("eval"))
    sharp = VideoLoader(
        synthetic_shards, plan="eval", batch_size=2, device="cpu", augment=AugmentConfig("eval", antialias=False)
    )
    a = next(iter(smooth)).video
    b = next(iter(sharp)).video
    assert a.shape == b.shape
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] > 0.97  # aligned, not shifted


def test_preview_writes_contact_sheets_and_frames(synthetic_shards, tmp_path):
    from PIL import Image

    from pipeline.preview import main as preview

    assert (
        preview(
            [
                str(synthetic_shards),
                "--plan",
                "speednet",
                "--batches",
                "2",
                "--batch-size",
                "2",
                "--out",
                str(tmp_path),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    sheets = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in sheets] == ["speednet-batch000.png", "speednet-batch001.png"]
    assert Image.open(sheets[0]).size[1] >= 4 * 96  # one row per clip: 2 videos x 2 versions
    saved = np.load(tmp_path / "speednet-batch000.npz")
    assert saved["frames"].dtype == np.uint8 and saved["frames"].shape[:2] == (4, 16)
    assert list(saved["role"]) == ["normal", "sped_up"] * 2 and saved["indices"].shape == (4, 16)

    raw = tmp_path / "raw"
    assert (
        preview(
            [
                str(synthetic_shards),
                "--plan",
                "eval",
                "--batches",
                "1",
                "--batch-size",
                "1",
                "--out",
                str(raw),
                "--no-augment",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    saved = np.load(raw / "eval-batch000.npz")
    index = ShardIndex(resolve_shards(synthetic_shards))
    meta = next(index.read(i)[0] for i in range(len(index)) if index.samples[i].key == saved["keys"][0])
    assert saved["frames"].shape == (10, 16, meta.height, meta.width, 3)  # stored size, untouched


def test_preview_bad_input_is_one_line_error(tmp_path, capsys):
    from pipeline.preview import main as preview

    assert preview([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no shards found" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shards", ["synthetic_shards", "real_shards"])
def test_gpu_nvdec_path_matches_cpu_path(shards, request):
    """The same graph with NVDEC decoding: at least 40 dB PSNR against DALI's CPU decoder, same plans."""
    split = request.getfixturevalue(shards)
    options = {"plan": "rspnet", "batch_size": 2, "augment": RAW, "normalise_pixels": False, "decoder": "dali"}
    cpu = VideoLoader(split, device="cpu", **options)
    gpu = VideoLoader(split, device="gpu", **options)
    for ba, bb in zip(cpu, gpu):
        assert ba.keys == bb.keys and torch.equal(ba.indices, bb.indices)
        a, b = ba.video, bb.video
        a = torch.cat([x.flatten() for x in a]) if isinstance(a, list) else a.flatten()
        b = torch.cat([x.flatten() for x in b]).cpu() if isinstance(b, list) else b.flatten().cpu()
        mse = ((a.double() - b.double()) ** 2).mean()
        assert 10 * torch.log10(255**2 / mse) >= 40


def test_a_graph_error_is_raised_not_blamed_on_the_data(synthetic_shards, monkeypatch):
    """Every sample decodes elsewhere, so a DALI failure is a bug to surface, not samples to drop."""
    import pipeline.augment as augment

    broken = augment.sample_params

    def wrong_matrix_shape(*args, **kwargs):
        params = broken(*args, **kwargs)
        params.matrix = params.matrix.reshape(-1, 6)  # what DALI's warp_affine refuses
        return params

    monkeypatch.setattr("pipeline.batches.sample_params", wrong_matrix_shape)
    loader = VideoLoader(synthetic_shards, plan="rspnet", batch_size=2, device="cpu", decoder="dali")
    with pytest.raises(RuntimeError, match="warp_affine"):
        next(iter(loader))
    assert loader.dropped == []


def test_an_augmentation_error_on_the_cpu_path_is_raised_not_blamed_on_the_data(synthetic_shards, monkeypatch):
    """Only the decoder's errors mark a sample bad; any other failure is a bug and surfaces."""

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the augmentation")

    monkeypatch.setattr("pipeline.cpu_batches.augment_sample", broken)
    loader = VideoLoader(synthetic_shards, plan="rspnet", batch_size=2, device="cpu", decoder="pyav", samples=[0, 1])
    with pytest.raises(ZeroDivisionError):
        next(iter(loader))
    assert loader.dropped == []


@pytest.mark.parametrize(
    "overrides,jitter_p,hue,blur_p",
    [({}, 1.0, 0.4, 0.0), ({"jitter": (0.4, 0.4, 0.4, 0.1), "jitter_p": 0.8, "blur_p": 0.5}, 0.8, 0.1, 0.5)],
    ids=["released", "aug_plus"],
)
def test_augmentation_draws_follow_the_recipe(overrides, jitter_p, hue, blur_p):
    """Over many draws, RSPNet's recipe gives its stated rates and ranges: the released default
    (crop area 0.4 to 1, aspect 3/4 to 4/3, flip 0.5, jitter always with hue 0.4, grayscale 0.2, no
    blur) and the released aug_plus (jitter 0.8 with hue 0.1, blur 0.5 at sigma 1.5); SpeedNet's one
    size per batch is uniform over [64, 336]."""
    cfg, rng = AugmentConfig("rspnet", **overrides), np.random.default_rng(0)
    h, w, n = 128, 170, 4000
    boxes, flips, jitter, gray, blur, hues, sigmas = [], 0, 0, 0, 0, [], set()
    for _ in range(n):
        clips = rspnet_plan(100, rng, T=1)
        p = sample_params(cfg, h, w, clips[:1], 112, rng)  # the anchor alone: one crop, one colour draw
        (sx, _, _), (_, sy, _) = p.matrix[0]
        boxes.append((abs(sx) * 112, sy * 112))  # the source box's width and height
        flips += sx < 0
        hue_shift, sat, val = p.hsv[0]
        jitter += val != 1.0
        hues.append(hue_shift)
        gray += sat == 0.0
        blur += p.sigma[0] > 0
        sigmas.add(float(p.sigma[0]))
    cw, ch = np.array(boxes).T
    area, aspect = cw * ch / (h * w), cw / ch
    assert area.min() >= 0.4 - 1e-6 and area.max() <= 1 + 1e-6
    assert np.quantile(area, 0.05) < 0.45 and np.quantile(area, 0.95) > 0.8  # the whole range, not one scale
    assert aspect.min() >= 3 / 4 - 1e-6 and aspect.max() <= 4 / 3 + 1e-6
    for count, p in ((flips, 0.5), (jitter, jitter_p), (gray, 0.2), (blur, blur_p)):
        assert abs(count / n - p) <= 4 * np.sqrt(p * (1 - p) / n), (count / n, p)  # within 4 standard errors
    assert max(np.abs(hues)) <= hue * 360 and max(np.abs(hues)) > 0.95 * hue * 360
    assert sigmas <= {0.0, 1.5}  # the released kernel's one sigma
    sides = [batch_size_draw(AugmentConfig("speednet"), rng) for _ in range(n)]
    assert min(sides) == 64 and max(sides) == 336 and np.mean(sides) == pytest.approx(200, abs=3)


def _one_clip(shards, decoder: str, **augment) -> torch.Tensor:
    """uint8 (T, H, W, C) of the first sample's one eval clip under an RSPNet-recipe augmentation."""
    loader = VideoLoader(
        shards,
        plan="eval",
        plan_options={"T": 4, "n": 1},
        batch_size=1,
        device="cpu",
        samples=[0],
        normalise_pixels=False,
        seed=3,
        decoder=decoder,
        augment=AugmentConfig(
            "rspnet", base=64, out=48, **{"jitter_p": 0.0, "gray_p": 0.0, "blur_p": 0.0, "flip_p": 0.0, **augment}
        ),
    )
    video = next(iter(loader)).video
    return video[0].double()


@pytest.mark.parametrize("decoder", DECODERS)
def test_the_graph_applies_the_drawn_flip_grayscale_and_blur(synthetic_shards, decoder):
    """Each drawn parameter reaches the pixels: the same draws (same seed) with the flip, grayscale or
    blur forced on give the mirror image, equal channels, or a smoother picture of the same clip."""
    plain = _one_clip(synthetic_shards, decoder)
    assert (plain[..., 0] - plain[..., 1]).abs().mean() > 5  # a colourful clip
    flipped = _one_clip(synthetic_shards, decoder, flip_p=1.0)
    assert psnr(flipped.flip(2).numpy(), plain.numpy()) > 35 > psnr(flipped.numpy(), plain.numpy())
    gray = _one_clip(synthetic_shards, decoder, gray_p=1.0)
    assert (gray[..., 0] - gray[..., 1]).abs().max() <= 1 and (gray[..., 1] - gray[..., 2]).abs().max() <= 1
    assert gray.mean() == pytest.approx(plain.mean(), abs=8)  # the same picture, without its colour
    blurred = _one_clip(synthetic_shards, decoder, blur_p=1.0)

    def roughness(x: torch.Tensor) -> float:
        return float((x[:, 1:] - x[:, :-1]).abs().mean() + (x[:, :, 1:] - x[:, :, :-1]).abs().mean())

    assert roughness(blurred) < 0.9 * roughness(plain)  # a 3x3 kernel smooths mildly
    assert psnr(blurred.numpy(), plain.numpy()) > 20  # smoothed, not moved
    # the released kernel: 3x3 taps of a sigma-1.5 Gaussian (inside the border), not DALI's wider default
    taps = np.exp(-(np.arange(-1, 2) ** 2) / (2 * 1.5**2))
    kernel = torch.tensor(np.outer(taps, taps) / np.outer(taps, taps).sum())
    T, H, W, C = plain.shape
    planes = plain.permute(0, 3, 1, 2).reshape(T * C, 1, H, W)
    by_hand = torch.nn.functional.conv2d(planes, kernel[None, None]).reshape(T, C, H - 2, W - 2).permute(0, 2, 3, 1)
    assert (blurred[:, 1:-1, 1:-1] - by_hand).abs().mean() < 1.0
    wide = _one_clip(synthetic_shards, decoder, blur_p=1.0, blur_kernel=0)[:, 1:-1, 1:-1]
    assert (wide - by_hand).abs().mean() > 2.0
