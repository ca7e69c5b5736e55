"""MJCF models of the two robots, built in Python from primitive shapes with the real kinematic structure.

Joint ranges come from `hiors_core.robots` (the one place for robot facts). Every arm ends in a hand body whose
local +z axis is the approach direction; the end-effector site ``<arm>_ee`` sits between the finger pads with the
hand's orientation, so an end-effector pose is the pose of that site in the base frame (= the MuJoCo world frame).

Grippers are two slide fingers per hand (``<arm>_gripper`` and ``<arm>_gripper_b``), both driven to the same
target; the opening 0..1 maps linearly onto 0..FINGER_TRAVEL of each finger.

Task objects are added by the task (`tasks.py`) as an XML fragment, so one function builds one scene.
"""

from __future__ import annotations

import numpy as np

from hiors_core.robots import TORA_ONE, XTRAINER, RobotSpec

FINGER_TRAVEL = 0.045  # m of travel per finger: opening 1.0 = 9.4 cm between the pads
PHYSICS_DT = 0.002
EE_OFFSET = 0.10  # hand frame origin (wrist) to the grasp point between the pads, along the approach axis

_HEADER = """
<mujoco model="{name}">
  <compiler angle="radian" inertiafromgeom="auto" autolimits="true"/>
  <option timestep="{dt}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>
  <default>
    <joint damping="2" armature="0.05"/>
    <geom contype="0" conaffinity="0" rgba="0.75 0.75 0.78 1" friction="1.2 0.01 0.001"/>
    <default class="col">
      <geom contype="1" conaffinity="1" condim="4" solref="0.005 1"/>
    </default>
    <default class="finger">
      <geom contype="1" conaffinity="1" condim="4" friction="2.0 0.02 0.002" solref="0.004 1" rgba="0.15 0.15 0.15 1"/>
      <joint damping="5" armature="0.01"/>
    </default>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.35 0.4 0.45" rgb2="0.3 0.33 0.38" width="64" height="64"/>
    <material name="floor" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" diffuse="0.6 0.6 0.6" castshadow="false"/>
    <geom name="floor" class="col" type="plane" size="3 3 0.1" pos="0 0 {floor_z}" material="floor"/>
"""


def _f(v) -> str:
    return " ".join(f"{x:.6g}" for x in v)


def _inertial(mass: float = 0.6, r: float = 0.04) -> str:
    i = 0.5 * mass * r * r
    return f'<inertial pos="0 0 0" mass="{mass}" diaginertia="{i:.6g} {i:.6g} {i:.6g}"/>'


