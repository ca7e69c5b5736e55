"""Quest 3: relative end-effector control with a clutch, from the headset's browser (WebXR page and WebSocket)
or from the pose and Joy topics of Quest2ROS. `device.py` is the adapter (ROS-free), `bridge.py` its node."""
