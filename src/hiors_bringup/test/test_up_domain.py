"""hiors up gives a simulated run a ROS 2 domain of its own unless the environment names one."""

from hiors_bringup.up import SIM_DOMAINS, sim_domain


def test_a_run_without_a_domain_gets_its_own_localhost_one():
    env = {}
    line = sim_domain(env, pid=4242)
    assert SIM_DOMAINS[0] <= int(env["ROS_DOMAIN_ID"]) < SIM_DOMAINS[1]
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}" in line  # where to point rviz
    other = {}
    sim_domain(other, pid=4243)
    assert other["ROS_DOMAIN_ID"] != env["ROS_DOMAIN_ID"]  # two runs at once do not share one


def test_a_domain_the_environment_names_is_kept():
    env = {"ROS_DOMAIN_ID": "7", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert sim_domain(env, pid=4242) == "hiors up: ROS 2 domain 7 (from ROS_DOMAIN_ID)"
    assert env == {"ROS_DOMAIN_ID": "7", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
