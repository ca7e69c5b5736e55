"""Control authority, chunk execution and dual-frequency sampling: the arbiter's decisions as a pure state machine.

`ArbiterCore.tick(now_ns)` is one control period. The node only feeds it messages and publishes what it returns,
so everything that matters for safety and for the data (who drove, which step is a sample) is tested without ROS.

Authority rules, in priority order (evaluated every control period):
  1. e-stop engaged (latched until released)           -> HOLD ("estop")
  2. human clutch/leader engaged and its input fresh   -> HUMAN   (human input always wins)
     human engaged but its input stale                  -> HOLD ("teleop stale")
  3. the policy has an action for this period            -> POLICY
  4. otherwise                                            -> HOLD (reason: why the policy has nothing)
Switching never jumps: on takeover the human's relative (clutch) control anchors at the last *commanded* pose;
every command, including the first after a hand-back, is step-limited from the last commanded one.

Chunk timing: a chunk's action 0 belongs to its observation's stamp. When a chunk starts executing, the actions
whose time is already past (elapsed = round((now - stamp) / dt)) are skipped; the arbiter executes actions
[elapsed, k_auto) of it. A newer chunk that arrives meanwhile waits (only the newest is kept) and takes over at
k_auto. A chunk older than `policy_timeout_steps` control periods on arrival, or whose actions up to where it would
stop are all past, is refused as stale. When nothing is left to execute the arbiter holds at once (in the same
period).

Chunk requests (schedule "early", the default): the arbiter asks the policy for the next chunk when the actions the
held chunks still cover (up to k_auto) fall to the request-to-chunk latency it measures, plus a margin, so that the
next chunk is there when the current one reaches k_auto; until it comes the current chunk runs on past k_auto, up to
its horizon, instead of stopping the robot. Schedule "sequential" is the paper's loop: ask when the chunk has run out
at k_auto and hold until the next one arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hiors_core.robots import MODE_EE_POSE
from hiors_core.rotations import IDENTITY_Q, apply_delta
from hiors_core.schema import AUTHORITY_HOLD, AUTHORITY_HUMAN, AUTHORITY_POLICY

from .safety import Limits, RefusedCommand, make_safe, validate

AUTHORITY_NAMES = {AUTHORITY_HOLD: "hold", AUTHORITY_POLICY: "policy", AUTHORITY_HUMAN: "human"}

SAMPLING_MODES = ("dual", "fixed_high", "fixed_low")
CHUNK_SCHEDULES = ("early", "sequential")
RETRY_MIN_STEPS = 5  # control periods before an unanswered chunk request is repeated, at the least


@dataclass
class Chunk:
    actions: np.ndarray  # (H, D) in the arbiter's layout
    stamp_ns: int  # observation time = time of action 0
    dt_ns: int
    version: int = 0


@dataclass
class LatencyEstimate:
    """Request-to-chunk latency in control periods: a smoothed mean and mean deviation, updated per answered request
    (as TCP estimates its round-trip time, RFC 6298), so that the lead covers the usual spread, not only the mean."""

    mean: float | None = None
    dev: float = 0.0
    samples: int = 0

    def add(self, steps: float) -> None:
        steps = max(0.0, float(steps))
        if self.mean is None:
            self.mean, self.dev = steps, steps / 2
        else:
            self.dev += 0.25 * (abs(steps - self.mean) - self.dev)
            self.mean += 0.125 * (steps - self.mean)
        self.samples += 1

    def lead(self, margin_steps: int) -> int | None:
        """Control periods ahead of need to ask for a chunk; None before the first answer."""
        if self.mean is None:
            return None
        return math.ceil(round(self.mean + 2 * self.dev, 1)) + int(margin_steps)


class ChunkExecutor:
    def __init__(
        self,
        k_auto: int,
        period_ns: int,
        timeout_steps: int,
        schedule: str = "early",
        margin_steps: int = 2,
    ):
        if k_auto < 1:
            raise ValueError(f"k_auto must be >= 1, got {k_auto}")
        if schedule not in CHUNK_SCHEDULES:
            raise ValueError(f"chunk_schedule must be one of {CHUNK_SCHEDULES}, got {schedule!r}")
        self.k_auto = int(k_auto)
        self.period_ns = int(period_ns)
        self.timeout_steps = int(timeout_steps)
        self.schedule = schedule
        self.margin_steps = int(margin_steps)
        self.current: Chunk | None = None
        self.pending: Chunk | None = None
        self.index = 0  # next action index of the current chunk
        self.latency = LatencyEstimate()
        self.request_ns: int | None = None  # when the unanswered request was made

    def _end(self, c: Chunk) -> int:
        """Where a chunk hands over to a newer one."""
        return min(self.k_auto, len(c.actions))

    def _last(self, c: Chunk) -> int:
        """Where a chunk stops when no newer one has come: its horizon, or k_auto in the sequential loop."""
        return len(c.actions) if self.schedule == "early" else self._end(c)

    def _elapsed(self, c: Chunk, now_ns: int) -> int:
        dt = c.dt_ns if c.dt_ns > 0 else self.period_ns
        return max(0, int(np.floor((now_ns - c.stamp_ns) / dt + 0.5)))

    # chunk requests ------------------------------------------------------------------------------------------------
    def ahead(self, now_ns: int) -> int:
        """Control periods, from the next one, that the held chunks still cover up to their hand-over at k_auto."""
        left = 0
        if self.current is not None:
            left = self._end(self.current) - self.index
        if self.pending is not None:
            left = max(left, self._end(self.pending) - self._elapsed(self.pending, now_ns))
        return max(0, left)

    def lead_steps(self) -> int:
        """How many control periods before the held chunks run out to ask for the next one."""
        if self.schedule == "sequential":
            return 0
        lead = self.latency.lead(self.margin_steps)
        return self.k_auto if lead is None else lead  # latency not known yet: ask as early as possible

    def retry_steps(self) -> int:
        """Control periods after which an unanswered request is repeated (lost before the policy's subscription
        matched, or the policy restarted): well past the latency measured (mean + 4 deviations, as TCP's
        retransmission timeout), RETRY_MIN_STEPS before any answer, at most policy_timeout_steps."""
        est = self.latency
        wait = RETRY_MIN_STEPS if est.mean is None else math.ceil(est.mean + 4 * est.dev) + self.margin_steps
        return max(1, min(self.timeout_steps, max(RETRY_MIN_STEPS, wait)))

    def wants_chunk(self, now_ns: int) -> bool:
        """Ask the policy for a chunk now? Not while a request is unanswered, unless it is older than
        retry_steps() or from the future (the clock went back)."""
        r = self.request_ns
        if r is not None and 0 <= now_ns - r < self.retry_steps() * self.period_ns:
            return False
        return self.ahead(now_ns) <= self.lead_steps()

    def requested(self, now_ns: int) -> None:
        self.request_ns = int(now_ns)

    def answered(self, now_ns: int) -> None:
        """A chunk arrived (taken or refused): it answers the request outstanding, whose latency it measures."""
        if self.request_ns is not None and now_ns >= self.request_ns:
            self.latency.add((now_ns - self.request_ns) / self.period_ns)
        self.request_ns = None

    # execution -----------------------------------------------------------------------------------------------------
    def offer(self, chunk: Chunk, now_ns: int) -> str:
        """Queue a chunk; returns '' if accepted, else why it was refused."""
        age_steps = (now_ns - chunk.stamp_ns) / self.period_ns
        if age_steps > self.timeout_steps:
            return f"stale chunk: observation {age_steps:.1f} control periods old (limit {self.timeout_steps})"
        if self._elapsed(chunk, now_ns) >= self._last(chunk):
            return "stale chunk: all of its actions up to where it would stop are in the past"
        for other in (self.pending, self.current):
            if other is not None and chunk.stamp_ns < other.stamp_ns:
                return "chunk older than the one already held"
        self.pending = chunk
        return ""

    def reset(self) -> None:
        """Drop everything (takeover, e-stop): a chunk planned before must not resume afterwards."""
        self.current = None
        self.pending = None
        self.index = 0

    def next(self, now_ns: int) -> tuple[np.ndarray | None, int, bool, str]:
        """(action, policy_version, first_of_chunk, reason if none)."""
        first = False
        done = self.current is None or self.index >= self._last(self.current)
        if done or (self.pending is not None and self.index >= self._end(self.current)):
            reason = "policy: chunk finished, next one not here" if self.pending is None else ""
            while self.pending is not None:
                c, self.pending = self.pending, None
                i = self._elapsed(c, now_ns)
                if i < self._last(c):
                    self.current, self.index, first = c, i, True
                    break
                reason = "policy: next chunk arrived too late"
            if not first and done:
                self.current = None
                return None, 0, False, reason or "policy: no chunk"
        a = self.current.actions[self.index]
        self.index += 1
        return a, self.current.version, first, ""


@dataclass(frozen=True)
class Sampler:
    """Dual-frequency sampling: f_high while the human drives, f_low (once per chunk) while the policy drives."""

    mode: str = "dual"
    human_period: int = 1  # steps between samples at f_high
    policy_period: int = 0  # steps between samples at f_low; 0 = once per chunk, at its first executed step
    k_auto: int = 20

    def __post_init__(self):
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling_mode must be one of {SAMPLING_MODES}, got {self.mode!r}")

    def _low(self, first_of_chunk: bool, seg_step: int) -> bool:
        if self.policy_period <= 0:
            return first_of_chunk
        return seg_step % self.policy_period == 0

    def is_sample(self, authority: int, first_of_chunk: bool, seg_step: int) -> bool:
        if authority == AUTHORITY_HUMAN:
            if self.mode == "fixed_low":
                return seg_step % (self.policy_period or self.k_auto) == 0
            return seg_step % max(1, self.human_period) == 0
        if authority == AUTHORITY_POLICY:
            if self.mode == "fixed_high":
                return seg_step % max(1, self.human_period) == 0
            return self._low(first_of_chunk, seg_step)
        return False

    def rate_hz(self, authority: int, control_rate_hz: float) -> float:
        high = control_rate_hz / max(1, self.human_period)
        low = control_rate_hz / (self.policy_period or self.k_auto)
        if authority == AUTHORITY_HUMAN:
            return low if self.mode == "fixed_low" else high
        if authority == AUTHORITY_POLICY:
            return high if self.mode == "fixed_high" else low
        return 0.0


@dataclass
class ArbiterConfig:
    control_rate_hz: float = 25.0
    k_auto: int = 20
    policy_timeout_steps: int = 25
    teleop_timeout_s: float = 0.25
    human_source: str = "quest3"
    sampler: Sampler = field(default_factory=Sampler)
    chunk_schedule: str = "early"
    request_margin_steps: int = 2

    @property
    def period_ns(self) -> int:
        return int(round(1e9 / self.control_rate_hz))


@dataclass
class TickResult:
    action: np.ndarray
    authority: int
    source: str
    reason: str
    clamped: bool
    is_sample: bool
    policy_version: int
    step: int
    changed: bool  # authority, source, reason or e-stop changed this period
    first_of_chunk: bool = False
    request_chunk: bool = False  # ask the policy for a chunk now


class ArbiterCore:
    def __init__(self, limits: Limits, config: ArbiterConfig):
        self.limits = limits
        self.cfg = config
        self.executor = ChunkExecutor(
            config.k_auto,
            config.period_ns,
            config.policy_timeout_steps,
            config.chunk_schedule,
            config.request_margin_steps,
        )
        self.last_cmd: np.ndarray | None = None
        self.measured: np.ndarray | None = None
        self.estop = False
        self.authority = AUTHORITY_HOLD
        self.source = "hold"
        self.reason = "starting"
        self.step = 0
        self.seg_step = 0
        self.refused = 0
        self.refused_states = 0  # measured states refused (NaN, wrong size): never held to
        self.clamped = 0
        self.policy_version = 0
        # Human input.
        self.engaged = False
        self.joy_ns: int | None = None
        self.engage_ns = 0
        self.motion_ns: int | None = None
        self.delta_p = np.zeros(3)
        self.delta_q = IDENTITY_Q.copy()
        self.joint_target: dict[str, float] = {}
        self.gripper: float | None = None
        self.anchor: np.ndarray | None = None
        self.moved_ns = 0  # when the robot was last put somewhere else (resync); chunks seen before it are stale
        self._sticky = False

    # inputs ----------------------------------------------------------------------------------------------------
    def set_measured(self, action) -> None:
        try:
            self.measured = validate(action, self.limits)
        except RefusedCommand:
            self.refused_states += 1  # a NaN / wrong-size measurement: counted, never used

    def resync(self, now_ns: int = 0) -> None:
        """The robot was put somewhere else at `now_ns` (a scene reset, a new episode): forget the last command, any
        chunk and any clutch anchor, hold wherever the next measured state says the robot is, and refuse chunks
        predicted from observations taken before (they aim at a scene that is gone)."""
        self.moved_ns = int(now_ns)  # not the max: after a restarted twin's clock went back, the new time base rules
        self.last_cmd = None
        self.measured = None
        self.anchor = None
        self.executor.reset()
        self.executor.request_ns = None  # ask again at once, naming the move: the policy's answer so far is refused

    def set_estop(self, on: bool) -> None:
        self.estop = bool(on)
        if on:
            self.executor.reset()

    def refuse(self, reason: str) -> None:
        self.refused += 1
        self.reason = reason
        self._sticky = True  # a refusal stays the reported reason until the authority changes

    def request_floor_ns(self) -> int:
        """The oldest observation a requested chunk may come from: chunks from before the robot was moved, or older
        than one already held, would be refused."""
        held = [c.stamp_ns for c in (self.executor.current, self.executor.pending) if c is not None]
        return max([self.moved_ns, *held])

    def poll_request(self, now_ns: int) -> bool:
        """Ask the policy for a chunk now? (Then it counts as asked.) Each control period, and when a chunk arrives:
        the next request then goes out at once, not a period later. Asked while the human drives too, so that a
        fresh chunk waits when the human lets go."""
        if self.estop or self.last_cmd is None or not self.executor.wants_chunk(now_ns):
            return False
        self.executor.requested(now_ns)
        return True

    def chunk_arrived(self, now_ns: int) -> None:
        """A chunk came, whether it is taken or refused: it answers the outstanding request (once)."""
        self.executor.answered(now_ns)

    def offer_chunk(self, chunk: Chunk, now_ns: int) -> str:
        self.chunk_arrived(now_ns)
        try:
            actions = np.stack([validate(a, self.limits) for a in np.asarray(chunk.actions, dtype=np.float64)])
        except RefusedCommand as e:
            why = f"refused chunk: {e}"
            self.refuse(why)
            return why
        except ValueError as e:
            why = f"refused chunk: {e}"
            self.refuse(why)
            return why
        if chunk.stamp_ns < self.moved_ns:
            why = "refused chunk: predicted from an observation taken before the robot was moved"
            self.refuse(why)
            return why
        why = self.executor.offer(Chunk(actions, chunk.stamp_ns, chunk.dt_ns, chunk.version), now_ns)
        if why:
            self.refuse(why)
        return why

    def human_joy(self, now_ns: int, engaged: bool, gripper: float | None = None) -> None:
        if engaged and not self.engaged:
            self.engage_ns = now_ns
            self.motion_ns = None
            self.delta_p, self.delta_q = np.zeros(3), IDENTITY_Q.copy()
            self.joint_target = {}
            self.anchor = None  # re-anchored at the next tick, at the commanded pose
        self.engaged = bool(engaged)
        self.joy_ns = now_ns
        if gripper is not None and np.isfinite(gripper):
            self.gripper = float(np.clip(gripper, 0.0, 1.0))

    def human_ee_delta(self, now_ns: int, dp, dq) -> None:
        dp, dq = np.asarray(dp, np.float64), np.asarray(dq, np.float64)
        if not (np.all(np.isfinite(dp)) and np.all(np.isfinite(dq)) and np.linalg.norm(dq) > 1e-9):
            self.refuse("refused teleop pose: non-finite or zero quaternion")
            return
        self.delta_p, self.delta_q = dp, dq
        self.motion_ns = now_ns

    def human_joint(self, now_ns: int, names, values) -> None:
        vals = np.asarray(values, np.float64)
        if len(names) != len(vals) or not np.all(np.isfinite(vals)):
            self.refuse("refused teleop joints: non-finite values or names/values mismatch")
            return
        known = set(self.limits.names)
        self.joint_target = {n: float(v) for n, v in zip(names, vals, strict=True) if n in known}
        self.motion_ns = now_ns

    # decisions -------------------------------------------------------------------------------------------------
    def _human_fresh(self, now_ns: int) -> bool:
        """The human's input is recent. Input stamped after `now` is not: the clock went back (a restarted sim's
        /clock), and the watchdog must not count input from before as current until the clock catches up."""
        timeout = self.cfg.teleop_timeout_s * 1e9
        if self.joy_ns is None or not 0 <= now_ns - self.joy_ns <= timeout:
            return False
        ref = self.motion_ns if self.motion_ns is not None else self.engage_ns
        return 0 <= now_ns - ref <= timeout

    def _human_target(self) -> np.ndarray:
        base = self.last_cmd.copy()
        if self.limits.mode == MODE_EE_POSE:
            if self.anchor is None:
                self.anchor = self.last_cmd.copy()
            p, q = apply_delta(self.anchor[:3], self.anchor[3:7], self.delta_p, self.delta_q)
            base[:3], base[3:7] = p, q
            if self.gripper is not None and len(base) > 7:
                base[7] = self.gripper
            return base
        for i, n in enumerate(self.limits.names):
            if n in self.joint_target:
                base[i] = self.joint_target[n]
        return base

    def tick(self, now_ns: int) -> TickResult | None:
        if self.last_cmd is None:
            if self.measured is None:
                self.reason = "waiting for the robot state"
                return None
            self.last_cmd = self.measured.copy()
        prev = (self.authority, self.source, self.reason, self.estop)
        human_fresh = self._human_fresh(now_ns)
        target, version, first, reason = None, 0, False, ""
        if self.estop:
            authority, source, reason = AUTHORITY_HOLD, "hold", "estop"
        elif self.engaged:
            if human_fresh:
                authority, source, reason = AUTHORITY_HUMAN, self.cfg.human_source, "human input"
            else:
                authority, source, reason = AUTHORITY_HOLD, "hold", "teleop stale"
        else:
            target, version, first, why = self.executor.next(now_ns)
            if target is not None:
                authority, source, reason = AUTHORITY_POLICY, "policy", "policy chunk"
            else:
                authority, source, reason = AUTHORITY_HOLD, "hold", why

        if authority != self.authority:
            self.seg_step = 0
            if authority == AUTHORITY_HUMAN:
                self.anchor = self.last_cmd.copy()  # takeover: relative control starts at the commanded pose
                self.executor.reset()
        if authority == AUTHORITY_HOLD:
            target = self.last_cmd
            self.anchor = None

        try:
            if authority == AUTHORITY_HUMAN:
                target = self._human_target()
            safe = make_safe(target, self.last_cmd, self.limits)
        except (RefusedCommand, ValueError) as e:
            self.refused += 1
            self._sticky = False
            authority, source, reason = AUTHORITY_HOLD, "hold", f"refused: {e}"
            safe = make_safe(self.last_cmd, self.last_cmd, self.limits)
            if self.authority != AUTHORITY_HOLD:
                self.seg_step = 0
        if safe.clamped:
            self.clamped += 1
        if authority == AUTHORITY_POLICY:
            self.policy_version = version
        is_sample = self.cfg.sampler.is_sample(authority, first, self.seg_step)
        request = self.poll_request(now_ns)
        self.authority, self.source = authority, source
        if authority != prev[0] or not self._sticky:
            self.reason = reason
            self._sticky = reason.startswith("refused")
        self.last_cmd = safe.action
        result = TickResult(
            action=safe.action.copy(),
            authority=authority,
            source=source,
            reason=self.reason,
            clamped=safe.clamped,
            is_sample=is_sample,
            policy_version=version if authority == AUTHORITY_POLICY else 0,
            step=self.step,
            changed=(self.authority, self.source, self.reason, self.estop) != prev,
            first_of_chunk=first,
            request_chunk=request,
        )
        self.step += 1
        self.seg_step += 1
        return result

    def sampling_rate_hz(self) -> float:
        return self.cfg.sampler.rate_hz(self.authority, self.cfg.control_rate_hz)
