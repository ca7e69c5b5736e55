from setuptools import find_packages, setup

package_name = "hiors_learner"

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
    description="The episode filter and the asynchronous learner (buffer, flow-matching training on torch or DeepSpeed ZeRO-2, weight publishing, checkpoints and resume).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "episode_filter = hiors_learner.filter_node:main",
            "learner = hiors_learner.learner_node:main",
        ]
    },
)
