"""Matching: which records a message concerns, and why (DESIGN.md "Matching")."""
