"""User-facing errors: each message is one paragraph naming the file, the key or layer, and the fix."""


class AccelsimError(Exception):
    """Base class for errors caused by user input; the CLI prints the message and exits non-zero."""


class WorkloadError(AccelsimError):
    """A workload trace is malformed, inconsistent or unsafe to load."""


class ArchError(AccelsimError):
    """An architecture description is malformed or describes impossible hardware."""
