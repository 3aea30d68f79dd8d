"""Password authentication and role statements: the hash format and SASL PLAIN (pure), the
handshake through a ServerConnection (cassandra-driver's own codec on both ends), and the role
statements on a 3-node simulated cluster (virtual time)."""
import pytest

from cassandra.protocol import AuthResponseMessage, QueryMessage, StartupMessage

from engine.errors import InvalidRequest
from ring.cql import auth, roles
from ring.cql.execute import Execution
from ring.cql.parser import parse
from ring.cql.responses import AuthSuccess, Error, ErrorCode
from ring.cql.role_statements import RoleStatement
from ring.cql.server import NativeServer
from ring.errors import AuthenticationFailed
from ring.runtime.sim import Simulation
from tests.cql.cql_sim import CqlSim
from tests.cql.driver import decode_responses, request_bytes

FAST_LN = 4     # scrypt cost for hashes made only by these tests (the node uses auth.SCRYPT_LN)


# -- pure: the hash and the token ------------------------------------------------------------

def test_hash_format_is_documented_and_checks_only_the_right_password():
    h = auth.hash_password("secret", salt=b"0123456789abcdef", ln=FAST_LN)
    assert h.startswith("$scrypt$ln=4,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$") and "secret" not in h
    assert auth.check_password("secret", h)
    assert not auth.check_password("secreT", h) and not auth.check_password("", h)
    assert auth.hash_password("secret", ln=FAST_LN) != auth.hash_password("secret", ln=FAST_LN)   # salted


@pytest.mark.parametrize("bad", [None, "", "secret", "$scrypt$ln=4,r=8,p=1$c2FsdA$", "$bcrypt$ln=4,r=8,p=1$c2FsdA$AAAA",
                                 "$scrypt$ln=40,r=8,p=1$c2FsdA$" + "A" * 43, "$scrypt$ln=4,r=8$c2FsdA$" + "A" * 43,
                                 "$scrypt$ln=x,r=8,p=1$c2FsdA$" + "A" * 43, "$scrypt$ln=4,r=8,p=1$c2Fs!A$" + "A" * 43])
def test_a_malformed_or_costly_hash_never_matches(bad):
    assert not auth.check_password("secret", bad)


def test_sasl_plain_tokens():
    assert auth.decode_plain(b"\x00alice\x00pw") == ("alice", "pw")
    assert auth.decode_plain(b"authz\x00alice\x00p\xc3\xa9") == ("alice", "p\u00e9")
    for bad in (None, b"alice:pw", b"\x00\x00pw", b"\x00alice\x00", b"\x00a\x00b\x00c", b"\x00\xff\x00pw",
                b"\x00a\x00" + b"x" * 5000):
        with pytest.raises(AuthenticationFailed):
            auth.decode_plain(bad)


def test_role_statements_parse():
    assert parse("CREATE ROLE IF NOT EXISTS Alice WITH PASSWORD = 'p''w' AND LOGIN = true AND SUPERUSER = false")[0] \
        == RoleStatement("create", "alice", False, (("password", "p'w"), ("login", True), ("superuser", False)), True)
    assert parse("create user 'Bob' with password 'x' superuser;")[0] == \
        RoleStatement("create", "Bob", True, (("password", "x"), ("superuser", True)))
    assert parse('ALTER ROLE "Carol" WITH LOGIN = false')[0] == RoleStatement("alter", "Carol", False, (("login", False),))
    assert parse("ALTER USER bob NOSUPERUSER")[0] == RoleStatement("alter", "bob", True, (("superuser", False),))
    assert parse("DROP ROLE IF EXISTS bob")[0] == RoleStatement("drop", "bob", False, (), True)
    assert parse("DROP USER bob")[0] == RoleStatement("drop", "bob", True)
    assert parse("LIST ROLES OF bob NORECURSIVE")[0] == RoleStatement("list", "bob")
    assert parse("LIST USERS")[0] == RoleStatement("list", None, True)
    assert type(parse("CREATE TABLE ks.role (role int PRIMARY KEY)")[0]).__name__ == "CreateTable"
    for bad in ("ALTER ROLE bob", "CREATE ROLE bob WITH LOGIN = 1", "CREATE ROLE bob WITH PASSWORD = 3",
                "CREATE ROLE bob WITH SIZE = 3"):
        with pytest.raises(InvalidRequest):
            parse(bad)
    with pytest.raises(InvalidRequest, match="Multiple definition"):
        parse("CREATE ROLE bob WITH LOGIN = true AND LOGIN = false")


