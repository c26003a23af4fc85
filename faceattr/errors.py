"""The project's own error types: each message names the file or key at fault and the fix."""


class FaceAttrError(Exception):
    """Base class for every error faceattr raises on purpose (bad input, bad config)."""


class ConfigError(FaceAttrError):
    """A config key or value that makes no sense."""


class DatasetError(FaceAttrError):
    """A dataset on disk that does not follow its documented layout."""


class ManifestError(FaceAttrError):
    """A manifest table with a missing column or an invalid value."""


class ImageLoadError(FaceAttrError):
    """An image file that cannot be used; `reason` is a short machine-readable tag."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


class NothingReadable(FaceAttrError):
    """Every input of one kind (photos, videos) was unreadable: nothing of that kind to write."""


class Interrupted(FaceAttrError):
    """The user stopped a long run (Ctrl-C): what it finished is kept, and the message says how to go on."""


class TrainingDiverged(FaceAttrError):
    """The loss became NaN or infinite."""
