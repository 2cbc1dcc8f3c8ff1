"""Noise masks x input/target encodings, length planning, named objectives and mixtures (pure numpy)."""
