"""Role statements: CREATE / ALTER / DROP / LIST ROLES and their USER aliases. Parse, plan, run.

    CREATE ROLE [IF NOT EXISTS] r [WITH PASSWORD = 'p' [AND LOGIN = bool] [AND SUPERUSER = bool]]
    ALTER ROLE r WITH PASSWORD = 'p' | LOGIN = bool | SUPERUSER = bool [AND ...]
    DROP ROLE [IF EXISTS] r
    LIST ROLES [OF r] [NORECURSIVE]
    CREATE USER [IF NOT EXISTS] u [WITH PASSWORD 'p'] [SUPERUSER | NOSUPERUSER]   (a role with LOGIN)
    ALTER USER u [WITH PASSWORD 'p'] [SUPERUSER | NOSUPERUSER]
    DROP USER [IF EXISTS] u
    LIST USERS

A role name is an identifier (lower-cased unless "quoted") or a 'string' (kept as written).
Rules, Cassandra's: only a logged-in role may run these ("You have not logged in" otherwise,
Unauthorized); only superusers create, drop or list every role and change another role or
anyone's superuser status; a role may change its own password; nobody drops the role they are
logged in as. The logged-in role's superuser flag is read afresh for each statement, so an
ALTER ROLE ... SUPERUSER = false takes effect at once. Passwords are hashed here (auth.py) and
never stored, logged or echoed.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidRequest
from ring.cql import auth, roles
from ring.cql.result import ColumnSpec, Rows, RowsMetadata, Void
from ring.cql.types import parse_type
from ring.errors import Unauthorized

_OPTIONS = ("password", "login", "superuser")


@dataclass(frozen=True)
class RoleStatement:
    """verb: create | alter | drop | list; user: the USER alias; options: {password, login, superuser}."""
    verb: str
    name: str | None
    user: bool = False
    options: tuple = ()                 # ((option, value), ...)
    if_exists: bool = False             # IF EXISTS for DROP, IF NOT EXISTS for CREATE


@dataclass(frozen=True)
class RolePlan:
    statement: RoleStatement

    def operations(self, values=()) -> list:
        return []


def is_role_statement(p) -> bool:
    """Does the parser stand at a role statement (checked before the other CREATE/ALTER/DROP)?"""
    if p.tok.kind != "WORD" or p.tok.value not in ("create", "alter", "drop", "list"):
        return False
    if p.tok.value == "list":
        return p.is_word("roles", 1) or p.is_word("users", 1)
    return p.is_word("role", 1) or p.is_word("user", 1)


def parse(p) -> RoleStatement:
    verb = p.advance().value
    if verb == "list":
        user = p.advance().value == "users"
        name = None
        if not user and p.accept_word("of"):
            name = _role_name(p)
        p.accept_word("norecursive")
        return RoleStatement("list", name, user)
    user = p.advance().value == "user"
    if_exists = (p.if_not_exists() if verb == "create" else p.if_exists() if verb == "drop" else False)
    name = _role_name(p)
    if verb == "drop":
        return RoleStatement("drop", name, user, (), if_exists)
    options = _user_options(p) if user else _role_options(p)
    if verb == "alter" and not options and not user:
        p.fail(f"mismatched input '{p.tok.text}' expecting K_WITH")
    return RoleStatement(verb, name, user, options, if_exists)


def _role_name(p) -> str:
    if p.tok.kind == "STRING":
        return p.advance().value
    return p.name()


def _bool(p) -> bool:
    if p.tok.kind == "WORD" and p.tok.value in ("true", "false"):
        return p.advance().value == "true"
    p.fail(f"mismatched input '{p.tok.text}' expecting a boolean (true or false)")


def _password(p) -> str:
    if p.tok.kind != "STRING":
        p.fail(f"mismatched input '{p.tok.text}' expecting STRING_LITERAL")
    return p.advance().value


def _role_options(p) -> tuple:
    if not p.accept_word("with"):
        return ()
    options = {}
    while True:
        tok = p.tok
        if tok.kind != "WORD" or tok.value not in _OPTIONS:
            if tok.kind == "WORD" and tok.value in ("options", "access", "hashed"):
                raise InvalidRequest(f"Role option {tok.value.upper()} is not supported (docs/cql.md#authentication)")
            p.fail(f"mismatched input '{tok.text}' expecting PASSWORD, LOGIN or SUPERUSER")
        p.advance()
        p.expect_symbol("=")
        if tok.value in options:
            raise InvalidRequest(f"Multiple definition for property {tok.value}")
        options[tok.value] = _password(p) if tok.value == "password" else _bool(p)
        if not p.accept_word("and"):
            return tuple(options.items())


def _user_options(p) -> tuple:
    options = {}
    if p.accept_word("with"):
        p.expect_word("password")
        options["password"] = _password(p)
    if p.accept_word("superuser"):
        options["superuser"] = True
    elif p.accept_word("nosuperuser"):
        options["superuser"] = False
    return tuple(options.items())


def check_not_protected(statement, keyspace: str | None) -> None:
    """Roles change only through role statements: plain writes and DDL on system_auth are refused
    (SELECT, and changing its replication, are allowed)."""
    from ring.cql import ast
    inner = statement.statements if isinstance(statement, ast.Batch) else (statement,)
    for s in inner:
        if isinstance(s, (ast.Insert, ast.Update, ast.Delete, ast.CreateTable, ast.DropTable, ast.DropKeyspace,
                          ast.CreateIndex)):
            target = getattr(s, "keyspace", None) or (s.name if isinstance(s, ast.DropKeyspace) else None) or keyspace
            if target == roles.KEYSPACE:
                raise Unauthorized(f"{roles.KEYSPACE} is managed by role statements (CREATE/ALTER/DROP ROLE): "
                                   "it cannot be written or changed directly")


# -- results ----------------------------------------------------------------------------------

def _spec(name: str, cql_type: str) -> ColumnSpec:
    return ColumnSpec(roles.KEYSPACE, roles.TABLE, name, parse_type(cql_type))


LIST_ROLES_COLUMNS = (_spec("role", "text"), _spec("super", "boolean"), _spec("login", "boolean"),
                      _spec("options", "map<text, text>"), _spec("datacenters", "text"))
LIST_USERS_COLUMNS = (_spec("name", "text"), _spec("super", "boolean"), _spec("datacenters", "text"))


def result_columns(statement: RoleStatement) -> tuple:
    if statement.verb != "list":
        return ()
    return LIST_USERS_COLUMNS if statement.user else LIST_ROLES_COLUMNS


# -- execution --------------------------------------------------------------------------------

def run(session, s: RoleStatement, skip_metadata: bool = False):
    """The statement's body (driven like execute.Execution's): Void, or Rows for LIST."""
    me = getattr(session, "user", None)
    if me is None:
        raise Unauthorized("You have not logged in")
    my_row = yield from roles.read_role(me)
    superuser = bool(my_row and my_row.get("is_superuser"))
    options = dict(s.options)
    if s.verb == "list":
        return (yield from _list(s, me, superuser, skip_metadata))
    if s.verb == "alter" and s.name == me and set(options) <= {"password"}:
        pass                                              # a role may change its own password
    elif s.verb == "alter" and s.name == me and "superuser" in options:
        raise Unauthorized("You aren't allowed to alter your own superuser status")
    elif not superuser:
        raise Unauthorized(f"User {me} does not have sufficient privileges to perform the requested operation: "
                           "only superusers may manage roles")
    existing = yield from roles.read_role(s.name)
    if s.verb == "create":
        if existing is not None:
            if s.if_exists:
                return Void()
            raise InvalidRequest(f"{s.name} already exists")
        row = {"role": s.name, "can_login": options.get("login", s.user), "is_superuser": options.get("superuser", False)}
        if "password" in options:
            row["salted_hash"] = auth.hash_password(options["password"])
        yield from roles.write_role(row)
        return Void()
    if existing is None:
        if s.verb == "drop" and s.if_exists:
            return Void()
        raise InvalidRequest(f"{s.name} doesn't exist")
    if s.verb == "drop":
        if s.name == me:
            raise InvalidRequest("Cannot DROP primary role for current login")
        yield from roles.delete_role(s.name)
        return Void()
    row = {"role": s.name}
    if "password" in options:
        row["salted_hash"] = auth.hash_password(options["password"])
    if "login" in options:
        row["can_login"] = options["login"]
    if "superuser" in options:
        row["is_superuser"] = options["superuser"]
    yield from roles.write_role(row)
    return Void()


def _list(s: RoleStatement, me: str, superuser: bool, skip_metadata: bool):
    if s.name is not None:
        if not superuser and s.name != me:
            raise Unauthorized(f"You are not authorized to view roles granted to {s.name}")
        row = yield from roles.read_role(s.name)
        if row is None:
            raise InvalidRequest(f"{s.name} doesn't exist")
        found = [row]
    elif superuser:
        found = yield from roles.scan_roles()
    else:
        found = [r for r in [(yield from roles.read_role(me))] if r is not None]
    found.sort(key=lambda r: r["role"])
    if s.user:
        found = [r for r in found if r.get("can_login")]
        values = [[r["role"], bool(r.get("is_superuser")), "ALL"] for r in found]
    else:
        values = [[r["role"], bool(r.get("is_superuser")), bool(r.get("can_login")), {}, "ALL"] for r in found]
    return Rows.from_values(RowsMetadata(result_columns(s), no_metadata=skip_metadata), values)
