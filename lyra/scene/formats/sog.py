"""PlayCanvas SOG, version 2: a ``meta.json`` plus lossless WebP images, bundled (``.sog`` zip) or not.

Every per-splat image holds one splat per pixel, row-major from the top
left (``count <= width * height``; trailing pixels are ignored):

* ``means_l`` / ``means_u``: low / high bytes of a 16-bit value per axis,
  a lerp between ``means.mins`` and ``means.maxs`` of ``sign(x) ln(|x| + 1)``;
* ``quats``: smallest three of the unit quaternion (w, x, y, z), each
  ``* sqrt(2)`` mapped from [-1, 1] to 0..255, alpha = 252 + index of the largest
  (which is made positive and rebuilt from the unit norm);
* ``scales``: per-axis indices into ``scales.codebook`` (256 log-scales);
* ``sh0``: per-channel indices into ``sh0.codebook`` (256 DC values), alpha = opacity * 255;
* ``shN`` (degree > 0): ``shN_labels`` holds a 16-bit palette index (R low, G high);
  ``shN_centroids`` is ``64 * coeffs`` wide, palette entry ``i`` at row ``i // 64``,
  columns ``(i % 64) * coeffs + j`` for coefficient ``j``, RGB = indices into ``shN.codebook``.

Values are stored in the file's own (PLY, right-down-front) coordinates, as
splat-transform does. We write splats in Morton order of their centres (the
images compress better), so a round trip reorders splats; ``read`` returns
them in file order. The SH palette is a vectorised two-level k-means
(:mod:`lyra.scene.formats.sog_quantize`); WebP goes through Pillow.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from lyra import limits
from lyra.bounded_zip import BoundedZip
from lyra.errors import SceneFileError
from lyra.fileio import atomic_write, confined_reads, open_regular, real_folder, require_regular_file
from lyra.scene.formats.checks import ZIP_MEMBER_ERRORS, reject_or_drop_invalid
from lyra.scene.formats.ply_compressed import morton_order
from lyra.scene.formats.sog_quantize import codebook_1d, palette
from lyra.scene.gaussians import Gaussians, normalize_quats
from lyra.scene.sh import num_sh_coeffs

META = "meta.json"
MAX_SPLATS = 1 << 27
MAX_META_BYTES = 64 << 20
MAX_MEMBER_BYTES = 4 << 30
MAX_PALETTE = 1 << 16
PALETTE_COLUMNS = 64
SQRT2 = math.sqrt(2.0)
_SH_COEFFS_FOR_BANDS = {1: 3, 2: 8, 3: 15}
IMAGE_THREADS = os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------- read

def _shown(name: object) -> str:
    """A member name fit for a message: only names that look like SOG's own files (never quote arbitrary content)."""
    return repr(name) if isinstance(name, str) and re.fullmatch(r"[\w.-]{1,64}", name, re.ASCII) else "(a member)"

class _Source:
    """Named members of a SOG: files beside ``meta.json`` or members of a ``.sog`` zip (read bounded, cached)."""

    def __init__(self, path: Path):
        self.path = path
        self.archive: BoundedZip | None = None
        self._read: dict[str, bytes] = {}
        if path.is_dir():
            self.folder = real_folder(path)  # member files must stay inside it: symlinks are refused
        elif path.name.lower() == META:
            self.folder = real_folder(path.parent)
        else:
            self.folder = None
            self.archive = BoundedZip(path, "a .sog zip bundle")  # closes its file handle with it

    def read(self, name: object, limit: int = MAX_MEMBER_BYTES) -> bytes:
        if not isinstance(name, str) or not name or PurePosixPath(name).name != name or name in (".", ".."):
            raise SceneFileError(self.path, "plain file names in meta.json", "another kind of name")
        if name in self._read:
            return self._read[name]
        try:
            if self.archive is None:
                member = self.folder / name
                with confined_reads(self.folder):
                    if not os.path.lexists(member) or require_regular_file(member).st_size > limit:
                        raise SceneFileError(member, f"a file of at most {limit} bytes", "no such file or a larger one")
                    with open_regular(member, "a SOG member file") as handle:
                        data = handle.read(limit + 1)
            else:
                data = self.archive.read(self.archive.getinfo(name), limit)
        except SceneFileError:
            raise
        except KeyError:
            raise SceneFileError(self.path, f"a member {_shown(name)} in the bundle", "none") from None
        except ZIP_MEMBER_ERRORS as exc:
            raise SceneFileError(self.path, f"an intact member {_shown(name)}", f"{type(exc).__name__}") from None
        self._read[name] = data
        return data

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _image(source: _Source, name: object, count: int, min_pixels: int | None = None) -> np.ndarray:
    """Decode one image to ``[H, W, 4]`` uint8, checking its size before decoding the pixels."""
    from PIL import Image

    data = source.read(name)
    need = count if min_pixels is None else min_pixels
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            # Writers pad to a multiple of 4 around sqrt(count); anything far larger is corrupt (or a bomb).
            if width * height < need or width * height > 4 * need + (1 << 16):
                raise SceneFileError(source.path, f"image {_shown(name)} with at least {need} (and not far more) pixels",
                                     f"{width} x {height}")
            limits.check_decoded(source.path, 4 * width * height, f"image {_shown(name)} of {width} x {height}")
            return np.asarray(image.convert("RGBA"))
    except SceneFileError:
        raise
    except MemoryError:
        raise limits.out_of_memory_error(source.path, f"image {_shown(name)}") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for corrupt images
        raise SceneFileError(source.path, f"a decodable image {_shown(name)}", f"{type(exc).__name__}") from None


