"""Claims of notebook 10."""
