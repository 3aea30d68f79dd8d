"""The roles table, system_auth.roles, and the generators that read and write it. Sans-IO.

    CREATE TABLE system_auth.roles (role text PRIMARY KEY, can_login boolean, is_superuser boolean,
                                    member_of text, salted_hash text)

system_auth is a replicated keyspace (SimpleStrategy, replication_factor 3) defined in code, as
Cassandra's is: every node running PasswordAuthenticator creates it locally with the same creation
time (1 us) and the same table id (`TABLE_ID`), so nodes agree on it without a DDL race and the
schema merge (ring/schema_sync.py) treats every node's copy as one. member_of is Cassandra's column
(a set<text> there); GRANT ROLE is not supported, so it is always null here.

The generators are driven like ring.cql.execute's statement bodies (`yield [(op, args), ...]`
receives the replies): `read_role`, `scan_roles`, `write_role`, `delete_role`. Reads and writes
use QUORUM, and ONE when QUORUM is Unavailable (a cluster of one or two nodes, or most replicas
down), so logins and role changes keep working where Cassandra's roles cache would carry them.

`login(session, token)` is the AUTH_RESPONSE body; `setup_default_superuser()` the body the
runtime runs once per node, `superuser_setup_delay_ms` after start: if no role exists, it writes
the role `cassandra` (password `cassandra`, superuser, login) at timestamp 0, so that any later
ALTER or DROP wins and concurrent setups on several nodes are harmless.
"""
from __future__ import annotations

import logging
import uuid

from engine.errors import EngineError
from ring.cql import auth
from ring.cql.responses import AuthSuccess
from ring.errors import RequestError, UnavailableError

KEYSPACE, TABLE = "system_auth", "roles"
REPLICATION = {"class": "SimpleStrategy", "replication_factor": 3}
COLUMNS = {"role": "text", "can_login": "boolean", "is_superuser": "boolean", "member_of": "text",
           "salted_hash": "text"}
TABLE_ID = uuid.uuid5(uuid.NAMESPACE_URL, "dynatable:system_auth.roles").hex
CREATED_US = 1
DEFAULT_SUPERUSER = DEFAULT_PASSWORD = "cassandra"
SCAN_PAGE_ROWS = 1000

log = logging.getLogger("dynatable.auth")


def ensure_schema(node) -> bool:
    """Create system_auth and its roles table on this node if missing; True if it did."""
    created = False
    if KEYSPACE not in node.store.keyspaces:
        node.schema.create_keyspace(KEYSPACE, dict(REPLICATION), CREATED_US)
        created = True
    if TABLE not in node.store.keyspaces[KEYSPACE].tables:
        node.schema.create_table(KEYSPACE, TABLE, dict(COLUMNS), "role", None, None, CREATED_US, table_id=TABLE_ID)
        created = True
    return created


def _check(reply):
    if reply.error is not None:
        if isinstance(reply.error, (EngineError, RequestError)):
            raise reply.error
        raise RequestError(f"{type(reply.error).__name__}: {reply.error}")
    return reply.result


def _quorum_or_one(op: str, args: dict):
    """One op at QUORUM, again at ONE if QUORUM is unavailable (nothing was sent then)."""
    for level in ("QUORUM", "ONE"):
        (reply,) = yield [(op, dict(args, keyspace=KEYSPACE, table=TABLE, consistency=level))]
        if level == "QUORUM" and isinstance(reply.error, UnavailableError):
            continue
        return _check(reply)


def read_role(name: str):
    """The role's row (a dict) or None."""
    return (yield from _quorum_or_one("get", {"key": {"role": name}}))


def scan_roles(limit: int | None = None):
    """Every role's row, in token order (at most `limit`)."""
    rows, state = [], None
    while True:
        args = {"page_size": SCAN_PAGE_ROWS if limit is None else min(limit, SCAN_PAGE_ROWS)}
        if state is not None:
            args["paging_state"] = state
        result = yield from _quorum_or_one("scan", args)
        rows += result["rows"]
        state = result.get("paging_state")
        if state is None or (limit is not None and len(rows) >= limit):
            return rows[:limit] if limit is not None else rows


def write_role(row: dict, timestamp: int | None = None):
    args = {"row": dict(row)}
    if timestamp is not None:
        args["timestamp"] = timestamp
    yield from _quorum_or_one("insert", args)


def delete_role(name: str):
    yield from _quorum_or_one("delete", {"key": {"role": name}})


def login(session, token: bytes | None):
    """AUTH_RESPONSE: AuthSuccess and `session.user` set, or AuthenticationFailed raised."""
    user, password = auth.decode_plain(token)
    row = yield from read_role(user)
    auth.verdict(user, password, row)
    session.user = user
    return AuthSuccess()


def setup_default_superuser():
    """Returns True if this node wrote the default superuser, False if roles already existed."""
    if (yield from scan_roles(limit=1)):
        return False
    yield from write_role({"role": DEFAULT_SUPERUSER, "can_login": True, "is_superuser": True,
                           "salted_hash": auth.hash_password(DEFAULT_PASSWORD)}, timestamp=0)
    log.warning("Created default superuser role '%s' with password '%s': change it (ALTER ROLE %s WITH "
                "PASSWORD = '...'), or create another superuser and DROP ROLE %s", DEFAULT_SUPERUSER,
                DEFAULT_PASSWORD, DEFAULT_SUPERUSER, DEFAULT_SUPERUSER)
    return True
