"""hiors_teleop: Teleoperation device adapters (Quest 3, leader arm), the arbiter (control authority, safety, dual-frequency sampling) and the episode recorder."""
