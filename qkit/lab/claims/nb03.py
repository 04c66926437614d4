"""Claims of notebook 03."""
