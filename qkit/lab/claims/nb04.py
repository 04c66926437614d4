"""Claims of notebook 04."""
