"""faceattr: train, evaluate and serve face-attribute classifiers (mask state, gender, age)."""

__version__ = "0.1.0"
