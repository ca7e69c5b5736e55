"""Measurement apart from the product: `hiors bench` and its figures, tables and docs/RESULTS.md."""
