"""The episode runner ends an episode on the success it sees, from every task state its callback receives."""

from __future__ import annotations

import json

from rclpy.parameter import Parameter
from std_msgs.msg import String

from hiors_testing.ros import ros_context


def test_runner_ends_on_a_short_success_and_ignores_other_scenes():
    from hiors_sim.episode_runner import EpisodeRunner

    def msg(t, seed, **kw):
        return String(data=json.dumps({"time": t, "seed": seed, "success": False, "failed": False, **kw}))

    with ros_context() as ctx:
        runner = EpisodeRunner(context=ctx, parameter_overrides=[Parameter("episodes", value=0)])
        try:
            runner.expect_seed = 5
            runner.on_task_state(msg(9.0, 4, failed=True, failure_reason="bottle knocked over"))  # the last scene
            runner.on_task_state(msg(0.0, 5))
            assert runner.watch.why == ""
            # Two successful states (0.04 s), then the released hand leaves the goal before the worker looks again.
            runner.on_task_state(msg(4.0, 5, success=True))
            runner.on_task_state(msg(4.04, 5, success=True))
            runner.on_task_state(msg(4.08, 5))
            assert runner.watch.why == "success"
        finally:
            runner.shutdown()
            runner.destroy_node()
