"""Faces: MTCNN detection, margin crops with a fallback, and a resumable crop cache."""
