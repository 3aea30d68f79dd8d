"""The ring's error tree: what a coordinator tells a client, and how the client should react.

Each error carries `retryable` (toydb-style): whether sending the same request again can help.
Messages follow Cassandra's wording ("Cannot achieve consistency level QUORUM", "Operation timed
out - received only 1 responses.") and then say what happened to the data and what to do.

`InvalidRequest` and its `AlreadyExists` are the engine's classes, re-exported, so one `except InvalidRequest` serves both
packages. Programmer errors are asserts and are never caught.
"""
from __future__ import annotations

from typing import ClassVar

from engine.errors import AlreadyExists, InvalidRequest

__all__ = [
    "RequestError",
    "UnavailableError",
    "RequestTimeout",
    "WriteTimeout",
    "ReadTimeout",
    "OverloadedError",
    "InvalidRequest",
    "AlreadyExists",
    "RequestFailure",
    "ReadFailure",
    "WriteFailure",
    "ProtocolError",
    "ConfigurationError",
    "RepairFailure",
    "AuthenticationFailed",
    "Unauthorized",
    "WRITE_TYPES",
]

# Cassandra's WriteType names (native protocol strings).
WRITE_TYPES = ("SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC")


def _name(level: object) -> str:
    return getattr(level, "name", str(level))


class RequestError(Exception):
    """Base of every error a coordinator reports for one client request."""

    retryable: ClassVar[bool] = False


class UnavailableError(RequestError):
    """Fewer replicas are alive (per the failure detector) than the consistency level needs.

    Raised before anything is sent: nothing was written or read. A retry helps only once replicas come
    back, or at a lower consistency level.
    """

    retryable: ClassVar[bool] = False

    def __init__(self, level: object, required: int, alive: int, dc: str | None = None):
        self.level = level
        self.required = required
        self.alive = alive
        self.dc = dc
        where = f" in DC {dc}" if dc is not None else ""
        super().__init__(
            f"Cannot achieve consistency level {_name(level)}{where} "
            f"(required {required} live replicas, alive {alive}); nothing was sent to any replica. "
            "Retry when more replicas are up, or use a lower consistency level."
        )


class RequestTimeout(RequestError):
    """Some replicas did not answer in time. Retrying an idempotent request can help."""

    retryable: ClassVar[bool] = True


class WriteTimeout(RequestTimeout):
    """Fewer than `block_for` replicas acknowledged the write before the write timeout.

    The write may still be applied on some replicas (and will spread by hints, read repair and
    repair). Retry only if the write is idempotent; a retry with the same timestamp is harmless.
    """

    def __init__(self, level: object, received: int, block_for: int, write_type: str = "SIMPLE"):
        assert write_type in WRITE_TYPES, write_type
        self.level = level
        self.received = received
        self.block_for = block_for
        self.write_type = write_type
        super().__init__(
            f"Operation timed out - received only {received} responses "
            f"(consistency level {_name(level)} needs {block_for}, write type {write_type}). "
            "The write may still be applied; retry if it is idempotent."
        )


class ReadTimeout(RequestTimeout):
    """Fewer than `block_for` replicas answered the read before the read timeout.

    `data_present` says whether the replica asked for full data answered (digests alone cannot
    build a result). Reads are idempotent: retry.
    """

    def __init__(self, level: object, received: int, block_for: int, data_present: bool = False):
        self.level = level
        self.received = received
        self.block_for = block_for
        self.data_present = data_present
        data = "the data replica responded" if data_present else "the data replica did not respond"
        super().__init__(
            f"Operation timed out - received only {received} responses "
            f"(consistency level {_name(level)} needs {block_for}; {data}). "
            "Reads are idempotent: retry, or use a lower consistency level."
        )


class OverloadedError(RequestError):
    """The coordinator is shedding load (e.g. too many hints in flight). Back off, then retry."""

    retryable: ClassVar[bool] = True

    def __init__(self, what: str = "the coordinator is overloaded"):
        self.what = what
        super().__init__(f"{what}; back off and retry, or send to another coordinator.")


class RequestFailure(RequestError):
    """A replica answered with an error (not a timeout), so `block_for` can no longer be met."""

    retryable: ClassVar[bool] = False
    _advice: ClassVar[str] = ""

    def __init__(self, level: object, received: int, failures: int, block_for: int):
        self.level = level
        self.received = received
        self.failures = failures
        self.block_for = block_for
        super().__init__(
            f"Operation failed - received {received} responses and {failures} failures "
            f"(consistency level {_name(level)} needs {block_for}). {self._advice}"
        )


class ReadFailure(RequestFailure):
    """A replica failed the read (e.g. too many tombstones, corruption). See replica logs."""

    _advice: ClassVar[str] = "A replica failed the read; check the replicas' logs before retrying."


class WriteFailure(RequestFailure):
    """A replica failed the write. The write may be applied on the replicas that acknowledged."""

    _advice: ClassVar[str] = (
        "A replica failed the write; it may be applied on the others. Check the replicas' logs."
    )


class TruncateError(RequestError):
    """A node failed a TRUNCATE or did not answer in time: the table may be truncated on some
    nodes only. Run TRUNCATE again once every node is up."""

    retryable: ClassVar[bool] = True

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"Error during truncate: {what}; run TRUNCATE again")


class ProtocolError(RequestError):
    """A peer sent a message that does not decode (a wrong type or shape). It is dropped."""

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"malformed message from a peer: {what}; the message was dropped")


class ConfigurationError(Exception):
    """Topology or replication configuration is wrong (a bad properties line, an unknown host
    and no default). Fix the configuration; retrying cannot help."""

    retryable: ClassVar[bool] = False


class RepairFailure(RequestError):
    """A repair session could not finish (a replica down, a validation or stream error, a
    timeout). Ranges synced before the failure stay synced; run the repair again."""

    retryable: ClassVar[bool] = True

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"{what}; ranges already synced stay synced, run the repair again")


class AuthenticationFailed(RequestError):
    """Credentials were refused (CQL error 0x0100). The connection stays unauthenticated and
    accepts only another AUTH_RESPONSE: retry with the right credentials."""

    retryable: ClassVar[bool] = False


class Unauthorized(RequestError):
    """The logged-in role may not do this (CQL error 0x2100): log in as a superuser."""

    retryable: ClassVar[bool] = False
