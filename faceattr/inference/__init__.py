"""Checkpoints -> predictions."""
