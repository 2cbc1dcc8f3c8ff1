"""Corpora, vocabulary, token store, the pretraining stream, downstream tasks and metrics."""
