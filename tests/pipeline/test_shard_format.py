"""The shard contract's pure parts: keys and the DALI index text."""

from hypothesis import given
from hypothesis import strategies as st

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
