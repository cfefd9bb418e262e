"""The one way a decider says no."""


class Rejected(Exception):
    """A command breaks a business rule: it gets a rejection result and no event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
