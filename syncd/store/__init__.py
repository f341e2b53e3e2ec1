"""Persistence: all SQL lives in this package."""
