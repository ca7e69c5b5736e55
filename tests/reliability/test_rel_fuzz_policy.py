"""Bad input, policy node: hypothesis-generated malformed Observations (every one ends as a chunk, a refusal or a
skip, and is counted; no chunk from a certainly-invalid one; every chunk finite), and forged or corrupted weight
updates (PolicyWeights chunks and PolicyUpdate announcements: bad sha256, inconsistent chunks, blobs that are not
safetensors or are pickles, wrong shapes, NaN weights, paths to devices, FIFOs and directories, stale versions):
the weights never change, the node never hangs, and a good version afterwards is still swapped in."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from rclpy.node import Node
from rclpy.parameter import Parameter
from rel_support import SCALES, f32_floats, fuzz, instrumented, pick, record

from hiors_core import topics
from hiors_core.convert_ros import image_msg, time_msg
from hiors_core.weight_sync import sha256_hex, weight_messages
from hiors_msgs.msg import ActionChunk, Observation, PolicyUpdate, PolicyWeights
from hiors_policy import build_tiny_policy
from hiors_policy.policy_node import PolicyNode
from hiors_testing.ros import ros_context, spinning, wait_for, wait_for_subscribers

pytestmark = pytest.mark.node
WAIT = 60.0
FuzzPolicy = instrumented(PolicyNode, ["_on_observation", "_on_update", "_on_weights"], observe=["_handle"])


@pytest.fixture(scope="module")
def policy():
    return build_tiny_policy("tora_one", "raise_hand", seed=0)


# --- observations -----------------------------------------------------------------------------------------------------

image_spec = st.fixed_dictionaries(
    {
        "w": st.integers(0, 40),
        "h": st.integers(0, 40),
        "encoding": st.sampled_from(["rgb8", "bgr8", "mono8", "rgba8", "16UC1", "", "x"]),
        "data": st.one_of(st.just("right"), st.integers(0, 3000)),
        "step": st.one_of(st.just("right"), st.integers(0, 100)),
    }
)
# A valid observation with (most of the time) one thing wrong with it.
obs_spec = st.fixed_dictionaries(
    {
        "wrong": st.sampled_from(
            ["nothing"] * 4
            + ["robot", "cameras", "image", "state_names", "state_len", "state_value", "instruction", "several"]
        ),
        "robot": st.one_of(st.just(""), st.text(max_size=12)),
        "cameras": st.sampled_from(["missing", "extra", "count", "garbage"]),
        "image": image_spec,
        "state_names": st.sampled_from(["empty", "shuffled", "short", "garbage"]),
        "state_len": st.integers(0, 40),
        "mutations": st.lists(st.tuples(st.integers(0, 100), f32_floats()), min_size=1, max_size=3),
        "instruction": st.text(max_size=80),
        "seed": st.integers(0, 2**32 - 1),
    }
)


def build_observation(policy, spec: dict, seq: int) -> tuple[Observation, bool]:
    """The message, and whether it is certainly invalid (it must never produce a chunk)."""
    rng = np.random.default_rng(spec["seed"])
    wrong = spec["wrong"]
    several = wrong == "several"

    def bad(field):
        return wrong == field or (several and rng.random() < 0.5)

    cams = list(policy.config.camera_names)
    kind = spec["cameras"] if bad("cameras") else "right"
    names = {"missing": cams[:1], "extra": [*cams, "extra"], "garbage": ["a", "b"]}.get(kind, cams)
    images = []
    invalid = False
    broken = int(rng.integers(0, len(names))) if bad("image") else -1
    for k, name in enumerate(names):
        im = spec["image"] if k == broken else {"w": 16, "h": 12, "encoding": "rgb8", "data": "right", "step": "right"}
        w, h = im["w"], im["h"]
        step = w * 3 if im["step"] == "right" else im["step"]
        data = h * step if im["data"] == "right" else im["data"]
        msg = image_msg(np.zeros((1, 1, 3), np.uint8), seq, name)
        msg.width, msg.height, msg.step, msg.encoding = w, h, step, im["encoding"]
        msg.data = bytes(rng.integers(0, 256, data, dtype=np.uint8))
        images.append(msg)
        invalid |= im["encoding"] not in ("rgb8", "bgr8") or data != h * step or step < w * 3
    camera_names = names
    if kind == "count":
        images = images[:-1]
        invalid = True
    state_names = list(policy.config.state_names)
    k = spec["state_names"] if bad("state_names") else "right"
    if k == "empty":
        state_names = []
    elif k == "shuffled":
        state_names = list(rng.permutation(state_names))
    elif k == "short":
        state_names = state_names[:-2]
    elif k == "garbage":
        state_names = [f"s{i}" for i in range(len(state_names))]
    n = spec["state_len"] if bad("state_len") else (len(state_names) or policy.state_dim)
    state = rng.normal(size=n).astype(np.float32)
    if bad("state_value"):
        for i, v in spec["mutations"]:
            if n:
                state[i % n] = v
    invalid |= bool(state_names) and len(state_names) != n
    invalid |= not np.all(np.isfinite(state))
    robot = spec["robot"] if bad("robot") else "tora_one"
    invalid |= bool(robot) and robot != "tora_one"
    instruction = spec["instruction"] if bad("instruction") else policy.config.instruction
    msg = Observation(robot=robot, task="raise_hand", instruction=instruction, sequence=seq)
    msg.header.stamp = time_msg(seq)
    msg.camera_names = camera_names
    msg.images = images
    msg.state_names = state_names
    msg.state = state.tolist()
    return msg, invalid


@pytest.mark.parametrize("scale", SCALES)
def test_policy_node_refuses_malformed_observations(policy, scale):
    examples = pick(scale, 60, 700)
    with ros_context() as ctx:
        node = FuzzPolicy(policy=policy, context=ctx, parameter_overrides=[Parameter("diagnostics_period", value=0.2)])
        probe = Node("policy_fuzz_probe", context=ctx)
        chunks: list[ActionChunk] = []
        probe.create_subscription(
            ActionChunk, topics.ACTION_CHUNK, chunks.append, topics.qos(topics.ACTION_CHUNK, depth=100)
        )
        pub = probe.create_publisher(Observation, topics.OBSERVATION, topics.qos(topics.OBSERVATION))
        invalid_seqs: set[int] = set()
        sent = [0]

        def settled():
            s = node.stats
            return s["chunks"] + s["refused_inputs"] + s["skipped_observations"] == node.calls["_on_observation"]

        def body(specs):
            for spec in specs:
                sent[0] += 1
                msg, invalid = build_observation(policy, spec, sent[0])
                if invalid:
                    invalid_seqs.add(sent[0])
                pub.publish(msg)
                # The observation QoS keeps 2: wait for each before the next, so that none is lost in transit (the node's own
                # skipping of observations it could not get to is what is counted).
                wait_for(lambda: node.calls["_on_observation"] >= sent[0], WAIT, f"observation {sent[0]} taken")
            wait_for(settled, WAIT, "every observation chunked, refused or skipped")
            assert not node.crashes, node.crashes[0]

        try:
            with spinning([node, probe], context=ctx):
                wait_for_subscribers(pub, timeout=WAIT)
                fuzz(st.lists(obs_spec, min_size=1, max_size=6), body, examples)
                wait_for(lambda: len(chunks) >= node.stats["chunks"], WAIT, "chunks received")
        finally:
            node.destroy_node()
            probe.destroy_node()
    s = node.stats
    bad_chunks = [c for c in chunks if c.observation_sequence in invalid_seqs]
    unfinite = [c for c in chunks if not np.all(np.isfinite(np.asarray(c.actions, np.float64)))]
    wrong = [c for c in chunks if (c.horizon, c.action_dim, len(c.actions)) != (16, 8, 128)]
    accounted = s["chunks"] + s["refused_inputs"] + s["skipped_observations"]
    record("fuzz", "policy observations sent", sent[0], detail=f"{len(invalid_seqs)} certainly invalid")
    record("fuzz", "policy observations -> chunks", s["chunks"])
    not_chunked = s["refused_inputs"] + s["skipped_observations"]
    record("fuzz", "policy observations refused (counted)", s["refused_inputs"])
    record("fuzz", "policy observations skipped for a newer one (counted)", s["skipped_observations"])
    record(
        "fuzz",
        "policy observations refused or skipped",
        not_chunked,
        expected=f">= {len(invalid_seqs)} (invalid)",
        ok=not_chunked >= len(invalid_seqs),
    )
    record("fuzz", "policy observations unaccounted", sent[0] - accounted, expected=0, ok=accounted == sent[0])
    record("fuzz", "policy chunks from invalid observations", len(bad_chunks), expected=0, ok=not bad_chunks)
    record("fuzz", "policy non-finite or misshapen chunks", len(unfinite) + len(wrong), expected=0)
    record("fuzz", "policy callback crashes", len(node.crashes), expected=0, ok=not node.crashes)
    assert accounted == sent[0]
    assert not bad_chunks and not unfinite and not wrong
    assert s["refused_inputs"] + s["skipped_observations"] >= len(invalid_seqs)
    unexpected = {k: v for k, v in node.raised.items() if k != "BadInputError"}
    record(
        "fuzz",
        "policy refusals by unexpected errors",
        sum(unexpected.values()),
        expected=0,
        ok=not unexpected,
        detail=str(unexpected),
    )
    assert not unexpected, f"malformed input raised {unexpected} instead of being refused as bad input"


# --- weights ----------------------------------------------------------------------------------------------------------


class Evil:
    """Unpickling this would run code (it creates a marker file): a pickle must never be loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def pickle_blob(marker: str) -> bytes:
    buf = io.BytesIO()
    pickle.dump({"action_out_proj.weight": Evil(marker)}, buf)
    return buf.getvalue()


