"""Password authentication for the CQL port (Cassandra's PasswordAuthenticator). Pure.

The node setting `authenticator` is `AllowAllAuthenticator` (the default: STARTUP is answered
READY, no login) or `PasswordAuthenticator`: STARTUP is answered AUTHENTICATE naming
org.apache.cassandra.auth.PasswordAuthenticator, the client sends one AUTH_RESPONSE holding a
SASL PLAIN token (`authzid NUL authcid NUL password`, RFC 4616; authzid is ignored, as by
Cassandra), and `login` reads the role from system_auth.roles (roles.py) and answers AUTH_SUCCESS,
or AuthenticationFailed (0x0100) "Provided username X and/or password are incorrect"; the
connection then stays unauthenticated and accepts only another AUTH_RESPONSE (connection.py).

Salted hash format (docs/cql.md#authentication), never the clear password:

    $scrypt$ln=14,r=8,p=1$<salt, base64>$<key, base64>

hashlib.scrypt with N = 2**ln, block size r, parallelism p, a 16-byte random salt and a 32-byte
key, base64 without padding. `check_password` accepts the parameters a stored hash names, within
limits (ln <= 20, r <= 32, p <= 16) so that a forged row cannot make a login eat the node's memory.
A hash that does not parse never matches. The salt is the one randomness here (os.urandom: a salt
must be unpredictable); it never steers a decision, so the simulator's runs stay replayable.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from ring.errors import AuthenticationFailed, ConfigurationError

PASSWORD_AUTHENTICATOR_CLASS = "org.apache.cassandra.auth.PasswordAuthenticator"
ALLOW_ALL, PASSWORD = "AllowAllAuthenticator", "PasswordAuthenticator"
SCRYPT_LN, SCRYPT_R, SCRYPT_P = 14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
_LN_MAX, _R_MAX, _P_MAX = 20, 32, 16
TOKEN_BYTES_MAX = 4096              # a SASL PLAIN token longer than this is refused


def authenticator_name(setting: str) -> str:
    """ALLOW_ALL or PASSWORD for the setting's value (short or fully qualified class name)."""
    short = setting.rsplit(".", 1)[-1]
    if short not in (ALLOW_ALL, PASSWORD):
        raise ConfigurationError(f"authenticator must be {ALLOW_ALL} or {PASSWORD}, not {setting!r}")
    return short


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << ln, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=(128 * r * ((1 << ln) + p + 2)) + 1024 * 1024)


def hash_password(password: str, salt: bytes | None = None, ln: int = SCRYPT_LN) -> str:
    """The salted hash stored in system_auth.roles.salted_hash."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, ln, SCRYPT_R, SCRYPT_P)
    return f"$scrypt$ln={ln},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(key)}"


def parse_hash(salted_hash: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(ln, r, p, salt, key), or None when `salted_hash` is not a hash this module writes."""
    try:
        empty, scheme, params, salt, key = salted_hash.split("$")
        fields = dict(kv.split("=", 1) for kv in params.split(","))
        ln, r, p = int(fields["ln"]), int(fields["r"]), int(fields["p"])
        if empty or scheme != "scrypt" or len(fields) != 3:
            return None
        salt_b, key_b = _unb64(salt), _unb64(key)
    except (ValueError, KeyError, AttributeError):
        return None
    if not (1 <= ln <= _LN_MAX and 1 <= r <= _R_MAX and 1 <= p <= _P_MAX and salt_b and len(key_b) == KEY_BYTES):
        return None
    return ln, r, p, salt_b, key_b


def check_password(password: str, salted_hash: str | None) -> bool:
    parsed = parse_hash(salted_hash) if isinstance(salted_hash, str) else None
    if parsed is None:
        return False
    ln, r, p, salt, key = parsed
    return hmac.compare_digest(_scrypt(password, salt, ln, r, p), key)


def decode_plain(token: bytes | None) -> tuple[str, str]:
    """(username, password) from a SASL PLAIN token; AuthenticationFailed when malformed."""
    if token is None or len(token) > TOKEN_BYTES_MAX:
        raise AuthenticationFailed("Invalid SASL PLAIN token: expected authzid NUL username NUL password "
                                   f"(at most {TOKEN_BYTES_MAX} bytes)")
    parts = token.split(b"\x00")
    if len(parts) != 3:
        raise AuthenticationFailed("Invalid SASL PLAIN token: expected authzid NUL username NUL password")
    try:
        user, password = parts[1].decode("utf-8"), parts[2].decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationFailed("Invalid SASL PLAIN token: username and password must be UTF-8") from None
    if not user:
        raise AuthenticationFailed("Authentication ID must not be null")
    if not password:
        raise AuthenticationFailed("Password must not be null")
    return user, password


def incorrect(user: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"Provided username {user} and/or password are incorrect")


def verdict(user: str, password: str, row: dict | None) -> None:
    """Raises AuthenticationFailed unless `row` (the user's system_auth.roles row, None if absent)
    matches `password` and may log in. A missing role and a wrong password get the same words."""
    if row is None or not check_password(password, row.get("salted_hash")):
        raise incorrect(user)
    if not row.get("can_login"):
        raise AuthenticationFailed(f"{user} is not permitted to log in")
