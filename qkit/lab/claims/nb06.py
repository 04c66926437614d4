"""Claims of notebook 06."""
