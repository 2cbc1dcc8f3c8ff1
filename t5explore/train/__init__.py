"""Train state, optimisers, jit steps, pretrain/fine-tune loops, checkpoints and metric writers."""
