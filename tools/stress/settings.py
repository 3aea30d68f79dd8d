"""`dynatable stress` settings: cassandra-stress's command line, parsed by a pure function.

    parse(["write", "n=100000", "cl=QUORUM", "-rate", "threads=32", "-node", "127.0.0.1:9100",
           "-col", "n=5", "size=fixed(34)", "-pop", "dist=uniform(1..100000)"])  -> StressSettings

Shape (as cassandra-stress): COMMAND, then the command's `key=value` words, then option groups
(`-rate ...`, `-node ...`, `-col ...`, `-pop ...`, `-schema ...`, `-mode ...`, `-seed N`), each
followed by its own words, and the output flags `--json FILE`, `--csv FILE`, `--plot FILE.png`.
`ycsb` takes YCSB's words instead: `--workload a`, `load` / `run` (default both), `-p name=value`,
`-threads N`, `-target OPS` (see tools/stress/ycsb.py). Every error is an InvalidRequest naming
the bad word and what to write instead; nothing runs before the whole line parses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.errors import InvalidRequest
from tools.stress.distribution import Fixed, Gaussian, Sequence, parse_distribution

COMMANDS = ("write", "read", "mixed", "ycsb")
LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
MIXED_KINDS = ("write", "read")
DEFAULT_POPULATION = 1_000_000          # cassandra-stress: seq / gaussian over 1..n, else 1..1,000,000
DEFAULT_PORT = 9100
THREADS_MAX = 4096
N_MAX = 10**10
DURATION_MAX_S = 7 * 24 * 3600
RATE_MAX = 10_000_000
COLUMNS_MAX = 1000
COLUMN_BYTES_MAX = 1 << 20
YCSB_WORKLOADS = "abcdef"
ONE_VALUE_OPTIONS = ("-threads", "-target", "-p", "-seed")   # words after their value are command words


@dataclass
class StressSettings:
    command: str
    n: int | None = None
    duration_s: float | None = None
    consistency: str = "LOCAL_ONE"
    ratio: dict[str, int] = field(default_factory=lambda: {"write": 1, "read": 1})
    threads: int = 32
    rate: float | None = None            # target ops/s (throttle= or fixed=); None = closed loop
    rate_mode: str | None = None         # "throttle" or "fixed" as written; both are schedule-based
    nodes: list[str] = field(default_factory=list)   # empty: the current local cluster, else 127.0.0.1:9100
    population: object = None
    col_count: object = field(default_factory=lambda: Fixed(5))
    col_size: object = field(default_factory=lambda: Fixed(34))
    keyspace: str = "keyspace1"
    table: str = "standard1"
    replication_factor: int = 1
    cluster_name: str | None = None
    secret: str = ""
    protocol: str = "dynatable"          # "dynatable" (the own protocol) or "cql" (cql_mode.py)
    node_words: list[str] = field(default_factory=list)   # -node as written (CQL mode's default port differs)
    user: str | None = None              # CQL mode: PlainTextAuthProvider credentials
    password: str | None = None
    timeout_s: float = 12.0
    seed: int | None = None
    json_path: str | None = None
    csv_path: str | None = None
    plot_path: str | None = None
    quiet: bool = False
    ycsb_workload: str | None = None
    ycsb_phases: tuple[str, ...] = ()     # () = both, load then run
    ycsb_properties: dict[str, str] = field(default_factory=dict)

    @property
    def open_loop(self) -> bool:
        return self.rate is not None


def parse_count(text: str, what: str, low: int = 1, high: int = N_MAX) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kmb]?)\s*", str(text), re.IGNORECASE)
    if not m:
        raise InvalidRequest(f"bad {what} {text!r}: write a whole number, e.g. 100000 or 100k")
    v = int(m[1]) * {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}[m[2].lower()]
    if not low <= v <= high:
        raise InvalidRequest(f"bad {what} {text!r}: must be between {low} and {high}")
    return v


def parse_duration(text: str, what: str = "duration") -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise InvalidRequest(f"bad {what} {text!r}: write seconds, minutes or hours, e.g. 30s, 5m, 1h")
    v = float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[(m[2] or "s").lower()]
    if not 0 < v <= DURATION_MAX_S:
        raise InvalidRequest(f"bad {what} {text!r}: must be more than 0 and at most 7 days")
    return v


def parse_rate(text: str, what: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(/s)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise InvalidRequest(f"bad {what} {text!r}: write operations per second, e.g. {what.split('=')[0]}=5000/s")
    v = float(m[1])
    if not 0 < v <= RATE_MAX:
        raise InvalidRequest(f"bad {what} {text!r}: must be more than 0 and at most {RATE_MAX:,}/s")
    return v


def parse_level(text: str) -> str:
    level = str(text).strip().upper()
    if level not in LEVELS:
        raise InvalidRequest(f"bad cl={text!r}: use one of {', '.join(LEVELS)}")
    return level


def parse_endpoints(text: str) -> list[str]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, str(DEFAULT_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidRequest(f"bad -node {part!r}: write HOST or HOST:PORT, e.g. 127.0.0.1:9100")
        out.append(f"{host}:{int(port)}")
    if not out:
        raise InvalidRequest("-node needs at least one HOST[:PORT]")
    return out


def _kv(word: str, group: str) -> tuple[str, str]:
    key, sep, value = word.partition("=")
    if not sep or not key:
        raise InvalidRequest(f"bad word {word!r} after {group}: write KEY=VALUE")
    return key.strip().lower(), value.strip()


def _split(argv: list[str]) -> tuple[list[str], list[tuple[str, list[str]]], dict[str, str]]:
    """(command words, [(option, its words)], {--flag: value})."""
    words: list[str] = []
    groups: list[tuple[str, list[str]]] = []
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        w = argv[i]
        if w.startswith("--"):
            if w in ("--quiet", "-q"):
                flags[w] = "1"
                i += 1
                continue
            if i + 1 >= len(argv):
                raise InvalidRequest(f"{w} needs a value, e.g. {w} out.{w[2:]}")
            flags[w] = argv[i + 1]
            i += 2
            continue
        if w.startswith("-") and len(w) > 1 and not re.fullmatch(r"-\d.*", w):
            groups.append((w.lower(), []))
        elif groups and not (groups[-1][0] in ONE_VALUE_OPTIONS and groups[-1][1]):
            groups[-1][1].append(w)
        else:
            words.append(w)
        i += 1
    return words, groups, flags


def _parse_ratio(word: str) -> dict[str, int]:
    m = re.fullmatch(r"\s*ratio\s*\((.*)\)\s*", word, re.IGNORECASE)
    assert m
    ratio = {}
    for part in (p for p in m[1].split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in MIXED_KINDS or not value.strip().isdigit():
            raise InvalidRequest(f"bad {word!r}: write ratio(write=1,read=3) (kinds: write, read; whole numbers)")
        ratio[key] = int(value)
    if not ratio or sum(ratio.values()) == 0:
        raise InvalidRequest(f"bad {word!r}: at least one kind needs a weight above 0")
    return ratio


def _command_word(s: StressSettings, w: str) -> None:
    if re.match(r"\s*ratio\s*\(", w, re.IGNORECASE):
        if s.command != "mixed":
            raise InvalidRequest(f"{w!r} only applies to `mixed`")
        s.ratio = _parse_ratio(w)
        return
    if w.lower() in ("load", "run") and s.command == "ycsb":
        s.ycsb_phases = tuple(p for p in ("load", "run") if p in s.ycsb_phases or p == w.lower())
        return
    key, value = _kv(w, s.command)
    if key == "n":
        s.n = parse_count(value, "n=")
    elif key == "duration":
        s.duration_s = parse_duration(value, "duration=")
    elif key == "cl":
        s.consistency = parse_level(value)
    elif key == "workload" and s.command == "ycsb":
        _set_workload(s, value)
    else:
        raise InvalidRequest(f"unknown word {w!r} for `{s.command}`: expected n=, duration=, cl=, "
                             + ("ratio(...)" if s.command == "mixed" else "workload=, load, run"
                                if s.command == "ycsb" else "or an option group such as -rate"))


def _set_workload(s: StressSettings, value: str) -> None:
    w = value.strip().lower().removeprefix("workload")
    if w not in YCSB_WORKLOADS or len(w) != 1:
        raise InvalidRequest(f"bad YCSB workload {value!r}: use one of a, b, c, d, e, f")
    s.ycsb_workload = w


def _group(s: StressSettings, name: str, words: list[str]) -> None:
    if name == "-rate":
        for w in words:
            key, value = _kv(w, name)
            if key == "threads":
                s.threads = parse_count(value, "-rate threads=", 1, THREADS_MAX)
            elif key in ("throttle", "fixed"):
                s.rate, s.rate_mode = parse_rate(value, f"{key}="), key
            else:
                raise InvalidRequest(f"unknown -rate word {w!r}: use threads=N, throttle=N/s or fixed=N/s")
    elif name == "-node":
        if not words:
            raise InvalidRequest("-node needs HOST[:PORT][,HOST[:PORT]...]")
        s.nodes = [ep for w in words for ep in parse_endpoints(w)]
        s.node_words = list(words)
    elif name == "-col":
        for w in words:
            key, value = _kv(w, name)
            if key == "n":
                s.col_count = _bounded(parse_distribution(value, "-col n=", 1), "-col n=", COLUMNS_MAX)
            elif key == "size":
                s.col_size = _bounded(parse_distribution(value, "-col size=", 0), "-col size=", COLUMN_BYTES_MAX)
            else:
                raise InvalidRequest(f"unknown -col word {w!r}: use n=DIST and size=DIST, e.g. n=5 size=fixed(34)")
    elif name == "-pop":
        for w in words:
            key, value = _kv(w, name)
            if key == "seq":
                d = parse_distribution(f"seq({value})", "-pop seq=", 0)
            elif key == "dist":
                d = parse_distribution(value, "-pop dist=", 0)
            else:
                raise InvalidRequest(f"unknown -pop word {w!r}: use seq=MIN..MAX or dist=uniform(MIN..MAX)")
            s.population = d
    elif name == "-schema":
        for w in words:
            m = re.fullmatch(r"\s*replication\s*\(\s*factor\s*=\s*(\d+)\s*\)\s*", w, re.IGNORECASE)
            if m:
                s.replication_factor = parse_count(m[1], "replication(factor=)", 1, 100)
                continue
            key, value = _kv(w, name)
            if key == "keyspace" and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,47}", value):
                s.keyspace = value
            else:
                raise InvalidRequest(f"bad -schema word {w!r}: use replication(factor=N) or keyspace=NAME "
                                     "(letters, digits, _)")
    elif name == "-mode":
        for w in words:
            if w.lower() in ("cql", "cql3", "native"):   # cassandra-stress says `-mode native cql3`
                s.protocol = "cql"
                continue
            key, value = _kv(w, name)
            if key in ("user", "password"):
                setattr(s, key, value)
            elif key == "cluster-name":
                s.cluster_name = value
            elif key == "secret":
                s.secret = value
            elif key == "timeout":
                s.timeout_s = parse_duration(value, "-mode timeout=")
            else:
                raise InvalidRequest(f"unknown -mode word {w!r}: use cql, user=U, password=P, cluster-name=NAME, "
                                     "secret=S or timeout=12s")
    elif name == "-seed":
        if len(words) != 1 or not words[0].isdigit():
            raise InvalidRequest("-seed takes one whole number, e.g. -seed 42")
        s.seed = int(words[0])
    elif name in ("-threads", "-target", "-p") and s.command == "ycsb":
        _ycsb_group(s, name, words)
    else:
        known = "-rate, -node, -col, -pop, -schema, -mode, -seed" + (", -p, -threads, -target"
                                                                      if s.command == "ycsb" else "")
        raise InvalidRequest(f"unknown option {name!r}: use {known}")


def _ycsb_group(s: StressSettings, name: str, words: list[str]) -> None:
    if len(words) != 1:
        raise InvalidRequest(f"{name} takes one value, e.g. {name} " + {"-threads": "8", "-target": "1000",
                                                                         "-p": "recordcount=1000"}[name])
    if name == "-threads":
        s.threads = parse_count(words[0], "-threads", 1, THREADS_MAX)
    elif name == "-target":
        s.rate, s.rate_mode = parse_rate(words[0], "-target"), "fixed"
    else:
        key, value = _kv(words[0], "-p")
        s.ycsb_properties[key] = value


def _bounded(dist, what: str, high: int):
    if dist.high > high:
        raise InvalidRequest(f"bad {what}{dist}: at most {high:,}")
    return dist


def parse(argv: list[str]) -> StressSettings:
    words, groups, flags = _split(list(argv))
    if not words:
        raise InvalidRequest("which workload? `dynatable stress write|read|mixed|ycsb ...` "
                             "(see `dynatable stress help`)")
    command = words[0].lower()
    if command not in COMMANDS:
        raise InvalidRequest(f"unknown stress command {words[0]!r}: use write, read, mixed or ycsb")
    s = StressSettings(command)
    if command == "ycsb":
        s.keyspace, s.table = "ycsb", "usertable"
    for w in words[1:]:
        _command_word(s, w)
    for name, gwords in groups:
        _group(s, name, gwords)
    for flag, value in flags.items():
        if flag in ("--json", "--csv", "--plot"):
            setattr(s, f"{flag[2:]}_path", value)
        elif flag == "--workload" and command == "ycsb":
            _set_workload(s, value)
        elif flag in ("--quiet", "-q"):
            s.quiet = True
        elif flag == "--mode":
            if value.lower() not in ("cql", "dynatable"):
                raise InvalidRequest(f"--mode {value!r}: use cql (any Cassandra-compatible cluster, through "
                                     "cassandra-driver) or dynatable (the own protocol, the default)")
            s.protocol = value.lower()
        else:
            raise InvalidRequest(f"unknown flag {flag!r}: use --json FILE, --csv FILE, --plot FILE.png, --mode cql"
                                 + (", --workload X" if command == "ycsb" else ""))
    return _finish(s)


def _finish(s: StressSettings) -> StressSettings:
    if (s.user is None) != (s.password is None):
        raise InvalidRequest("-mode user= and password= go together")
    if s.user is not None and s.protocol != "cql":
        raise InvalidRequest("-mode user=/password= are CQL logins: add --mode cql (or the word cql to -mode)")
    if s.n is not None and s.duration_s is not None:
        raise InvalidRequest("give n= or duration=, not both")
    if s.plot_path is not None and not s.plot_path.lower().endswith((".png", ".svg", ".pdf")):
        raise InvalidRequest(f"--plot {s.plot_path!r}: name a .png, .svg or .pdf file")
    if s.command == "ycsb":
        if s.ycsb_workload is None:
            raise InvalidRequest("ycsb needs a workload: --workload a|b|c|d|e|f")
        if s.population is not None or s.col_count != Fixed(5) or s.col_size != Fixed(34):
            raise InvalidRequest("ycsb sizes its records with -p fieldcount=/fieldlength=/recordcount=, "
                                 "not -col or -pop")
        s.ycsb_phases = s.ycsb_phases or ("load", "run")
        return s
    if s.n is None and s.duration_s is None:
        raise InvalidRequest(f"say how long: `dynatable stress {s.command} n=100000` or duration=30s")
    if s.population is None:   # cassandra-stress: writes walk 1..N in order, reads hit its middle
        limit = s.n or DEFAULT_POPULATION
        s.population = Sequence(1, limit) if s.command == "write" else Gaussian(1, limit)
    return s