def safetensors_blob(policy, change: str) -> bytes:
    from safetensors.torch import save

    sd = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
    key = sorted(k for k, v in sd.items() if v.is_floating_point() and v.dim() == 2)[0]
    if change == "shape":
        sd[key] = torch.zeros(sd[key].shape[0] + 1, sd[key].shape[1])
    elif change == "nan":
        sd[key][0, 0] = float("nan")
    elif change == "missing":
        del sd[key]
    elif change == "extra":
        sd["extra.weight"] = torch.zeros(2)
    elif change == "dtype":
        sd[key] = sd[key].to(torch.float64)
    return save(sd)


weight_spec = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("corrupt"),
            "how": st.sampled_from(["flip", "sha", "total", "count", "index", "drop", "duplicate"]),
            "chunk": st.integers(0, 3),
            "byte": st.integers(0, 10**7),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("forged"),
            "what": st.sampled_from(["random", "pickle", "empty", "truncated", "shape", "nan", "missing", "extra"]),
            "seed": st.integers(0, 2**32 - 1),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("fields"),
            "version_offset": st.integers(-3, 3),
            "index": st.integers(0, 2**32 - 1),
            "count": st.integers(0, 2**32 - 1),
            "total": st.integers(0, 2**64 - 1),
            "sha": st.sampled_from(["good", "zeros", "", "short"]),
            "data": st.binary(max_size=64),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("update"),
            "path": st.sampled_from(["/dev/zero", "fifo", "dir", "missing", "pickle", "wrong_sha", "huge_total", ""]),
            "version_offset": st.integers(-2, 2),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("stale"), "back": st.integers(0, 3)}),
)


