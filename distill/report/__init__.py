"""Rendering results: run summaries now; compare tables and the CI gate build on it."""
