"""Matching: which records a message concerns, and why (docs/architecture.md)."""
