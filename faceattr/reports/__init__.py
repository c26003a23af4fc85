"""Metrics tables and pictures."""
