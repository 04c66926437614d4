"""Claims of notebook 02."""
