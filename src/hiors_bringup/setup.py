from glob import glob

from setuptools import find_packages, setup

package_name = "hiors_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        # launch/ and config/ are the repository's top-level folders (symlinked here) installed as package data.
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="hiors developers",
    maintainer_email="dev@hiors.org",
    description="Launch files, configs, the per-robot node graph and the hiors command.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "hiors = hiors_bringup.cli:main",
        ]
    },
)
