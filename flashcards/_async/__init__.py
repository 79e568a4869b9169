"""Async service layer: the single source of truth."""