def lookat_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MuJoCo camera `xyaxes` for a camera at `pos` looking at `target` (cameras look along their -z)."""
    pos, target, up = (np.asarray(v, dtype=float) for v in (pos, target, up))
    f = target - pos
    f /= np.linalg.norm(f)
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    return _f(np.concatenate([x, y]))


def _hand(side: str, joint: str, lo: float, hi: float, quat, camera: bool) -> str:
    """Hand body (last joint rolls about the approach axis +z), palm, two slide fingers and the EE site."""
    cam = (
        f'<camera name="{side}_wrist" pos="0.09 0 0.03" xyaxes="{lookat_xyaxes((0.09, 0, 0.03), (0, 0, 0.3), (1, 0, 0))}" fovy="75"/>'
        if camera
        else ""
    )
    fingers = ""
    for suffix, sign in (("", 1), ("_b", -1)):
        fingers += f"""
          <body name="{side}_finger{suffix}" pos="0 0 {EE_OFFSET}">
            {_inertial(0.05, 0.01)}
            <joint name="{side}_gripper{suffix}" class="finger" type="slide" axis="0 {sign} 0" range="0 {FINGER_TRAVEL}"/>
            <geom name="{side}_pad{suffix}" class="finger" type="box" size="0.012 0.006 0.03" pos="0 {sign * 0.008} 0"/>
          </body>"""
    return f"""
        <body name="{side}_hand" quat="{_f(quat)}" gravcomp="1">
          {_inertial(0.4, 0.04)}
          <joint name="{joint}" axis="0 0 1" range="{lo} {hi}"/>
          <geom name="{side}_palm" class="col" type="box" size="0.03 0.06 0.015" pos="0 0 0.04" rgba="0.2 0.2 0.22 1"/>
          <site name="{side}_ee" pos="0 0 {EE_OFFSET}" size="0.006" rgba="1 0.2 0.2 0.6"/>
          {cam}{fingers}
        </body>"""


def _chain(side: str, spec: RobotSpec, links: list[tuple], hand_quat, camera: bool) -> str:
    """Nested bodies: `links` = [(pos, axis, geom_xml), ...] for all joints but the last (the hand's roll)."""
    arm = spec.arm(side)
    xml, close = "", ""
    for i, (pos, axis, geom) in enumerate(links):
        xml += f"""
      <body name="{side}_link{i + 1}" pos="{_f(pos)}" gravcomp="1">
        {_inertial()}
        <joint name="{arm.joint_names[i]}" axis="{_f(axis)}" range="{arm.lower[i]} {arm.upper[i]}"/>
        {geom}"""
        close += "\n      </body>"
    n = len(links)
    return xml + _hand(side, arm.joint_names[n], arm.lower[n], arm.upper[n], hand_quat, camera) + close


def _capsule(to, r=0.035, rgba="0.8 0.8 0.82 1") -> str:
    return f'<geom type="capsule" fromto="0 0 0 {_f(to)}" size="{r}" rgba="{rgba}"/>'


def _actuators(spec: RobotSpec, kp: float) -> str:
    out = ""
    for arm in spec.arms:
        for j in arm.joint_names:
            out += f'    <position name="{j}" joint="{j}" kp="{kp}" kv="{0.1 * kp:.4g}" forcerange="-150 150"/>\n'
    for arm in spec.arms:
        for suffix in ("", "_b"):
            j = f"{arm.gripper_name}{suffix}"
            out += f'    <position name="{j}" joint="{j}" kp="400" kv="10" forcerange="-25 25" ctrlrange="0 {FINGER_TRAVEL}"/>\n'
    return out


def tora_one_xml(task_xml: str = "", task_actuators: str = "") -> str:
    """Paxini Tora One: torso on a pedestal with two 7-DoF arms (shoulder pitch/roll/yaw, elbow, forearm yaw,
    wrist pitch, hand roll) and parallel grippers; `top` head camera and a `left_wrist` camera."""
    spec = TORA_ONE
    la = spec.arm("left").link_lengths  # shoulder offset, upper arm, forearm, wrist-to-EE
    shoulder_z = 1.2
    arms = ""
    for side, sy in (("left", 1.0), ("right", -1.0)):
        links = [
            (
                (0.0, sy * (0.10 + la[0]), shoulder_z),
                (0, 1, 0),
                '<geom type="sphere" size="0.055" rgba="0.3 0.3 0.35 1"/>',
            ),
            ((0, 0, 0), (1, 0, 0), ""),
            ((0, 0, 0), (0, 0, 1), _capsule((0, 0, -la[1]))),
            ((0, 0, -la[1]), (0, 1, 0), _capsule((0, 0, -0.12), 0.032)),
            ((0, 0, -0.12), (0, 0, 1), _capsule((0, 0, -(la[2] - 0.12)), 0.03)),
            ((0, 0, -(la[2] - 0.12)), (0, 1, 0), '<geom type="sphere" size="0.032"/>'),
        ]
        arms += _chain(side, spec, links, (0, 1, 0, 0), camera=(side == "left"))
    head_pos = (0.13, 0.0, 1.52)
    xml = _HEADER.format(name="tora_one", dt=PHYSICS_DT, floor_z=0.0)
    xml += f"""
    <body name="torso" pos="0 0 0">
      <geom type="cylinder" size="0.18 0.45" pos="-0.05 0 0.45" rgba="0.25 0.27 0.3 1"/>
      <geom type="box" size="0.1 0.2 0.2" pos="-0.02 0 1.12" rgba="0.85 0.85 0.88 1"/>
      <geom type="sphere" size="0.1" pos="0 0 1.48" rgba="0.9 0.9 0.92 1"/>
      <camera name="top" pos="{_f(head_pos)}" xyaxes="{lookat_xyaxes(head_pos, (0.5, 0.15, 0.8))}" fovy="70"/>
      {arms}
    </body>
    {task_xml}
  </worldbody>
  <actuator>
{_actuators(spec, 600.0)}{task_actuators}  </actuator>
</mujoco>"""
    return xml


def xtrainer_xml(task_xml: str = "", task_actuators: str = "") -> str:
    """Dobot X-Trainer: two 6-DoF arms (base yaw, shoulder pitch, elbow pitch, forearm roll, wrist pitch, hand
    roll) with parallel grippers on a table (table top = z 0); `top`, `left_wrist`, `right_wrist` cameras."""
    spec = XTRAINER
    ll = spec.arm("left").link_lengths  # base height, upper arm, forearm, wrist-to-EE
    arms = ""
    for side, sy in (("left", 1.0), ("right", -1.0)):
        links = [
            (
                (-0.22, sy * 0.25, 0.0),
                (0, 0, 1),
                f'<geom type="cylinder" fromto="0 0 0 0 0 {ll[0]}" size="0.045" rgba="0.2 0.2 0.25 1"/>',
            ),
            ((0, 0, ll[0]), (0, 1, 0), _capsule((0, 0, ll[1]), 0.03)),
            ((0, 0, ll[1]), (0, 1, 0), '<geom type="sphere" size="0.032"/>'),
            ((0, 0, 0), (1, 0, 0), _capsule((ll[2], 0, 0), 0.027)),
            ((ll[2], 0, 0), (0, 1, 0), '<geom type="sphere" size="0.028"/>'),
        ]
        s = np.sqrt(0.5)
        arms += _chain(side, spec, links, (s, 0, s, 0), camera=True)
    top_pos = (-0.55, 0.0, 0.8)
    xml = _HEADER.format(name="xtrainer", dt=PHYSICS_DT, floor_z=-0.75)
    xml += f"""
    <geom name="table" class="col" type="box" size="0.6 0.6 0.02" pos="0 0 -0.02" rgba="0.55 0.45 0.35 1"/>
    <camera name="top" pos="{_f(top_pos)}" xyaxes="{lookat_xyaxes(top_pos, (0.1, 0.0, 0.0))}" fovy="60"/>
    {arms}
    {task_xml}
  </worldbody>
  <actuator>
{_actuators(spec, 400.0)}{task_actuators}  </actuator>
</mujoco>"""
    return xml


BUILDERS = {"tora_one": tora_one_xml, "xtrainer": xtrainer_xml}
