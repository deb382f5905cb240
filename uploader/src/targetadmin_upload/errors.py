"""The two ways a run stops short, each with its exit status (docs/uploader.md#the-result)."""


class Refused(Exception):
    """The run is refused (bad file, bad arguments, bad token): exit status 2."""


class GaveUp(Exception):
    """The server stayed unreachable or busy through every retry: exit status 3."""