@pytest.mark.parametrize("scale", SCALES)
def test_policy_node_refuses_forged_and_corrupted_weights(policy, tmp_path, scale):
    examples = pick(scale, 40, 400)
    marker = str(tmp_path / "pwned")
    good = build_tiny_policy("tora_one", "raise_hand", seed=1).to_safetensors_bytes()
    chunk_size = len(good) // 4 + 1
    fifo = tmp_path / "weights.fifo"
    os.mkfifo(fifo)
    pickle_file = tmp_path / "weights.pt"
    pickle_file.write_bytes(pickle_blob(marker))
    good_file = tmp_path / "good.safetensors"
    good_file.write_bytes(good)
    with ros_context() as ctx:
        node = FuzzPolicy(policy=policy, context=ctx)
        original = policy.to_safetensors_bytes()
        probe = Node("weights_fuzz_probe", context=ctx)
        pub_w = probe.create_publisher(
            PolicyWeights, topics.POLICY_WEIGHTS, topics.qos(topics.POLICY_WEIGHTS, depth=64)
        )
        pub_u = probe.create_publisher(PolicyUpdate, topics.POLICY_UPDATE, topics.qos(topics.POLICY_UPDATE))
        version = [10]
        must_refuse = [0]
        sent = {"weights": 0, "updates": 0}

        def send_chunks(msgs):
            for m in msgs:
                pub_w.publish(m)
                sent["weights"] += 1

        def send_update(m):
            pub_u.publish(m)
            sent["updates"] += 1

        def body(spec):
            version[0] += 5
            v = version[0]
            kind = spec["kind"]
            if kind == "corrupt":
                _, parts = weight_messages(good, v, 0, chunk_size=chunk_size)
                i = spec["chunk"] % len(parts)
                how = spec["how"]
                if how == "flip":
                    data = bytearray(parts[i].data.tobytes())
                    data[spec["byte"] % len(data)] ^= 0xFF
                    parts[i].data = bytes(data)
                elif how == "sha":
                    parts[i].sha256 = "0" * 64
                elif how == "total":
                    parts[i].total_bytes += 1
                elif how == "count":
                    parts[i].num_chunks += 1
                elif how == "index":
                    parts[i].chunk_index = parts[i].num_chunks + 7
                elif how == "drop":
                    del parts[i]
                elif how == "duplicate":  # a chunk twice, in a blob whose digest is wrong: refused once
                    parts.insert(i, parts[i])
                    for p in parts:
                        p.sha256 = "f" * 64
                must_refuse[0] += how != "drop"  # a dropped chunk leaves it incomplete: never applied, not refused
                send_chunks(parts)
            elif kind == "forged":
                rng = np.random.default_rng(spec["seed"])
                blob = {
                    "random": lambda: rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
                    "pickle": lambda: pickle_blob(marker),
                    "empty": lambda: b"",
                    "truncated": lambda: good[: len(good) // 2],
                }.get(spec["what"], lambda: safetensors_blob(policy, spec["what"]))()
                _, parts = weight_messages(blob, v, 0, chunk_size=chunk_size)  # a self-consistent sha256
                must_refuse[0] += 1
                send_chunks(parts)
            elif kind == "fields":
                sha = {"good": sha256_hex(spec["data"]), "zeros": "0" * 64, "": "", "short": "ab"}[spec["sha"]]
                m = PolicyWeights(version=max(0, v + spec["version_offset"]), sha256=sha)
                m.chunk_index, m.num_chunks, m.total_bytes = spec["index"], spec["count"], spec["total"]
                m.data = spec["data"]
                if m.chunk_index >= m.num_chunks:
                    must_refuse[0] += 1
                send_chunks([m])
            elif kind == "update":
                what = spec["path"]
                path, total, sha = str(good_file), len(good), sha256_hex(good)
                if what == "/dev/zero":
                    path = "/dev/zero"
                elif what == "fifo":
                    path = str(fifo)
                elif what == "dir":
                    path = str(tmp_path)
                elif what == "missing":
                    path = str(tmp_path / "nope.safetensors")
                elif what == "pickle":
                    path, total, sha = (
                        str(pickle_file),
                        pickle_file.stat().st_size,
                        sha256_hex(pickle_file.read_bytes()),
                    )
                    must_refuse[0] += 1  # the digest matches: it is read, and refused as not safetensors
                elif what == "wrong_sha":
                    sha = "0" * 64
                elif what == "huge_total":
                    total = 2**63
                elif what == "":
                    path = ""
                send_update(
                    PolicyUpdate(
                        version=max(0, v + spec["version_offset"]),
                        sha256=sha,
                        total_bytes=total,
                        num_chunks=1,
                        path=path,
                    )
                )
            else:  # an older version than the current one, complete and valid
                _, parts = weight_messages(good, max(0, node.version - spec["back"]), 0, chunk_size=chunk_size)
                send_chunks(parts)
            wait_for(
                lambda: node.calls["_on_weights"] >= sent["weights"] and node.calls["_on_update"] >= sent["updates"],
                WAIT,
                "every weight message taken (a hung weights callback would stop here)",
            )
            assert not node.crashes, node.crashes[0]
            assert node.version == 0, f"a forged or corrupted version was swapped in ({spec})"

        try:
            with spinning([node, probe], context=ctx):
                wait_for_subscribers(pub_w, timeout=WAIT)
                wait_for_subscribers(pub_u, timeout=WAIT)
                fuzz(weight_spec, body, examples)
                wait_for(
                    lambda: node.stats["weight_refusals"] >= must_refuse[0], WAIT, f"{must_refuse[0]} refusals counted"
                )
                unchanged = policy.to_safetensors_bytes() == original
                # Still alive and not locked out: a good, newer version is swapped in.
                final = version[0] + 5
                update, parts = weight_messages(good, final, 0, chunk_size=chunk_size)
                send_update(update)
                send_chunks(parts)
                wait_for(lambda: node.version == final, WAIT, "a good version after the garbage")
                swapped = policy.to_safetensors_bytes() == good
        finally:
            node.destroy_node()
            probe.destroy_node()
    s = node.stats
    record("fuzz", "policy weight messages sent", sent["weights"] + sent["updates"], detail=str(sent))
    record("fuzz", "policy weight refusals counted", s["weight_refusals"], expected=f">= {must_refuse[0]}")
    record("fuzz", "policy forged/corrupted versions applied", 0 if unchanged else 1, expected=0, ok=unchanged)
    record("fuzz", "policy pickles unpickled", int(os.path.exists(marker)), expected=0, ok=not os.path.exists(marker))
    record("fuzz", "policy good version after garbage", int(swapped), expected=1, ok=swapped)
    record("fuzz", "policy weight callback crashes", len(node.crashes), expected=0, ok=not node.crashes)
    assert unchanged and swapped and not os.path.exists(marker)
    assert s["weight_refusals"] >= must_refuse[0]
