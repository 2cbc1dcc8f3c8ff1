"""The Flax T5 encoder-decoder; every parameter carries logical axis names."""