# -- the roles on a simulated cluster --------------------------------------------------------

@pytest.fixture(scope="module")
def cql():
    sim = Simulation(11, node_options={"gossip_interval_ms": 200, "phi_convict_threshold": 4.0})
    for sn in sim.nodes.values():
        roles.ensure_schema(sn.node)
    sim.run_for(3000)
    c = CqlSim(sim)
    c.agree()
    ex = Execution(sim.nodes["n1"].node, c.session("n1"), c.ids, lambda _ex: roles.setup_default_superuser())
    assert c.drive("n1", ex) is True
    ex = Execution(sim.nodes["n2"].node, c.session("n2"), c.ids, lambda _ex: roles.setup_default_superuser())
    assert c.drive("n2", ex) is False                       # roles exist: nothing written
    yield c
    sim.close()


def err(c, node, query, **kw) -> Error:
    response = c.run(node, query, **kw)
    assert isinstance(response, Error), (query, response)
    return response


def login(c, node, connection, user, password):
    session = c.session(node, connection)
    token = b"\x00" + user.encode() + b"\x00" + password.encode()
    return c.drive(node, Execution(c.sim.nodes[node].node, session, c.ids, lambda _ex: roles.login(session, token)))


def test_the_schema_is_the_same_on_every_node(cql):
    versions = {sn.node.schema.version() for sn in cql.sim.nodes.values()}
    assert len(versions) == 1
    assert {sn.node.store.table("system_auth", "roles").id for sn in cql.sim.nodes.values()} == {roles.TABLE_ID}


def test_default_superuser_logs_in_and_wrong_passwords_do_not(cql):
    assert isinstance(login(cql, "n1", 1, "cassandra", "cassandra"), AuthSuccess)
    assert cql.session("n1", 1).user == "cassandra"
    for user, password in (("cassandra", "Cassandra"), ("nobody", "cassandra")):
        e = login(cql, "n2", 1, user, password)
        assert isinstance(e, Error) and e.code == ErrorCode.BAD_CREDENTIALS
        assert e.message == f"Provided username {user} and/or password are incorrect"
    assert cql.session("n2", 1).user is None
    (row,) = cql.rows("n3", "SELECT role, salted_hash, is_superuser, can_login FROM system_auth.roles")
    assert row[0] == "cassandra" and row[1].startswith("$scrypt$ln=14,") and row[2:] == (True, True)


