"""hiors_learner: The episode filter and the asynchronous learner (buffer, flow-matching training on torch or DeepSpeed ZeRO-2, weight publishing, checkpoints and resume)."""
