"""Fleet rollout: run one library version on every device in checkpointed batches."""
