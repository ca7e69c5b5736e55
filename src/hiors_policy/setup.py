from setuptools import find_packages, setup

package_name = "hiors_policy"

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
    description="The pi0 policy wrapper (transformers PI0ForConditionalGeneration), preprocessing, checkpoints, and the capture and policy (actor) nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "capture = hiors_policy.capture_node:main",
            "policy = hiors_policy.policy_node:main",
        ]
    },
)