def _pixels(image: np.ndarray, count: int) -> np.ndarray:
    return image.reshape(-1, 4)[:count]  # [count, 4]


def _number_list(path: Path, value: object, what: str, length: int | None = None, max_length: int = 256) -> np.ndarray:
    ok = isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not value or len(value) > max_length or (length is not None and len(value) != length):
        raise SceneFileError(path, f"{what}: a list of {length or f'1 to {max_length}'} numbers", f"a JSON {type(value).__name__} that is not")
    array = np.asarray(value, np.float64)
    if not np.isfinite(array).all():
        raise SceneFileError(path, f"{what}: finite numbers", f"a JSON {type(value).__name__} that is not")
    return array.astype(np.float32)


def _section(path: Path, meta: dict, key: str, files: int) -> dict:
    section = meta.get(key)
    if not isinstance(section, dict) or not isinstance(section.get("files"), list) or len(section["files"]) < files:
        raise SceneFileError(path, f"meta.json section {key!r} with {files} file name(s)", f"a JSON {type(section).__name__} that is not")
    return section


def _lookup(path: Path, codebook: np.ndarray, indices: np.ndarray, what: str) -> np.ndarray:
    if indices.size and int(indices.max()) >= len(codebook):
        raise SceneFileError(path, f"{what} indices below the codebook length {len(codebook)}", f"index {int(indices.max())}")
    return codebook[indices]


def _check_budget(path: Path, source: _Source, meta: dict, count: int) -> None:
    """The decode budget from ``count`` (and the SH bands), then the bundle's images against the bomb ratio.

    The ratio is over all per-splat images together: one image of a real scene may be
    constant (a single colour), but its means never are.
    """
    shn = meta.get("shN")
    bands = shn.get("bands") if isinstance(shn, dict) else 0
    limits.check_splats(path, count, bands if bands in _SH_COEFFS_FOR_BANDS else 0)
    names = [_section(path, meta, key, n)["files"][:n] for key, n in (("means", 2), ("quats", 1), ("scales", 1), ("sh0", 1))]
    names = [name for group in names for name in group]
    compressed = sum(len(source.read(name)) for name in names)
    limits.check_ratio(path, 4 * count * len(names), compressed, "SOG images")


