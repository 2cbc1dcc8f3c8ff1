"""Results directories -> DataFrames, paper-style tables and plots."""
