"""Bags on disk, corrupted at random: reading either succeeds or raises EpisodeLogError; nothing else escapes."""

import shutil

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hiors_core.episode_log import EpisodeLog, read_episode_bag
from hiors_core.errors import EpisodeLogError
from hiors_testing.episodes import make_episode


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_bags_fail_cleanly(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("bag")
    src = EpisodeLog(base / "log").write_episode(make_episode(steps=6, image=8))
    bag = base / "copy"
    shutil.copytree(src, bag)
    (mcap_file,) = bag.glob("*.mcap")
    raw = bytearray(mcap_file.read_bytes())
    action = data.draw(st.sampled_from(["truncate", "flip", "zero_run", "metadata"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif action == "flip":
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[i] ^= 0xFF
    elif action == "zero_run":
        start = data.draw(st.integers(0, len(raw) - 1))
        raw[start : start + data.draw(st.integers(1, 256))] = bytes(min(256, len(raw) - start))[
            : len(raw[start : start + 256])
        ]
    else:
        meta = bag / "metadata.yaml"
        text = meta.read_text()
        cut = data.draw(st.integers(0, max(0, len(text) - 1)))
        meta.write_text(text[:cut] + data.draw(st.text(max_size=20)))
    mcap_file.write_bytes(bytes(raw))
    try:
        ep = read_episode_bag(bag)
    except EpisodeLogError as e:
        assert str(bag) in str(e)  # the error names the file
        return
    # A corruption that still decodes must still give well-formed arrays (e.g. a flipped pixel).
    assert ep.actions.dtype == np.float32 and all(f.state.dtype == np.float32 for f in ep.frames)
    assert src.exists()  # the original is never touched