def _decode(path: Path, source: _Source) -> Gaussians:
    raw = source.read(META, MAX_META_BYTES)
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SceneFileError(path, "a JSON meta.json", f"invalid JSON ({type(exc).__name__})") from None
    except ValueError:  # an integer over Python's 4300-digit conversion limit
        raise SceneFileError(path, "a JSON meta.json with ordinary numbers", "a number too long to convert") from None
    if not isinstance(meta, dict) or meta.get("version") != 2:
        version = meta.get("version") if isinstance(meta, dict) else None
        raise SceneFileError(path, "a SOG meta.json with version 2", "another version" if version is not None else "none")
    count = meta.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_SPLATS:
        raise SceneFileError(path, f"'count': an integer in 0..{MAX_SPLATS}", f"a JSON {type(count).__name__} that is not")
    _check_budget(path, source, meta, count)
    means_meta = _section(path, meta, "means", 2)
    mins = _number_list(path, means_meta.get("mins"), "means.mins", 3)
    maxs = _number_list(path, means_meta.get("maxs"), "means.maxs", 3)
    quats_meta = _section(path, meta, "quats", 1)
    scales_meta = _section(path, meta, "scales", 1)
    scale_book = _number_list(path, scales_meta.get("codebook"), "scales.codebook")
    sh0_meta = _section(path, meta, "sh0", 1)
    color_book = _number_list(path, sh0_meta.get("codebook"), "sh0.codebook")
    shn = None
    if meta.get("shN") is not None:
        shn = _section(path, meta, "shN", 2)
        bands, entries = shn.get("bands"), shn.get("count")
        if bands not in _SH_COEFFS_FOR_BANDS or not isinstance(entries, int) or not 1 <= entries <= MAX_PALETTE:
            raise SceneFileError(path, f"shN.bands in 1..3 and shN.count in 1..{MAX_PALETTE}", "other values")
        coeffs = _SH_COEFFS_FOR_BANDS[bands]
        sh_book = _number_list(path, shn.get("codebook"), "shN.codebook")
        rows = math.ceil(entries / PALETTE_COLUMNS)
    # Pillow releases the GIL while decoding, so the images decode side by side (zip reads are locked).
    with ThreadPoolExecutor(IMAGE_THREADS) as pool:
        def image(name: object, need: int, min_pixels: int | None = None) -> Future:
            return pool.submit(_image, source, name, need, min_pixels)

        pending = {key: image(section["files"][i], count) for key, section, i in (
            ("low", means_meta, 0), ("high", means_meta, 1), ("quats", quats_meta, 0), ("scales", scales_meta, 0),
            ("sh0", sh0_meta, 0))}
        if shn is not None:
            pending["labels"] = image(shn["files"][1], count)
            pending["centroids"] = image(shn["files"][0], 0, min_pixels=rows * PALETTE_COLUMNS * coeffs)
        images = {key: future.result() for key, future in pending.items()}

    # Per-value maps go through lookup tables built with the same float32 arithmetic, once per code.
    low, high = (_pixels(images[key], count)[:, :3] for key in ("low", "high"))
    codes = np.left_shift(high, 8, dtype=np.uint16)
    codes |= low
    span = np.where(maxs - mins == 0, 1.0, maxs - mins).astype(np.float32)
    levels = np.arange(65536, dtype=np.float32) / 65535.0
    means = np.empty((count, 3), np.float32)
    for axis in range(3):
        t = mins[axis] + span[axis] * levels
        with np.errstate(over="ignore"):  # an unused level may overflow; used ones are checked finite in read()
            table = np.sign(t) * np.expm1(np.abs(t))
        means[:, axis] = table[codes[:, axis]]

    quats = _pixels(images["quats"], count)
    tag = quats[:, 3]
    if count and (tag.min() < 252):
        raise SceneFileError(path, "quaternion tags 252..255 in quats' alpha", f"tag {int(tag.min())}")
    largest = tag - 252
    small_table = (np.arange(256, dtype=np.float32) / 255.0 * 2.0 - 1.0) / SQRT2
    small = [small_table[quats[:, i]] for i in range(3)]  # the three stored components, ascending, skipping the largest
    squares = small[0] * small[0]
    squares += small[1] * small[1]
    squares += small[2] * small[2]
    np.subtract(np.float32(1.0), squares, out=squares)
    np.maximum(squares, 0.0, out=squares)
    missing = np.sqrt(squares, out=squares)
    wxyz = np.empty((count, 4), np.float32)
    for i in range(4):
        stored = small[i] if i == 0 else small[i - 1] if i == 3 else np.where(largest > i, small[i], small[i - 1])
        wxyz[:, i] = np.where(largest == i, missing, stored)

    with np.errstate(over="ignore"):  # an overflowing codebook entry is caught by read()'s finite check if used
        scale_table = np.exp(scale_book)
    scales = _lookup(path, scale_table, _pixels(images["scales"], count)[:, :3], "scales")

    sh0 = _pixels(images["sh0"], count)
    coefficients = 1 if shn is None else coeffs + 1
    sh = np.empty((count, coefficients, 3), np.float32)
    if shn is not None:
        entries_rgb = images["centroids"][:rows, :, :3]
        if entries_rgb.shape[1] != PALETTE_COLUMNS * coeffs:
            raise SceneFileError(path, f"shN centroids {PALETTE_COLUMNS * coeffs} pixels wide", f"{entries_rgb.shape[1]}")
        entries_rgb = entries_rgb.reshape(rows * PALETTE_COLUMNS, coeffs, 3)[:entries]
        # Palette rows [P, K, 3] with a spare DC slot, gathered straight into the output (DC written after).
        table = np.zeros((entries, coeffs + 1, 3), np.float32)
        table[:, 1:] = _lookup(path, sh_book, entries_rgb, "shN centroid")
        labels_px = _pixels(images["labels"], count)
        labels = labels_px[:, 0].astype(np.intp)
        labels |= labels_px[:, 1].astype(np.intp) << 8
        if labels.size and int(labels.max()) >= len(table):
            raise SceneFileError(path, f"shN label indices below the codebook length {len(table)}", f"index {int(labels.max())}")
        np.take(table, labels, axis=0, out=sh, mode="clip")  # clip never applies: bounds checked above
    sh[:, 0] = _lookup(path, color_book, sh0[:, :3], "sh0")
    opacities = (np.arange(256, dtype=np.float32) / 255.0)[sh0[:, 3]]
    return Gaussians(
        means=torch.from_numpy(means),
        quats=normalize_quats(torch.from_numpy(wxyz)),
        scales=torch.from_numpy(scales),
        opacities=torch.from_numpy(opacities),
        sh=torch.from_numpy(sh),
    )


