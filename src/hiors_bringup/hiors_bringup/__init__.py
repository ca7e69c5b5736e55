"""hiors_bringup: Launch files, configs, the per-robot node-graph description and the hiors command (up, replay, eval, export, report, bench)."""
