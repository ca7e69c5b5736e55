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


def test_an_episode_the_recorder_stops_or_refuses_is_counted_failed():
    from hiors_core import topics
    from hiors_msgs.srv import ResetSim, StartEpisode
    from hiors_sim.episode_runner import EpisodeRunner
    from hiors_testing.ros import spinning, wait_for

    with ros_context() as ctx:
        import rclpy

        recorder = rclpy.create_node("fake_recorder", context=ctx)
        status = recorder.create_publisher(String, topics.EPISODE_STATUS, topics.qos(topics.EPISODE_STATUS))
        starts = []

        def start(req, resp):  # the first start is taken, then its recording stops; the next is refused
            starts.append(req)
            resp.success = len(starts) == 1
            resp.episode_id = "ep-000000" if resp.success else ""
            resp.message = "" if resp.success else "episode log: 3 MiB free, below 64 MiB"
            return resp

        def reset(req, resp):
            resp.success = True
            return resp

        recorder.create_service(StartEpisode, topics.START_EPISODE, start)
        recorder.create_service(ResetSim, topics.RESET, reset)
        params = [Parameter(k, value=v) for k, v in (("episodes", 2), ("policy_wait_s", 0.0), ("pause_s", 0.0))]
        runner = EpisodeRunner(context=ctx, parameter_overrides=params)
        try:
            with spinning([recorder, runner], ctx):
                wait_for(lambda: runner.running == "ep-000000", 30, "the first episode running")
                status.publish(String(data="ep-000000"))
                wait_for(lambda: runner.recording == "ep-000000", 30, "the recorder's status seen")
                status.publish(String(data=""))  # stopped by a failed write, not ended by the runner
                wait_for(lambda: runner.done + runner.failed == 2, 30, "both episodes tried")
            assert (runner.done, runner.failed) == (0, 2)
        finally:
            runner.shutdown()
            runner.destroy_node()
            recorder.destroy_node()
