from setuptools import find_packages, setup

package_name = "hiors_sim"

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
    description="MuJoCo twins of Tora One and X-Trainer with the three Hi-ORS tasks, a simulated operator and a reward oracle.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_node = hiors_sim.sim_node:main",
            "sim_operator = hiors_sim.operator_node:main",
            "reward_oracle = hiors_sim.oracle_node:main",
            "episode_runner = hiors_sim.episode_runner:main",
        ]
    },
)
