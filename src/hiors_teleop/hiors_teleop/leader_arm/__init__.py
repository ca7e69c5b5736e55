"""The leader arm: absolute joint targets mapped from a leader's readings (a JointState feed or Dynamixel servos).
`device.py` is the adapter (ROS-free), `bridge.py` its node."""
