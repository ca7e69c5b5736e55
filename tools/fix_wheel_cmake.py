"""Point the ROS wheels' CMake export files at this venv's Python and numpy include directories.

The wheels were built under /opt/python/cp311-cp311; their exported targets name include paths there,
and CMake refuses imported targets whose include paths do not exist.
"""

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main(venv: str) -> int:
    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    pattern = re.compile(r"/opt/python/cp3\d+-cp3\d+/[^\s;\"']*")

    def replace(match: re.Match) -> str:
        path = match.group(0)
        if "numpy" in path:
            return np_inc
        if "/include/python3" in path:
            return py_inc
        return path

    changed = 0
    for f in Path(venv, "share").rglob("*.cmake"):
        text = f.read_text()
        new = pattern.sub(replace, text)
        if new != text:
            f.write_text(new)
            changed += 1
    print(f"[setup] pointed {changed} CMake files at {py_inc} and {np_inc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
