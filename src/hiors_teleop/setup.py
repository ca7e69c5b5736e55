from setuptools import find_packages, setup

package_name = "hiors_teleop"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml", "README.md"]),
    ],
    package_data={package_name: ["quest3/web/*.html"]},
    include_package_data=True,
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="hiors developers",
    maintainer_email="dev@hiors.org",
    description="Teleoperation device adapters (Quest 3, leader arm), the arbiter (control authority, safety, dual-frequency sampling) and the episode recorder.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "arbiter = hiors_teleop.arbiter:main",
            "recorder = hiors_teleop.recorder:main",
            "quest3_bridge = hiors_teleop.quest3.bridge:main",
            "leader_arm = hiors_teleop.leader_arm.bridge:main",
            "driver_bridge = hiors_teleop.robot_driver.bridge:main",
        ]
    },
)
