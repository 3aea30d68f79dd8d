"""The flush worker: a child Python process that writes the SSTables of big background flushes, so
a flush runs on another core instead of holding the interpreter lock against the write path
(Cassandra's flush writers; a Python thread cannot use a second core).

Contract: FlushWorker.write(...) writes the SSTable of (keys, payloads) exactly as
SSTableWriter.append_unsorted(None, keys, payloads) and write_components(data_stats) do in this
process (the same code, the same bytes: tests/engine/test_flush_worker.py) and returns once its
files and directory are fsynced; it raises FlushWorkerError on any failure, with no file of that
generation left, and the caller writes in process. One write at a time per worker.

The child is `python -m engine.flush_worker PARENT_PID`, started on first use. It talks over its
stdin and stdout in the frames of docs/format.md ("Flush worker frames"): msgpack and raw bytes
under a CRC, never pickle. It exits at EOF on its stdin, and at once if its parent dies (Linux:
PR_SET_PDEATHSIG), so it never outlives the store that started it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from itertools import accumulate

import msgpack
import numpy as _np

from engine.encoding import crc32, one_width

MAGIC = b"DTFW"
VERSION = 1
_PREFIX_LEN = 19        # MAGIC | u16 version | u8 kind | u32 header length | u64 body length
KIND_WRITE, KIND_OK, KIND_ERROR = 1, 2, 3
_ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FlushWorkerError(Exception):
    """The worker could not write the SSTable (it failed, died or sent a bad frame)."""


def encode_frame(kind: int, header: dict, parts: list) -> list:
    """A frame as a list of buffers: MAGIC | u16 version | u8 kind | u32 header length |
    u64 body length | msgpack header | body (the parts, concatenated) | u32 crc32 of header and body."""
    head = msgpack.packb(header, use_bin_type=True)
    crc = crc32(head)
    for part in parts:
        crc = crc32(part, crc)
    body_len = sum(len(p) for p in parts)
    prefix = MAGIC + VERSION.to_bytes(2, "big") + bytes((kind,)) + len(head).to_bytes(4, "big") + body_len.to_bytes(8, "big")
    return [prefix, head, *parts, crc.to_bytes(4, "big")]


def read_frame(stream) -> tuple | None:
    """(kind, header, body) of the next frame on `stream`; None at a clean EOF. A frame that is
    truncated, of another version, or fails its CRC raises FlushWorkerError."""
    prefix = stream.read(_PREFIX_LEN)
    if not prefix:
        return None
    if len(prefix) != _PREFIX_LEN or prefix[:4] != MAGIC:
        raise FlushWorkerError(f"bad flush worker frame start {prefix[:8]!r}")
    version = int.from_bytes(prefix[4:6], "big")
    if version != VERSION:
        raise FlushWorkerError(f"flush worker frame version {version}, expected {VERSION}")
    kind, head_len = prefix[6], int.from_bytes(prefix[7:11], "big")
    body_len = int.from_bytes(prefix[11:19], "big")
    rest = stream.read(head_len + body_len + 4)
    if len(rest) != head_len + body_len + 4:
        raise FlushWorkerError("flush worker frame is truncated")
    view = memoryview(rest)
    if crc32(view[:-4]) != int.from_bytes(rest[-4:], "big"):
        raise FlushWorkerError("flush worker frame fails its CRC")
    try:
        header = msgpack.unpackb(view[:head_len], raw=False)
    except ValueError as e:  # msgpack's errors are ValueErrors
        raise FlushWorkerError(f"flush worker frame header does not decode: {e}") from None
    if type(header) is not dict:
        raise FlushWorkerError("flush worker frame header is not a map")
    return kind, header, view[head_len:head_len + body_len]


def _layout(items: list, joined: bytes) -> tuple[int, bytes]:
    """(w, b"") when every item is w bytes long, else (-1, their lengths as u32s)."""
    w = one_width(items, joined)
    if w >= 0:
        return w, b""
    return -1, _np.fromiter(map(len, items), ">u4", len(items)).tobytes()


def _split(joined: bytes, width: int, lengths, n: int) -> list:
    """The n items of `joined` (their concatenation): each `width` bytes long, or (width -1) as
    long as the u32s in `lengths` say."""
    if width >= 0:
        if n * width != len(joined):
            raise FlushWorkerError(f"flush worker: {n} items of {width} bytes, not {len(joined)} bytes")
        return [joined[at:at + width] for at in range(0, n * width, width)]
    ends = _np.frombuffer(lengths, ">u4").cumsum().tolist()
    if len(ends) != n or (ends and ends[-1] != len(joined)):
        raise FlushWorkerError(f"flush worker lengths ({len(ends)}) do not cover {n} items of {len(joined)} bytes")
    return [joined[a:b] for a, b in zip([0, *ends], ends)]


class FlushWorker:
    """The parent's handle on one child; flushes of at least `min_bytes` go to it, until
    MAX_FAILURES writes in a row have failed (a child that cannot start or cannot write: the
    store then flushes in process, as it would without a worker)."""

    MAX_FAILURES = 3

    def __init__(self, min_bytes: int):
        self.min_bytes = min_bytes
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.writes = 0         # SSTables the child wrote
        self.failures = 0       # writes that failed (each one written in process instead)
        self._in_a_row = 0

    def takes(self, memtable_bytes: int) -> bool:
        return memtable_bytes >= self.min_bytes and self._in_a_row < self.MAX_FAILURES

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_ROOT, env.get("PYTHONPATH")) if p)
        # a session of its own: a terminal's Ctrl-C reaches the store, which stops the child itself
        return subprocess.Popen([sys.executable, "-m", "engine.flush_worker", str(os.getpid())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=env, close_fds=True, start_new_session=True)

    def write(self, directory: str, generation: int, writer_options: dict, keys: list, payloads: list,
              data_stats: dict) -> None:
        jk, jp = b"".join(keys), b"".join(payloads)
        (kw, klens), (pw, plens) = _layout(keys, jk), _layout(payloads, jp)
        header = {"directory": directory, "generation": generation, "writer": writer_options,
                  "stats": data_stats, "rows": len(keys), "key_width": kw, "payload_width": pw,
                  "sizes": [len(klens), len(jk), len(plens), len(jp)]}
        frame = encode_frame(KIND_WRITE, header, [klens, jk, plens, jp])
        with self._lock:
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._proc = self._start()
                proc = self._proc
                for buf in frame:
                    proc.stdin.write(buf)
                proc.stdin.flush()
                reply = read_frame(proc.stdout)
                if reply is None:
                    raise FlushWorkerError("it exited")
            except (OSError, ValueError, FlushWorkerError) as e:
                self._kill()
                self._failed()
                raise FlushWorkerError(f"flush worker failed: {e}") from None
            if reply[0] != KIND_OK:
                self._failed()
                raise FlushWorkerError(f"flush worker: {reply[1].get('error')}")
            self.writes += 1
            self._in_a_row = 0

    def _failed(self) -> None:
        self.failures += 1
        self._in_a_row += 1

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass

    def close(self) -> None:
        """Stop the child (EOF on its stdin, then wait; killed if it lingers)."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            proc.stdout.close()


