from setuptools import find_packages, setup

package_name = "hiors_testing"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="hiors developers",
    maintainer_email="dev@hiors.org",
    description="Test support: nodes in a background executor, waiting on graph matching, synthetic episodes, "
    "a fake policy. Used by the tests and the benchmarks, never by the robot-side nodes.",
    license="Apache-2.0",
)
