"""A rosbags typestore that knows ROS 2 Jazzy's standard types and every hiors_msgs type, from the .msg text.

Registering from the .msg text (not from generated Python) is what lets any rosbag2 reader decode the bags:
the full definitions travel inside each MCAP file.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from .errors import HiorsError

PACKAGE = "hiors_msgs"


def _candidate_dirs() -> list[Path]:
    dirs = []
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) + [sys.prefix]:
        if prefix:
            dirs.append(Path(prefix) / "share" / PACKAGE / "msg")
    # A source checkout: src/hiors_core/hiors_core/ -> src/hiors_msgs/msg
    dirs.append(Path(__file__).resolve().parents[2] / PACKAGE / "msg")
    return dirs


def msg_dir() -> Path:
    for d in _candidate_dirs():
        if d.is_dir() and any(d.glob("*.msg")):
            return d
    raise HiorsError(f"cannot find the {PACKAGE} .msg files; looked in: {', '.join(map(str, _candidate_dirs()))}")


@functools.cache
def typestore() -> Typestore:
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for f in sorted(msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"{PACKAGE}/msg/{f.stem}"))
    store.register(types)
    return store
