"""Test support shared by every package's tests and the benchmarks: `ros` (nodes in a background executor, waiting
on conditions and on graph matching instead of sleeping), `episodes` (synthetic episodes), `fake_policy`,
`lerobot_v2` (LeRobot v2 dataset rules, as lerobot's loader checks them)."""
