"""Test session set-up shared by every package: a private ROS domain with localhost-only discovery, headless GL."""

import os

# Set before anything imports rclpy: each pytest process gets its own DDS domain, so parallel runs
# (and anything else on the machine) never cross-talk. Domain ids 0..101 are valid with Fast DDS's default ports.
os.environ.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see hiors_bringup.processes: no spinning torch threads
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