# -- the child ---------------------------------------------------------------------------------

def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)


def _write(header: dict, body) -> None:
    from engine.sstable_writer import SSTableWriter
    n, sizes = header["rows"], header["sizes"]
    if sum(sizes) != len(body):
        raise FlushWorkerError(f"flush worker body of {len(body)} bytes, expected {sum(sizes)}")
    ends = [*accumulate(sizes)]
    klens, jk, plens, jp = (body[a:b] for a, b in zip([0, *ends], ends))
    keys = _split(bytes(jk), header["key_width"], klens, n)
    payloads = _split(bytes(jp), header["payload_width"], plens, n)
    opts = header["writer"]
    directory, generation = header["directory"], header["generation"]
    writer = SSTableWriter(directory, generation, expected_partitions=opts["expected_partitions"],
                           bloom_fp_chance=opts["bloom_fp_chance"], compression=opts["compression"])
    try:
        writer.append_unsorted(None, keys, payloads)
        writer.write_components(header["stats"])
    except BaseException:
        writer.abort()  # removes every file of the generation
        raise


def main(argv: list) -> int:
    _die_with_parent(int(argv[0]))
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the child (EOF), not a Ctrl-C
    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb")  # the frames' own; anything printed goes to stderr instead
    os.dup2(2, 1)
    while True:
        try:
            request = read_frame(stdin)
        except FlushWorkerError as e:  # the stream is out of step: say so and stop
            for buf in encode_frame(KIND_ERROR, {"error": str(e)}, []):
                stdout.write(buf)
            stdout.flush()
            return 1
        if request is None:
            return 0
        kind, header, body = request
        try:
            if kind != KIND_WRITE:
                raise FlushWorkerError(f"unknown flush worker request kind {kind}")
            _write(header, body)
            reply = encode_frame(KIND_OK, {}, [])
        except Exception as e:  # every failure goes back to the parent, which writes in process
            reply = encode_frame(KIND_ERROR, {"error": f"{type(e).__name__}: {e}"}, [])
        for buf in reply:
            stdout.write(buf)
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
