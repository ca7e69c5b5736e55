"""numpy -> rclpy messages (needs rclpy's generated message classes; kept apart from the pure modules)."""

from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from hiors_msgs.msg import EpisodeLabel, ExecutedCommand, Observation

from .convert import ns_to_sec_nanosec
from .schema import Executed, Frame, Label


def time_msg(ns: int) -> Time:
    sec, nanosec = ns_to_sec_nanosec(ns)
    return Time(sec=sec, nanosec=nanosec)


def image_msg(img: np.ndarray, stamp_ns: int = 0, frame_id: str = "") -> Image:
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
    msg.header.stamp = time_msg(stamp_ns)
    msg.header.frame_id = frame_id
    # array('B') rather than bytes: rclpy serialises it with one copy instead of element by element (~20x faster).
    # Filled from the array's own buffer: one copy of the pixels (tobytes would make a second one).
    data = array.array("B")
    data.frombytes(img.data)
    msg.data = data
    return msg


def observation_msg(frame: Frame, robot: str = "", task: str = "", frame_id: str = "base_link") -> Observation:
    msg = Observation(robot=robot, task=task, instruction=frame.instruction, sequence=frame.sequence)
    msg.header.stamp = time_msg(frame.stamp_ns)
    msg.header.frame_id = frame_id
    msg.camera_names = list(frame.images)
    msg.images = [image_msg(im, frame.stamp_ns, name) for name, im in frame.images.items()]
    msg.state_names = list(frame.state_names)
    msg.state = np.asarray(frame.state, dtype=np.float32).tolist()
    return msg


def executed_msg(e: Executed, episode_id: str, control_mode: int, action_names) -> ExecutedCommand:
    msg = ExecutedCommand(
        episode_id=episode_id,
        step=e.step,
        authority=e.authority,
        source=e.source,
        control_mode=control_mode,
        action_names=list(action_names),
        policy_version=e.policy_version,
        clamped=e.clamped,
        is_sample=e.is_sample,
    )
    msg.header.stamp = time_msg(e.stamp_ns)
    msg.action = np.asarray(e.action, dtype=np.float32).tolist()
    return msg


def label_msg(label: Label, episode_id: str) -> EpisodeLabel:
    msg = EpisodeLabel(episode_id=episode_id, reward=float(label.reward), success=label.success, source=label.source)
    msg.header.stamp = time_msg(label.stamp_ns)
    return msg
