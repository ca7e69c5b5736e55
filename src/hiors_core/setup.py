from setuptools import find_packages, setup

package_name = "hiors_core"

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
    description="Episode and sample schema, rejection sampling (threshold schedules, filters, chunk labelling), the rosbag2 episode log, message<->numpy conversion and config loading.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},
)
