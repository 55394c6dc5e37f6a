"""Reading zip members with bounded memory, whatever the member's method or header claims.

Python's ``zipfile`` stops a member at its declared size, but decompresses
bzip2 and LZMA members without an output limit: a 913-byte member declaring
1,000 bytes can expand to 2 GB inside one ``read``. So every zip the project
reads (SOG bundles, zips of frames, ViPE/SDG depth zips, torch ``.pt``
archives) goes through :class:`BoundedZip`, which uses ``zipfile`` only for the
central directory and reads each member's raw bytes itself:

* the declared size is checked against the caller's limit and the decode budget,
  and the declared ratio against :func:`lyra.limits.check_ratio`, before reading;
* stored, deflate, bzip2 and LZMA members are decompressed chunk by chunk with an
  output cap of the declared size plus one byte, so a member that expands past
  what it declared is refused after at most that many bytes;
* the actual size and CRC-32 must match the central directory;
* encrypted members and other methods are refused.

Errors are :class:`lyra.errors.ArchiveError` (corrupt or unsupported members) or
:class:`lyra.errors.DecodeBudgetError` (too large, or a bomb); both are a
SceneFileError and an InputDataError. Messages never quote member content.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lyra import limits
from lyra.errors import ArchiveError, DecodeBudgetError
from lyra.fileio import open_regular

CHUNK_BYTES = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... name length, extra length (30 bytes)
_LOCAL_MAGIC = b"PK\x03\x04"
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
            zipfile.ZIP_LZMA: "lzma"}
# What zipfile raises for a hostile central directory (see lyra.scene.formats.checks.ZIP_MEMBER_ERRORS).
_OPEN_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
                RuntimeError, struct.error, UnicodeDecodeError)


def shown_name(name: object) -> str:
    """A member name fit for a message: plain short names only (never quote arbitrary content)."""
    return repr(name) if isinstance(name, str) and re.fullmatch(r"[\w./-]{1,80}", name, re.ASCII) else "(a member)"


class BoundedZip:
    """A zip archive opened for bounded member reads (see the module docstring); a context manager.

    ``what`` describes the archive for messages ("a .sog bundle"). Raises ArchiveError
    when the file is not a readable zip.
    """

    def __init__(self, path: str | os.PathLike, what: str = "a zip archive"):
        self.path = Path(path)
        self.what = what
        self._handle: IO[bytes] = open_regular(self.path, what)
        self._lock = threading.Lock()
        try:
            self.archive = zipfile.ZipFile(self._handle)
        except _OPEN_ERRORS as exc:
            self._handle.close()
            raise ArchiveError(self.path, what, f"a file zipfile refused ({type(exc).__name__})") from None

    # -------------------------------------------------------------- directory
    def infolist(self) -> list[zipfile.ZipInfo]:
        return self.archive.infolist()

    def getinfo(self, name: str) -> zipfile.ZipInfo:
        """The member ``name``; ArchiveError when there is none."""
        try:
            return self.archive.getinfo(name)
        except KeyError:
            raise ArchiveError(self.path, f"a member {shown_name(name)} in {self.what}", "none") from None

    def check_declared(self, info: zipfile.ZipInfo, limit: int | None = None) -> None:
        """Refuse a member by its central-directory entry: method, encryption, declared size and ratio."""
        name = shown_name(info.filename)
        if info.flag_bits & 0x1:
            raise ArchiveError(self.path, f"unencrypted members in {self.what}", f"member {name} is encrypted")
        if info.compress_type not in _METHODS:
            raise ArchiveError(self.path, f"members stored, deflated, bzip2 or LZMA in {self.what}",
                               f"member {name} with compression method {info.compress_type}")
        if limit is not None and info.file_size > limit:
            raise DecodeBudgetError(self.path, f"member {name} of at most {limit:,} bytes", f"{info.file_size:,} declared")
        limits.check_decoded(self.path, info.file_size, f"member {name}")
        if info.compress_type != zipfile.ZIP_STORED:
            limits.check_ratio(self.path, info.file_size, info.compress_size, f"member {name}")

    # -------------------------------------------------------------- reading
    def read(self, info: zipfile.ZipInfo | str, limit: int | None = None) -> bytes:
        """The member's bytes (at most ``limit``, and what the budget allows); ArchiveError / DecodeBudgetError."""
        info = self.getinfo(info) if isinstance(info, str) else info
        return b"".join(self.chunks(info, limit))

    def copy(self, info: zipfile.ZipInfo, target: IO[bytes], limit: int | None = None) -> int:
        """Write the member into ``target`` chunk by chunk; returns the bytes written."""
        written = 0
        for chunk in self.chunks(info, limit):
            target.write(chunk)
            written += len(chunk)
        return written

    def chunks(self, info: zipfile.ZipInfo, limit: int | None = None) -> Iterator[bytes]:
        """The member's decompressed bytes in chunks of at most ~CHUNK_BYTES, checked as the module docstring says."""
        self.check_declared(info, limit)
        name = shown_name(info.filename)
        decompressor = _Decompressor(info.compress_type)
        produced, crc = 0, 0
        try:
            for raw in self._raw_chunks(info):
                data = raw
                while True:
                    piece = decompressor.decompress(data, info.file_size + 1 - produced)
                    data = b""
                    produced += len(piece)
                    if produced > info.file_size:
                        raise DecodeBudgetError(self.path, f"member {name} no larger than its declared "
                                                f"{info.file_size:,} bytes", "more data (a decompression bomb?)")
                    crc = zlib.crc32(piece, crc)
                    if piece:
                        yield piece
                    if decompressor.done or not decompressor.more_output:
                        break
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(self.path, f"an intact member {name}", f"a corrupt stream ({type(exc).__name__})") from None
        if produced != info.file_size or crc != info.CRC:
            raise ArchiveError(self.path, f"member {name} of {info.file_size:,} bytes with its CRC",
                               f"{produced:,} bytes{'' if produced != info.file_size else ' with another CRC'}")

    def _raw_chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """The member's compressed bytes, located through its local header."""
        with self._lock:
            self._handle.seek(info.header_offset)
            header = self._handle.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
            raise ArchiveError(self.path, f"a local header for member {shown_name(info.filename)}", "none at its offset")
        *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        position = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        left = info.compress_size
        while left > 0:
            with self._lock:
                self._handle.seek(position)
                raw = self._handle.read(min(left, CHUNK_BYTES))
            if not raw:
                raise ArchiveError(self.path, f"member {shown_name(info.filename)} of {info.compress_size:,} "
                                   "compressed bytes", "a truncated file")
            position += len(raw)
            left -= len(raw)
            yield raw
        yield b""  # lets a decompressor flush what it held back under its output cap

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        try:
            self.archive.close()
        finally:
            self._handle.close()

    def __enter__(self) -> BoundedZip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Decompressor:
    """One member's decompressor with an output cap per call (``decompress(data, max_length)``)."""

    def __init__(self, method: int):
        self.method = method
        self._lzma_header = b"" if method == zipfile.ZIP_LZMA else None
        self._inner = None
        self._pending = b""  # zlib: input held back by max_length
        if method == zipfile.ZIP_DEFLATED:
            self._inner = zlib.decompressobj(-15)
        elif method == zipfile.ZIP_BZIP2:
            self._inner = bz2.BZ2Decompressor()
        self.more_output = False

    @property
    def done(self) -> bool:
        return self._inner is not None and getattr(self._inner, "eof", False)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self.method == zipfile.ZIP_STORED:
            self.more_output = False
            return data[:max_length] if len(data) > max_length else data
        if self._lzma_header is not None and self._inner is None:
            data = self._start_lzma(data)
            if self._inner is None:
                self.more_output = False
                return b""
        if self.method == zipfile.ZIP_DEFLATED:
            out = self._inner.decompress(self._pending + data, max_length)
            self._pending = self._inner.unconsumed_tail
            self.more_output = bool(self._pending)
            return out
        if self._inner.eof:
            self.more_output = False
            return b""
        out = self._inner.decompress(data, max_length)
        self.more_output = not self._inner.needs_input and not self._inner.eof
        return out

    def _start_lzma(self, data: bytes) -> bytes:
        """zip's LZMA: 2 bytes version, 2 bytes properties size, the LZMA1 properties, then the raw stream."""
        self._lzma_header += data
        if len(self._lzma_header) < 4:
            return b""
        (size,) = struct.unpack("<H", self._lzma_header[2:4])
        if len(self._lzma_header) < 4 + size:
            return b""
        props, rest = self._lzma_header[4:4 + size], self._lzma_header[4 + size:]
        if size != 5:
            raise lzma.LZMAError("unexpected LZMA properties size")
        lc_lp_pb, dict_size = props[0], struct.unpack("<I", props[1:5])[0]
        pb, rest_lc_lp = divmod(lc_lp_pb, 45)
        lp, lc = divmod(rest_lc_lp, 9)
        lzma_filter = {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}
        self._inner = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma_filter])
        return rest


def check_zip_members(path: str | os.PathLike, what: str = "a torch.save file") -> None:
    """For a file another library will unzip itself (torch.load): refuse it first when any member fails
    :meth:`BoundedZip.check_declared` or all members together declare more than the decode budget.

    A file that is not a zip (a legacy torch pickle, bounded by its own size) passes, and so does one
    whose central directory zipfile cannot read (the other library refuses it with its own error).
    """
    with open_regular(path, what) as handle:
        if handle.read(4) != _LOCAL_MAGIC:
            return
    try:
        archive = BoundedZip(path, what)
    except ArchiveError:
        return
    with archive:
        infos = archive.infolist()
        for info in infos:
            archive.check_declared(info)
        limits.check_decoded(archive.path, sum(info.file_size for info in infos), f"{len(infos)} archive members")
