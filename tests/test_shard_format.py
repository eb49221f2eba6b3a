"""The shard contract's pure parts: keys, the DALI index text, shard assignment, output sizing."""

from collections import Counter
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from jobs.shard.plan import assign_shards, videos_per_shard_for
from jobs.shard.transcode import output_size
from pipeline.shard_format import KEY_PATTERN, MAX_KEY, dali_index_text, make_key

names = st.text(min_size=1, max_size=200)


@given(names)
def test_make_key_is_always_a_valid_key(name):
    assert KEY_PATTERN.match(make_key(name))
    assert "." not in make_key(name)
    assert len(make_key(name)) <= MAX_KEY  # <key>.json fits a tar member name


@given(st.from_regex(KEY_PATTERN, fullmatch=True).filter(lambda k: len(k) <= MAX_KEY))
def test_valid_keys_are_kept_unchanged(name):
    assert make_key(name) == name


@given(names, names)
def test_distinct_names_get_distinct_keys(a, b):
    if a != b:
        assert make_key(a) != make_key(b)


def test_kinetics_and_hmdb_names():
    assert make_key("-abc_DEF-12_000010_000020") == "-abc_DEF-12_000010_000020"
    key = make_key("Glory_(1989)_Die_Welle.avi_climb_f_cm_np1_ba_goo_0")
    assert KEY_PATTERN.match(key) and key.startswith("Glory_1989_Die_Welle_avi_climb")


def test_dali_index_text_format():
    text = dali_index_text([[("mp4", 512, 10, "a.mp4"), ("json", 1536, 3, "a.json")]])
    assert text == "v1.2 1\nmp4 512 10 a.mp4 json 1536 3 a.json\n"


@given(st.lists(st.text("abcdefgh", min_size=1, max_size=6), unique=True, max_size=200),
       st.integers(1, 30), st.integers(0, 2**32))
def test_assign_shards_is_a_seeded_partition(keys, per_shard, seed):
    shards = assign_shards(keys, per_shard, seed)
    flat = [k for s in shards for k in s]
    assert Counter(flat) == Counter(keys)  # every key exactly once
    assert all(len(s) == per_shard for s in shards[:-1]) and all(0 < len(s) <= per_shard for s in shards)
    assert shards == assign_shards(list(reversed(keys)), per_shard, seed)  # input order does not matter


def test_shards_mix_classes():
    keys = [f"{label}{i:03d}" for label in "abcde" for i in range(40)]  # listed class by class
    shards = assign_shards(keys, 20, seed=0)
    assert all(len({k[0] for k in s}) >= 3 for s in shards)
    assert assign_shards(keys, 20, seed=1) != shards


@given(st.integers(1, 1 << 40), st.floats(1, 1 << 30))
def test_videos_per_shard_for(target, mean):
    n = videos_per_shard_for(target, mean)
    assert n >= 1
    if target >= mean:
        assert abs(n * mean - target) <= mean / 2 + 1e-6 * target


@given(st.integers(2, 4000), st.integers(2, 4000), st.sampled_from([0, 90, 180, 270]),
       st.sampled_from([0, 64, 128, 256, 336]),
       st.sampled_from([Fraction(1), Fraction(4, 3), Fraction(8, 9), Fraction(128, 117)]))
def test_output_size_rules(w, h, rotation, short_side, sar):
    ow, oh = output_size(w, h, sar, rotation, short_side)
    assert ow % 2 == 0 and oh % 2 == 0 and ow >= 2 and oh >= 2
    dw, dh = (h, w * sar) if rotation % 180 else (w * sar, h)
    if short_side:
        assert min(ow, oh) <= max(short_side, 2) + 1  # capped (rounding to even may add one)
    assert min(ow, oh) <= min(dw, dh) + 2  # never upscaled beyond rounding to even
    if min(ow, oh) >= 32:  # aspect ratio kept, up to rounding
        assert abs(ow / oh - dw / dh) / (dw / dh) < 0.1
