"""Cut a dump stream into sections and write each as its own zstd frame.

The dump tools mark every section with a comment block at the start of a line
(`--\\n-- Table structure for table \\`t\\`\\n--`), and data lines never start with one:
the tools escape newlines inside values. So a `bytes.find` for `\\n--\\n-- ` finds every
boundary without decoding a row. Each section becomes one zstd frame and its offset and
length go into the manifest; a concatenation of frames is still one valid `.zst` file
for `zstd -dc`, and restoring one table needs only the header, that table's frames and
the footer.

The first line newer `mariadb-dump`s write (`/*M!999999\\- enable the sandbox mode */`)
is dropped: MySQL's client and older MariaDB clients reject it, and the file must
restore by hand with either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO

import zstandard

from dumpload.backup.files import Frame

_BOUNDARY = b"\n--\n-- "
# Where the footer starts: the first statement that undoes the header's settings.
_FOOTER = b"\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"
_HOLD = len(_FOOTER) + 8     # bytes kept back: a marker may straddle two reads
_SECTIONS = (
    (b"-- Table structure for table `", "table"),
    (b"-- Temporary table structure for view `", "view"),
    (b"-- Temporary view structure for view `", "view"),
    (b"-- Final view structure for view `", "view_final"),
    (b"-- Dumping routines for database ", "routines"),
    (b"-- Dumping events for database ", "events"),
)
COMPLETED = b"\n-- Dump completed"
# A table's rows are cut into frames of about this many uncompressed bytes, so a restore
# can load one big table over several clients. Read at split time (tests make it small).
DATA_FRAME_BYTES = 32 << 20
TABLE_KINDS = ("table", "table_lock", "table_data", "table_end")


def classify(line: bytes) -> tuple[str, str | None] | None:
    """(kind, name) for a section comment line, None for any other comment."""
    for prefix, kind in _SECTIONS:
        if line.startswith(prefix):
            if kind in ("routines", "events"):
                return kind, None
            inner = line[len(prefix):].rstrip(b"\r ")
            if inner.endswith(b"`"):
                inner = inner[:-1]
            return kind, inner.replace(b"``", b"`").decode("utf-8", "replace")
    return None


def is_sandbox_line(line: bytes) -> bool:
    return line.startswith(b"/*") and b"enable the sandbox mode" in line


class SectionSplitter:
    """Feed dump bytes; calls `on_bytes(data)` and `on_section(kind, name)` in stream order."""

    def __init__(self, on_bytes: Callable[[bytes], None],
                 on_section: Callable[[str, str | None], None]) -> None:
        self._on_bytes = on_bytes
        self._on_section = on_section
        self._pending = b""
        self._first_line_done = False
        self.footer_seen = False
        self.tail = b""  # the last bytes of the stream, for the completion check

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk if self._pending else chunk
        if not self._first_line_done:
            stripped = self._strip_first_line(data)
            if stripped is None:
                return
            data = stripped
        start, limit = (0, len(data)) if self.footer_seen else self._scan(data)
        hold = len(data) if self.footer_seen else min(limit, max(start, len(data) - _HOLD))
        if hold > start:
            self._emit(data[start:hold])
        self._pending = data[hold:]

    def close(self) -> None:
        if not self._first_line_done:
            self._first_line_done = True
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def _strip_first_line(self, data: bytes) -> bytes | None:
        eol = data.find(b"\n")
        if eol < 0 and len(data) < 4096:
            self._pending = data
            return None
        self._first_line_done = True
        if eol >= 0 and is_sandbox_line(data[:eol]):
            return data[eol + 1:]
        return data

    def _scan(self, data: bytes) -> tuple[int, int]:
        """Act on every complete boundary in `data`.

        Returns (where unsent bytes begin, how far bytes may be sent): a marker line not
        yet complete must wait for the next read.
        """
        start = search = 0
        footer = data.find(_FOOTER)
        while True:
            b = data.find(_BOUNDARY, search)
            if footer >= 0 and (b < 0 or footer < b):
                self._cut(data, start, footer + 1, "footer", None)
                return footer + 1, len(data)
            if b < 0:
                return start, len(data)
            eol = data.find(b"\n", b + len(_BOUNDARY))
            if eol < 0:
                return start, b
            section = classify(data[b + 4:eol])
            if section is not None:
                self._cut(data, start, b + 1, *section)
                start = b + 1
            search = eol

    def _cut(self, data: bytes, start: int, at: int, kind: str, name: str | None) -> None:
        if at > start:
            self._emit(data[start:at])
        self._on_section(kind, name)
        if kind == "footer":
            self.footer_seen = True

    def _emit(self, data: bytes) -> None:
        if data:
            self.tail = (self.tail + data)[-256:] if len(data) < 256 else data[-256:]
            self._on_bytes(data)


class DataSplitter:
    """Between `SectionSplitter` and `FrameWriter`: cut a table section's rows into frames.

    A table section becomes "table" (DROP/CREATE), "table_lock" (LOCK TABLES, DISABLE
    KEYS: a restore that loads the rows over several clients skips it, as a WRITE lock
    would serialise them and block the next table's DDL), then "table_data" frames of
    whole INSERT statements (about `DATA_FRAME_BYTES` each), then "table_end" (ENABLE
    KEYS, UNLOCK TABLES, triggers). The bytes are unchanged: the file still restores
    by hand. Rows never hold a raw newline (the tools escape it), so a line starting
    "INSERT INTO `t` VALUES" is a statement start; a trigger on `t` cannot insert into
    `t`, so a trigger body never matches.
    """

    def __init__(self, on_bytes: Callable[[bytes], None],
                 on_section: Callable[[str, str | None], None],
                 frame_bytes: int | None = None) -> None:
        self._on_bytes = on_bytes
        self._on_section = on_section
        self._frame_bytes = frame_bytes or DATA_FRAME_BYTES
        self._pending = b""
        self._phase: str | None = None   # None (not a table), "end" or the current kind
        self._name: str | None = None
        self._insert = self._enable = self._lock = b""
        self._hold = 0                   # bytes kept back: a marker may straddle two reads
        self._undecided = 0              # where the bytes kept for the next read begin
        self._raw = 0                    # bytes in the current data frame

    def section(self, kind: str, name: str | None) -> None:
        self._flush()
        self._on_section(kind, name)
        self._phase, self._name = (kind, name) if kind == "table" and name else (None, None)
        if self._name is not None:
            q = self._name.replace("`", "``").encode()
            self._insert = b"\nINSERT INTO `" + q + b"` VALUES"
            self._enable = b"\n/*!40000 ALTER TABLE `" + q + b"` ENABLE KEYS */;"
            self._lock = b"\nLOCK TABLES `" + q + b"` WRITE;"
            self._hold = max(len(self._insert), len(self._enable), len(self._lock))

    def write(self, chunk: bytes) -> None:
        if self._phase in (None, "end"):
            self._on_bytes(chunk)
            return
        data = self._join(chunk)
        self._undecided = len(data)
        pos = self._cuts(data)
        keep = max(pos, self._undecided)
        self._emit(memoryview(data)[pos:keep])
        self._pending = data[keep:]

    def close(self) -> None:
        self._flush()

    def _join(self, chunk: bytes) -> bytes:
        """The kept-back bytes and `chunk`, copied together only if a marker starts in the
        former: a copy of every MB read would cost more than the scans (views elsewhere)."""
        kept, self._pending = self._pending, b""
        if not kept:
            return chunk
        if len(chunk) < self._hold:
            return kept + chunk  # too short to rule out a marker: cheap to copy anyway
        junction = kept + chunk[:self._hold]
        if any(0 <= junction.find(m) < len(kept) for m in (self._insert, self._enable,
                                                             self._lock)):
            return kept + chunk
        self._emit(kept)
        return chunk

    def _cuts(self, data: bytes) -> int:
        """Cut at every marker found in `data`; return where the unsent bytes begin."""
        pos = 0
        while self._phase in ("table", "table_lock"):  # the DDL: a few KB at most
            i = data.find(self._insert, pos)
            lock = data.find(self._lock, pos) if self._phase == "table" else -1
            if lock >= 0 and (i < 0 or lock < i):
                pos = self._cut(data, pos, lock + 1, "table_lock")
            elif i < 0:
                self._undecided = len(data) - self._hold
                return pos
            else:
                pos = self._cut(data, pos, i + 1, "table_data")
        search = pos
        end = data.find(self._enable, pos)
        while self._phase == "table_data":
            i = data.find(self._insert, search)
            if end >= 0 and (i < 0 or end < i):
                return self._cut(data, pos, end + 1, "table_end")
            if i < 0:
                self._undecided = len(data) - self._hold
                return pos
            search = i + 1
            if self._raw + i + 1 - pos >= self._frame_bytes:
                pos = self._cut(data, pos, i + 1, "table_data")
        return pos

    def _cut(self, data: bytes, start: int, at: int, kind: str) -> int:
        view = memoryview(data)
        self._emit(view[start:at])
        self._on_section(kind, self._name)
        self._phase = "end" if kind == "table_end" else kind
        self._raw = 0
        if kind == "table_end":
            self._emit(view[at:])
            return len(data)
        return at

    def _emit(self, data: bytes | memoryview) -> None:
        if len(data):
            self._raw += len(data)
            self._on_bytes(data)  # type: ignore[arg-type]  # any buffer will do

    def _flush(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""


class HashingFile:
    """A write-only file wrapper that counts and hashes what goes through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.sha256.update(data)
        self.position += len(data)
        return len(data)

    def flush(self) -> None:
        self.fh.flush()


class FrameWriter:
    """Compress sections into one zstd frame each and remember where each frame lies."""

    def __init__(self, fh: IO[bytes], level: int, threads: int = -1) -> None:
        self.out = HashingFile(fh)
        cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        self._writer = cctx.stream_writer(self.out, closefd=False,  # type: ignore[arg-type]
                                          write_return_read=True)  # any object with write()
        self.frames: list[Frame] = []
        self.raw_total = 0
        self._kind: str = "header"
        self._name: str | None = None
        self._raw = 0
        self._offset = 0

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        self._raw += len(data)
        self.raw_total += len(data)

    def section(self, kind: str, name: str | None) -> None:
        """End the current frame (if it holds anything) and start one for a new section."""
        self._end_frame()
        self._kind, self._name = kind, name

    def finish(self) -> list[Frame]:
        self._end_frame()
        self.out.flush()
        return self.frames

    def _end_frame(self) -> None:
        if self._raw == 0:
            return
        self._writer.flush(zstandard.FLUSH_FRAME)
        end = self.out.position
        self.frames.append(Frame(self._kind, self._name, self._offset, end - self._offset,
                                 self._raw))
        self._offset, self._raw = end, 0
