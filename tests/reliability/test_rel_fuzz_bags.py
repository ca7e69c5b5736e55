"""Bad input, bags on disk: the episode log's corrupted-bag fuzzer (hiors_core/test/test_bag_fuzz.py, 60 bags in
every `make test`) reused at full scale: thousands of truncated, bit-flipped, zeroed and metadata-mangled bags, each
read either cleanly or refused with an EpisodeLogError naming the file."""

import os

import pytest
import test_bag_fuzz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import record

EXAMPLES = int(os.environ.get("HIORS_BAG_FUZZ_EXAMPLES", "2000"))


@pytest.mark.full
def test_thousands_of_corrupted_bags_fail_cleanly(tmp_path_factory):
    inner = test_bag_fuzz.test_corrupted_bags_fail_cleanly.hypothesis.inner_test
    runs = [0]

    def counted(tmp_path_factory, data):
        runs[0] += 1
        inner(tmp_path_factory, data)

    test = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))(
        given(data=st.data())(counted)
    )
    test(tmp_path_factory)
    record("fuzz", "corrupted bags read or refused cleanly", runs[0], expected=f">= {EXAMPLES // 2}")
    assert runs[0] >= EXAMPLES // 2
