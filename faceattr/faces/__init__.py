"""Faces: detection (a registry of detectors, and MTCNN), margin crops with a fallback, a resumable crop cache."""
