"""Protocol code under ring/ (outside runtime/ and the client driver) stays deterministic: it
never reads the real clock, global randomness, uuid4/uuid1, os.urandom, and never touches threads,
sockets or asyncio. Those are injected, so the same code runs on TCP and in the seeded simulator."""
import ast
import pathlib

RING = pathlib.Path(__file__).resolve().parents[2] / "ring"
EXEMPT = {"client/sync.py", "client/aio.py"}  # the Python client's drivers own sockets and clocks
BANNED_MODULES = {"socket", "threading", "asyncio", "selectors", "concurrent", "multiprocessing", "secrets"}
BANNED_CALLS = {
    ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("time", "sleep"), ("time", "time_ns"),
    ("time", "monotonic_ns"), ("os", "urandom"), ("uuid", "uuid4"), ("uuid", "uuid1"),
    ("datetime", "now"), ("datetime", "utcnow"), ("date", "today"),
}
GLOBAL_RANDOM = {"random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
                 "getrandbits", "seed", "gauss"}


def violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    found.append(f"{path.name}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in BANNED_MODULES:
                found.append(f"{path.name}:{node.lineno} imports from {node.module}")
            if root in ("time", "random", "uuid", "os") and any(
                    (root, a.name) in BANNED_CALLS or (root == "random" and a.name in GLOBAL_RANDOM)
                    for a in node.names):
                found.append(f"{path.name}:{node.lineno} imports a banned name from {node.module}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pair = (node.value.id, node.attr)
            if pair in BANNED_CALLS or (node.value.id == "random" and node.attr in GLOBAL_RANDOM):
                found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def protocol_files():
    files = sorted(RING.glob("*.py")) + sorted((RING / "client").glob("*.py"))  # the client's core is sans-IO too
    return [p for p in files if p.relative_to(RING).as_posix() not in EXEMPT]


def test_ring_protocol_code_is_deterministic():
    problems = [v for p in protocol_files() for v in violations(p)]
    assert not problems, "inject clocks, rng and transport instead:\n" + "\n".join(problems)


def test_the_guard_catches_each_banned_use(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time, random, uuid, os, socket\nfrom threading import Thread\n"
                   "a = time.time()\nb = random.random()\nc = uuid.uuid4()\nd = os.urandom(4)\n")
    found = violations(bad)
    for what in ("imports socket", "imports from threading", "time.time", "random.random", "uuid.uuid4", "os.urandom"):
        assert any(what in f for f in found), (what, found)
    good = tmp_path / "good.py"
    good.write_text("import random\nrng = random.Random('seed:net')\nx = rng.random()\n")
    assert violations(good) == []
    assert len(protocol_files()) >= 12
