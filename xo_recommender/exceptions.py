"""Errors callers of the public functions may want to catch."""


class RecommenderError(Exception):
    """Base class of the app's own errors."""


class UnknownUser(RecommenderError, LookupError):
    """No such user in the host's user table."""


class InactiveUser(RecommenderError):
    """The user exists but is not active: no recommendations are served for them."""


class ModelNotReady(RecommenderError):
    """No model version has been built yet: run ``manage.py rebuild_recommendations``."""


class RebuildFailed(RecommenderError):
    """A rebuild did not finish; the previously active version keeps serving."""


class UnknownBusiness(RecommenderError, LookupError):
    """No such business in the host's business table."""


class InvalidArgument(RecommenderError, ValueError):
    """A caller's argument is not acceptable; ``field`` names it (the API answers 400).

    A ``ValueError`` too, so code that caught those keeps working. Any other error is a
    fault of the server, not of the request.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
