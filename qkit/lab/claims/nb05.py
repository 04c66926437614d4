"""Claims of notebook 05."""
