"""Claims of notebook 07."""
