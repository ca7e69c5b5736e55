"""The parameters of the policy (actor) and capture nodes (type, default, range, description): pure, so `hiors up`
checks values against them before any node starts (hiors_core.params)."""

from __future__ import annotations

from hiors_core.params import Param
from hiors_core.robots import ROBOTS

POLICY = {
    "checkpoint": Param(
        "tiny:tora_one:raise_hand",
        "checkpoint folder (project or lerobot+hiors_policy.json layout), or tiny:<robot>:<task>",
        read_only=True,
    ),
    "robot": Param(
        "",
        "expected robot name; observations for another robot are refused ('' = the checkpoint's)",
        choices=("", *ROBOTS),
        read_only=True,
    ),
    "task": Param("", "expected task name (informational; '' = the checkpoint's)", read_only=True),
    "num_steps": Param(0, "denoising steps (0 = the checkpoint's, 10 for pi0)", 0, 1000),
    "device": Param("cpu", "torch device: cpu, cuda, cuda:1, ...", read_only=True),
    "dtype": Param(
        "", "model dtype override: '', float32, bfloat16", choices=("", "float32", "bfloat16"), read_only=True
    ),
    "seed": Param(0, "noise seed (and tiny-policy init seed)", 0, 2**32 - 1),
    "infer_on": Param(
        "observation",
        "observation: a chunk for every observation the worker gets to (the newest; the rest are skipped); "
        "request: a chunk when the arbiter asks (chunk_request), from the newest observation not used yet",
        choices=("observation", "request"),
        read_only=True,
    ),
    "image_width": Param(0, "required camera image width (0 = any)", 0, 16384),
    "image_height": Param(0, "required camera image height (0 = any)", 0, 16384),
    "use_local_weights": Param(True, "read PolicyUpdate.path directly when it is readable and its sha256 matches"),
    "max_weight_bytes": Param(
        0,
        "largest weight blob taken, from a file or in chunks (0 = the model's size at float32 plus 1 MiB); weight "
        "messages waiting, and incomplete transfers, each hold at most twice this",
        0,
        2**50,
    ),
    "weight_transfer_timeout_s": Param(
        60.0, "seconds without a new chunk after which an incomplete transfer is dropped", 0.01, 86_400.0
    ),
    "weights_loader_nice": Param(
        10,
        "niceness added to the thread that reads and checks new weights (Linux, per thread): a multi-GB version "
        "then takes the CPU time that inference and the robot's other processes leave",
        0,
        19,
        read_only=True,
    ),
    "diagnostics_period": Param(1.0, "seconds between /diagnostics messages", 0.01, 3600.0),
}

CAPTURE = {
    "robot": Param("tora_one", "robot name (hiors_core.robots)", choices=tuple(ROBOTS), read_only=True),
    "task": Param("raise_hand", "task name; fixes the state layout", read_only=True),
    "rate_hz": Param(10.0, "Observation publishing rate (Hz)", 0.1, 1000.0),
    "max_skew": Param(
        0.1, "largest allowed |image stamp - joint state stamp| (s); older frames are dropped", 1e-4, 10.0
    ),
    "cameras": Param([""], "camera names ([''] = the robot's cameras)", read_only=True),
    "frame_id": Param("", "Observation.header.frame_id ('' = the robot's base frame)", read_only=True),
    "opencv_devices": Param(
        [""], "real robot only: read cameras from OpenCV devices, e.g. ['top=0', 'left_wrist=2']", read_only=True
    ),
    "goal_state": Param(
        False,
        "twin only: the state also carries the task's goal entries, read from the sim's privileged task state "
        "(for goal-state policies; `hiors up` sets it from the policy's state names)",
        read_only=True,
    ),
}
