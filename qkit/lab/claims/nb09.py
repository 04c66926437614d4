"""Claims of notebook 09."""
