"""An existing robot driver (a ros2_control controller set, a vendor node) as the graph's robot topics:
`mapping.py` renames joints, orders them and scales grippers, and refuses unsafe commands (ROS-free); `bridge.py` is
its node, driver_bridge. The contract it fulfils is docs/ROBOT_DRIVER.md."""
