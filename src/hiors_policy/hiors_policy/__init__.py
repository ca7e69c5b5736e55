"""hiors_policy: The pi0 policy wrapper (transformers PI0ForConditionalGeneration), preprocessing, checkpoints, and the capture and policy (actor) nodes."""
