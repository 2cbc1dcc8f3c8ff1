"""Model architectures behind one interface (interface.py), chosen by name in gin (registry.py): the Flax T5
encoder-decoder and a decoder-only LM; every parameter carries logical axis names."""
