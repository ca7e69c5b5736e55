"""hiors_sim: MuJoCo twins of Tora One and X-Trainer with the three Hi-ORS tasks, a simulated operator and a reward oracle."""