def _probably_all_finite(values: np.ndarray) -> bool:
    """True when every value is finite (one dot product; False too when squares overflow: then check exactly)."""
    flat = values.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.dot(flat, flat)))


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load a ``.sog`` bundle, an unbundled ``meta.json`` or a folder holding one. Raises SceneFileError."""
    path = Path(path)
    source = _Source(path)
    try:
        gaussians = _decode(path, source)
    finally:
        source.close()
    # Codebooks and mins/maxs are checked finite and quaternions come out unit-norm, so only centres and
    # scales can overflow (exp of a large log value); the general check runs only if one did.
    if _probably_all_finite(gaussians.means.numpy()) and _probably_all_finite(gaussians.scales.numpy()):
        return gaussians
    return reject_or_drop_invalid(gaussians, path, drop_invalid)


# --------------------------------------------------------------------------------------------- write
def image_size(count: int) -> tuple[int, int]:
    """(width, height) of the per-splat images: multiples of 4 around sqrt(count), as splat-transform lays them."""
    width = max(4, math.ceil(math.sqrt(count) / 4) * 4)
    height = max(4, math.ceil(count / width / 4) * 4)
    return width, height


def palette_size(count: int) -> int:
    """SH palette entries for ``count`` splats: 1024 * 2^floor(log2(count / 1024)), capped at 64k (as splat-transform)."""
    if count == 0:
        return 1
    return max(1, min(MAX_PALETTE, int(2 ** math.floor(math.log2(count / 1024)) * 1024)))


def _webp(pixels: np.ndarray, width: int, height: int) -> bytes:
    """Lossless WebP of ``pixels [M, 4]`` (M <= width * height; the rest is zero)."""
    from PIL import Image

    canvas = np.zeros((width * height, 4), np.uint8)
    canvas[: len(pixels)] = pixels
    buffer = io.BytesIO()
    # method 0-1 is the fast end of libwebp's lossless effort; sizes differ by a few percent only
    Image.fromarray(canvas.reshape(height, width, 4), "RGBA").save(buffer, "WEBP", lossless=True, quality=25, method=1)
    return buffer.getvalue()


def _rgba(*channels: np.ndarray, alpha: np.ndarray | int = 255) -> np.ndarray:
    out = np.empty((len(channels[0]), 4), np.uint8)
    for i in range(3):
        out[:, i] = channels[i] if i < len(channels) else 0
    out[:, 3] = alpha
    return out


def encode(gaussians: Gaussians, sh_degree: int | None = None) -> dict[str, bytes]:
    """The files of a SOG (``meta.json`` and images) for ``gaussians``, splats in Morton order."""
    g = gaussians.to("cpu", torch.float32)
    degree = min(g.sh_degree if sh_degree is None else sh_degree, 3)
    g = g.with_sh_degree(degree)
    if len(g):
        g = g[torch.from_numpy(morton_order(g.means.numpy()))]
    n = len(g)
    width, height = image_size(n)
    files: dict[str, bytes] = {}

    t = torch.sign(g.means.double()) * torch.log1p(g.means.double().abs())  # [N, 3]
    mins = t.min(0).values if n else torch.zeros(3, dtype=torch.float64)
    maxs = t.max(0).values if n else torch.zeros(3, dtype=torch.float64)
    span = torch.where(maxs > mins, maxs - mins, torch.ones_like(maxs))
    q16 = ((t - mins) / span * 65535.0).round().clamp(0, 65535).to(torch.int32).numpy()
    files["means_l.webp"] = _webp(_rgba(*(q16 & 0xFF).T), width, height)
    files["means_u.webp"] = _webp(_rgba(*(q16 >> 8).T), width, height)

    q = normalize_quats(g.quats)
    largest = q.abs().argmax(1)
    q = torch.where(q.gather(1, largest[:, None]) < 0, -q, q)
    others = torch.tensor([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    small = ((q.gather(1, others) * SQRT2 * 0.5 + 0.5) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    files["quats.webp"] = _webp(_rgba(*small.T, alpha=(252 + largest).to(torch.uint8).numpy()), width, height)

    scale_book, scale_idx = codebook_1d(g.scales.clamp(min=1e-30).log())
    files["scales.webp"] = _webp(_rgba(*scale_idx.numpy().T), width, height)
    color_book, color_idx = codebook_1d(g.sh[:, 0])
    alpha = (g.opacities * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    files["sh0.webp"] = _webp(_rgba(*color_idx.numpy().T, alpha=alpha), width, height)

    meta = {
        "version": 2, "asset": {"generator": "lyra"}, "count": n,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": scale_book.tolist(), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": color_book.tolist(), "files": ["sh0.webp"]},
    }
    if degree > 0 and n > 0:
        coeffs = num_sh_coeffs(degree) - 1
        table, labels = palette(g.sh[:, 1:].reshape(n, coeffs * 3), palette_size(n))
        sh_book, entry_idx = codebook_1d(table)
        entries = len(table)
        rows = math.ceil(entries / PALETTE_COLUMNS)
        grid = np.zeros((rows * PALETTE_COLUMNS, coeffs, 3), np.uint8)
        grid[:entries] = entry_idx.reshape(entries, coeffs, 3).numpy()
        files["shN_centroids.webp"] = _webp(_rgba(*grid.reshape(-1, 3).T), PALETTE_COLUMNS * coeffs, rows)
        labels = labels.numpy()
        files["shN_labels.webp"] = _webp(_rgba(labels & 0xFF, labels >> 8), width, height)
        meta["shN"] = {"count": entries, "bands": degree, "codebook": sh_book.tolist(),
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    files[META] = json.dumps(meta).encode()
    return files


def write(gaussians: Gaussians, path: str | Path, *, overwrite: bool = True, sh_degree: int | None = None) -> None:
    """Write a SOG: a ``.sog`` zip bundle, or (path named ``meta.json``) unbundled files beside it.

    Lossy (module docstring); SH degree capped at 3. Unbundled, the images are
    written first and ``meta.json`` last, each atomically.
    """
    path = Path(path)
    if not isinstance(gaussians, Gaussians):
        raise SceneFileError(path, "a static Gaussians scene for a SOG file", f"a {type(gaussians).__name__}")
    files = encode(gaussians, sh_degree)
    try:
        if path.name.lower() == META:
            if path.exists() and not overwrite:
                raise FileExistsError(path)
            for name in sorted(files, key=lambda n: n == META):
                with atomic_write(path.parent / name, "wb", overwrite=True) as handle:
                    handle.write(files[name])
            return
        with atomic_write(path, "wb", overwrite=overwrite) as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as bundle:
                bundle.writestr(META, files.pop(META))  # meta first, so a streaming reader can plan
                for name, data in files.items():
                    bundle.writestr(name, data)
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None
