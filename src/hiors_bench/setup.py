from setuptools import find_packages, setup

package_name = "hiors_bench"

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
    description="Measurement: the micro benchmarks, the paper's comparison, the learning benchmark, the reliability "
    "runs and docs/RESULTS.md; `hiors bench`.",
    license="Apache-2.0",
    entry_points={"hiors.commands": ["bench = hiors_bench.cli:add_command"]},
)
