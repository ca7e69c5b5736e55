"""Message <-> numpy conversion that works on rclpy messages and on rosbags' decoded messages alike.

Decoders only read attributes, so the same function serves a live subscription and a bag on disk.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from rosbags.image import ImageError, message_to_cvimage
from rosbags.image.image import to_cvtype

from .errors import BadInputError
from .schema import Executed, Frame, Label

NS = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * NS + int(stamp.nanosec)


def ns_to_sec_nanosec(ns: int) -> tuple[int, int]:
    return int(ns // NS), int(ns % NS)


def image_to_numpy(msg) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> HxWx3 uint8 RGB. Raises BadInputError naming the problem."""
    if hasattr(msg, "width") and (int(msg.width) == 0 or int(msg.height) == 0):
        # OpenCV's colour conversion raises its own cv2.error on an empty image (not a ValueError).
        raise BadInputError(f"empty image ({msg.width}x{msg.height}, encoding {msg.encoding!r})")
    try:
        img = message_to_cvimage(_without_row_padding(msg), "rgb8")
    except (ImageError, ValueError, TypeError) as e:
        raise BadInputError(f"undecodable image (encoding {getattr(msg, 'encoding', '?')!r}): {e}") from None
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise BadInputError(f"image has shape {img.shape}, expected HxWx3")
    return np.ascontiguousarray(img, dtype=np.uint8)


def _without_row_padding(msg):
    """rosbags reads height * width pixels from the start of `data` and ignores `step`: an Image whose rows are
    padded (step above width times the pixel size) goes to it as a stand-in with the padding cut out."""
    step = int(getattr(msg, "step", 0))
    if not step:  # a CompressedImage, or a producer that leaves step unset
        return msg
    depth, _, _, nchan = to_cvtype(msg.encoding)  # (an unknown encoding raises ImageError: undecodable)
    h, row = int(msg.height), int(msg.width) * nchan * depth // 8
    if step <= row:
        return msg
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < h * step:
        raise BadInputError(f"image of {data.size} bytes, expected {h} rows of {step} bytes")
    rows = np.ascontiguousarray(data[: h * step].reshape(h, step)[:, :row])
    return SimpleNamespace(
        height=h, width=int(msg.width), encoding=msg.encoding, is_bigendian=msg.is_bigendian, step=row, data=rows
    )


def check_finite(name: str, values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        bad = [i for i, v in enumerate(a.ravel()) if not math.isfinite(float(v))]
        raise BadInputError(f"{name} has non-finite values at indices {bad[:8]}")
    return a


def frame_from_observation(msg, step: int = 0) -> Frame:
    """hiors_msgs/Observation -> Frame. Refuses mismatched camera lists and non-finite state."""
    if len(msg.camera_names) != len(msg.images):
        raise BadInputError(f"observation has {len(msg.camera_names)} camera names but {len(msg.images)} images")
    if len(msg.state_names) != len(msg.state):
        raise BadInputError(f"observation has {len(msg.state_names)} state names but {len(msg.state)} state values")
    images = {name: image_to_numpy(im) for name, im in zip(msg.camera_names, msg.images, strict=True)}
    return Frame(
        step=step,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        images=images,
        state=check_finite("observation state", msg.state),
        state_names=tuple(msg.state_names),
        instruction=str(msg.instruction),
        sequence=int(msg.sequence),
    )


def executed_from_msg(msg) -> Executed:
    return Executed(
        step=int(msg.step),
        stamp_ns=stamp_to_ns(msg.header.stamp),
        action=np.asarray(msg.action, dtype=np.float32).copy(),
        authority=int(msg.authority),
        source=str(msg.source),
        policy_version=int(msg.policy_version),
        clamped=bool(msg.clamped),
        is_sample=bool(msg.is_sample),
    )


def label_from_msg(msg) -> Label:
    return Label(
        reward=float(msg.reward),
        success=bool(msg.success),
        source=str(msg.source),
        stamp_ns=stamp_to_ns(msg.header.stamp),
    )


def chunk_to_numpy(msg) -> np.ndarray:
    """hiors_msgs/ActionChunk -> (H, D) float32, refusing wrong sizes and non-finite values."""
    h, d = int(msg.horizon), int(msg.action_dim)
    if h <= 0 or d <= 0 or len(msg.actions) != h * d:
        raise BadInputError(f"action chunk declares {h}x{d} but carries {len(msg.actions)} values")
    return check_finite("action chunk", msg.actions).reshape(h, d)
