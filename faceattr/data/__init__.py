"""Data in: source readers, the manifest, splits, transforms and the DataModule."""
