"""rviz monitoring: executed EE trajectory coloured by authority, the predicted chunk, the target, the authority."""

from __future__ import annotations

from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from hiors_core.schema import AUTHORITY_HOLD, AUTHORITY_HUMAN, AUTHORITY_POLICY

from .authority import AUTHORITY_NAMES

COLORS = {
    AUTHORITY_POLICY: (0.1, 0.4, 1.0),  # blue
    AUTHORITY_HUMAN: (1.0, 0.55, 0.0),  # orange
    AUTHORITY_HOLD: (0.6, 0.6, 0.6),  # grey
}


def _color(authority: int, alpha: float = 1.0) -> ColorRGBA:
    r, g, b = COLORS.get(authority, COLORS[AUTHORITY_HOLD])
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def build_markers(frame, stamp, trail, predicted, target, authority, source) -> MarkerArray:
    out = MarkerArray()

    def marker(mid, kind, ns):
        m = Marker(ns=ns, id=mid, type=kind, action=Marker.ADD)
        m.header.frame_id = frame
        m.header.stamp = stamp
        m.pose.orientation.w = 1.0
        return m

    m = marker(0, Marker.LINE_STRIP, "executed")
    m.scale.x = 0.005
    m.color = _color(authority)
    for p, a in trail:
        m.points.append(_point(p))
        m.colors.append(_color(a))
    out.markers.append(m)
    m = marker(1, Marker.LINE_STRIP, "predicted")
    m.scale.x = 0.003
    m.color = _color(AUTHORITY_POLICY, 0.4)
    if predicted is None:
        m.action = Marker.DELETE
    else:
        m.points = [_point(p) for p in predicted]
    out.markers.append(m)
    m = marker(2, Marker.ARROW, "target")
    m.scale.x, m.scale.y, m.scale.z = 0.08, 0.01, 0.01
    m.color = _color(authority)
    if target is None:
        m.action = Marker.DELETE
    else:
        m.pose.position = _point(target[:3])
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in target[3:7])
    out.markers.append(m)
    m = marker(3, Marker.TEXT_VIEW_FACING, "authority")
    m.scale.z = 0.06
    m.color = _color(authority)
    m.text = f"{AUTHORITY_NAMES.get(authority, '?').upper()} ({source})"
    if target is not None:
        m.pose.position = _point(target[:3])
        m.pose.position.z += 0.15
    out.markers.append(m)
    return out
