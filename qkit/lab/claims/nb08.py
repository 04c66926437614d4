"""Claims of notebook 08."""