def test_role_lifecycle_and_who_may_manage_roles(cql):
    assert isinstance(login(cql, "n1", 2, "cassandra", "cassandra"), AuthSuccess)
    cql.ok("n1", "CREATE ROLE alice WITH PASSWORD = 'wonder' AND LOGIN = true", connection=2)
    cql.ok("n1", "CREATE ROLE IF NOT EXISTS alice WITH PASSWORD = 'other'", connection=2)
    assert "already exists" in err(cql, "n1", "CREATE ROLE alice", connection=2).message
    cql.ok("n1", "CREATE ROLE reader", connection=2)                     # no LOGIN: may not log in
    assert err(cql, "n2", "LIST ROLES", connection=2).code == ErrorCode.UNAUTHORIZED
    listed = cql.rows("n1", "LIST ROLES", connection=2)
    assert listed == [("alice", False, True, {}, "ALL"), ("cassandra", True, True, {}, "ALL"),
                      ("reader", False, False, {}, "ALL")]
    assert cql.rows("n1", "LIST USERS", connection=2) == [("alice", False, "ALL"), ("cassandra", True, "ALL")]
    assert login(cql, "n3", 3, "reader", "x").code == ErrorCode.BAD_CREDENTIALS
    assert isinstance(login(cql, "n3", 3, "alice", "wonder"), AuthSuccess)
    # alice is no superuser: she sees herself, changes her own password, and nothing else
    assert cql.rows("n3", "LIST ROLES", connection=3) == [("alice", False, True, {}, "ALL")]
    for stmt in ("CREATE ROLE eve", "DROP ROLE reader", "ALTER ROLE reader WITH LOGIN = true",
                 "ALTER ROLE alice WITH SUPERUSER = true", "LIST ROLES OF cassandra"):
        assert err(cql, "n3", stmt, connection=3).code == ErrorCode.UNAUTHORIZED, stmt
    assert err(cql, "n3", "INSERT INTO system_auth.roles (role, is_superuser) VALUES ('alice', true)",
                   connection=3).code == ErrorCode.UNAUTHORIZED
    cql.ok("n3", "ALTER ROLE alice WITH PASSWORD = 'land'", connection=3)
    assert login(cql, "n1", 4, "alice", "wonder").code == ErrorCode.BAD_CREDENTIALS
    assert isinstance(login(cql, "n1", 4, "alice", "land"), AuthSuccess)
    # superuser status is read afresh for every statement
    cql.ok("n1", "ALTER USER alice SUPERUSER", connection=2)
    cql.ok("n3", "CREATE USER bob WITH PASSWORD 'builder'", connection=3)
    assert err(cql, "n3", "DROP ROLE alice", connection=3).message == "Cannot DROP primary role for current login"
    cql.ok("n1", "DROP USER bob", connection=2)
    cql.ok("n1", "DROP ROLE IF EXISTS bob", connection=2)
    assert "doesn't exist" in err(cql, "n1", "DROP ROLE bob", connection=2).message
    assert login(cql, "n2", 5, "bob", "builder").code == ErrorCode.BAD_CREDENTIALS


def test_role_statements_need_a_login():
    sim = Simulation(3, node_options={"gossip_interval_ms": 200})
    sim.run_for(2000)
    c = CqlSim(sim)
    e = err(c, "n1", "LIST ROLES")
    assert e.code == ErrorCode.UNAUTHORIZED and e.message == "You have not logged in"
    sim.close()


# -- the handshake on one connection ---------------------------------------------------------

def _exchange(conn, msg, stream, version=4):
    out = conn.receive_data(request_bytes(msg, stream, version))
    return out, decode_responses(out.data)


def test_handshake_refuses_everything_but_auth_response_until_success(cql):
    server = NativeServer(cql.sim.nodes["n1"].node, authenticator="org.apache.cassandra.auth.PasswordAuthenticator")
    conn = server.connect()
    _, [(_, reply)] = _exchange(conn, StartupMessage(cqlversion="3.4.5", options={}), 1)
    assert type(reply).__name__ == "AuthenticateMessage" and reply.authenticator == auth.PASSWORD_AUTHENTICATOR_CLASS
    _, [(_, reply)] = _exchange(conn, QueryMessage("SELECT * FROM system.local", 1), 2)
    assert reply.code == ErrorCode.PROTOCOL_ERROR and "expecting AUTH_RESPONSE" in reply.message
    out, _ = _exchange(conn, AuthResponseMessage(b"\x00cassandra\x00wrong"), 3)
    assert out.data == b"" and len(out.requests) == 1        # the role is read through the node
    assert conn.connection.phase.name == "AUTHENTICATING"


def test_authenticator_setting_is_checked():
    from ring.errors import ConfigurationError
    from ring.runtime.config import from_dict
    assert from_dict({"authenticator": "PasswordAuthenticator"}).authenticator == "PasswordAuthenticator"
    with pytest.raises(ConfigurationError, match="authenticator must be"):
        from_dict({"authenticator": "LdapAuthenticator"})
