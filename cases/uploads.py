"""Checking uploaded files before anything is stored. Plain Python: no database, no storage.

Only fully decodable images in a pinned set of formats pass. The format is what Pillow finds in
the bytes, never what the name or Content-Type claims. Zip archives are opened and each member
is checked the same way; the archive itself is never stored.

One request checks at most so many files (archive members included) and decodes at most so many
pixels (``UploadBudget``): a web worker is never held past a few seconds, whatever the upload; the
files beyond the budget are answered "not checked" one by one, never silently dropped.
"""

import hashlib
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import IO

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from core.images import IMAGE_FORMATS

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# An image whose short side reaches this many pixels is a whole microscope field (BCCD's camera:
# 640×480), anything smaller one cell (PBC's crops are 360×363, Kaggle's 320×240 copies are
# classified as cells); the upload's kind overrides it either way.
FIELD_MIN_SHORT_SIDE = 480
# Images are already compressed; a member that inflates more than this is a bomb, not a cell.
MAX_COMPRESSION_RATIO = 100
# Markup that makes a file dangerous if a browser ever sniffs it as HTML (polyglots).
_MARKUP = re.compile(
    rb"<(script|html|!doctype\s+html|svg|iframe|body|object|embed|\?php)\b|javascript:", re.I
)
_DRIVE_LETTER = re.compile(r"^[a-zA-Z]:")
# Extensions a web server or a desktop may execute or render: refused anywhere in a name
# ("x.jpg.php", "x.php.jpg"), as a misconfigured server runs the first, Apache the second.
HOSTILE_EXTENSIONS = frozenset(
    ("php", "php3", "php4", "php5", "php7", "phtml", "phar", "pht", "phps", "asp", "aspx", "ascx")
    + ("ashx", "jsp", "jspx", "cgi", "pl", "py", "rb", "sh", "bash", "exe", "dll", "com", "bat", "cmd")
    + ("msi", "scr", "ps1", "vbs", "js", "mjs", "jar", "war", "html", "htm", "xhtml", "shtml", "svg")
    + ("svgz", "xml", "swf", "hta")
)
_ENCODED_NUL = re.compile(r"%00|\\0|\\x00|\x00", re.I)


class UploadRejected(Exception):
    """A file that will not be stored; ``reason`` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_pixels: int
    archive_max_members: int
    archive_max_total_bytes: int
    # No white blood cell image is this small or this elongated (a 1×1 or a 10000×1 "image").
    min_side_pixels: int = 16
    max_aspect_ratio: float = 4.0
    # Per request, archive members included: bounds the time one upload holds a web worker.
    request_max_files: int = 1000
    request_max_pixels: int = 250_000_000

    @classmethod
    def from_settings(cls) -> "UploadLimits":
        return cls(
            max_file_bytes=settings.HEMATOVISION_UPLOAD_MAX_FILE_BYTES,
            max_pixels=settings.HEMATOVISION_UPLOAD_MAX_PIXELS,
            archive_max_members=settings.HEMATOVISION_ARCHIVE_MAX_MEMBERS,
            archive_max_total_bytes=settings.HEMATOVISION_ARCHIVE_MAX_TOTAL_BYTES,
            min_side_pixels=settings.HEMATOVISION_UPLOAD_MIN_SIDE_PIXELS,
            max_aspect_ratio=settings.HEMATOVISION_UPLOAD_MAX_ASPECT_RATIO,
            request_max_files=settings.HEMATOVISION_UPLOAD_REQUEST_MAX_FILES,
            request_max_pixels=settings.HEMATOVISION_UPLOAD_REQUEST_MAX_PIXELS,
        )


class UploadBudget:
    """What one request may still check. Once a limit is reached every later file is answered
    "not checked" (cheaply: without reading or decoding it), so the request ends in seconds."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.files_left = limits.request_max_files
        self.pixels_left = limits.request_max_pixels
        self.exhausted = ""

    def file_take(self) -> None:
        if not self.exhausted and self.files_left <= 0:
            self.exhausted = (
                f"not checked: one upload checks at most {self.limits.request_max_files:,} files; "
                "send the rest in another upload"
            )
        if self.exhausted:
            raise UploadRejected(self.exhausted)
        self.files_left -= 1

    def pixels_take(self, pixels: int) -> None:
        if not self.exhausted and pixels > self.pixels_left:
            self.exhausted = (
                f"not checked: one upload decodes at most {self.limits.request_max_pixels:,} pixels "
                "and the images before this one used them; send the rest in another upload"
            )
        if self.exhausted:
            raise UploadRejected(self.exhausted)
        self.pixels_left -= pixels


@dataclass(frozen=True)
class Candidate:
    """One file to check: a direct upload or an archive member (possibly rejected already)."""

    display_name: str
    original_filename: str
    data: bytes = b""
    rejection: str = ""


@dataclass(frozen=True)
class ValidatedImage:
    data: bytes
    image_format: str
    width: int
    height: int
    sha256: str
    original_filename: str

    @property
    def extension(self) -> str:
        return IMAGE_FORMATS[self.image_format].extension


def filename_sanitise(name: str) -> str:
    """The last path component, without control or invisible formatting characters."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    visible = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    return visible.strip().lstrip(".")[:200] or "unnamed"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _trailing_data_reason(data: bytes, image_format: str) -> str:
    """Bytes after the image's end marker are where polyglots hide their second payload."""
    if image_format == "PNG":
        end = data.rfind(b"IEND")
        if end == -1 or len(data) > end + 8:  # IEND type + 4-byte CRC ends the file
            return "data after the end of the PNG image"
    elif image_format == "JPEG":
        if data.rstrip(b"\x00\r\n")[-2:] != b"\xff\xd9":
            return "data after the end of the JPEG image"
    elif image_format == "BMP" and int.from_bytes(data[2:6], "little") != len(data):
        return "BMP file size does not match its header"
    return ""


def _shape_problem(width: int, height: int, limits: UploadLimits) -> str:
    if min(width, height) < limits.min_side_pixels:
        return f"image is {width}×{height} px; each side must be at least {limits.min_side_pixels} px"
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        return (
            f"image is {width}×{height} px; its aspect ratio {ratio:.3g}:1 is beyond the limit of "
            f"{limits.max_aspect_ratio:g}:1"
        )
    return ""


def _decoded(data: bytes, limits: UploadLimits, budget: UploadBudget | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=list(IMAGE_FORMATS))
            pixels = image.width * image.height
            if pixels > limits.max_pixels:
                raise UploadRejected(f"image has {pixels:,} pixels; the limit is {limits.max_pixels:,}")
            if problem := _shape_problem(image.width, image.height, limits):
                raise UploadRejected(problem)
            if budget is not None:
                budget.pixels_take(pixels)  # before decoding: the header told the size
            if getattr(image, "n_frames", 1) > 1:
                raise UploadRejected("images with several frames or pages are not accepted")
            image.load()
            return image
    except UnidentifiedImageError as error:
        raise UploadRejected("not a PNG, JPEG, TIFF or BMP image") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UploadRejected(f"image has too many pixels; the limit is {limits.max_pixels:,}") from error
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise UploadRejected(f"image data is corrupt or truncated ({error})") from error


def image_validate(
    *, data: bytes, original_filename: str, limits: UploadLimits, budget: UploadBudget | None = None
) -> ValidatedImage:
    if not data:
        raise UploadRejected("the file is empty")
    if len(data) > limits.max_file_bytes:
        raise UploadRejected(f"the file is larger than {_megabytes(limits.max_file_bytes)}")
    image = _decoded(data, limits, budget)
    if image.format not in IMAGE_FORMATS:
        raise UploadRejected("not a PNG, JPEG, TIFF or BMP image")
    trailing = _trailing_data_reason(data, image.format)
    if trailing:
        raise UploadRejected(trailing)
    if _MARKUP.search(data):
        raise UploadRejected("the file contains embedded HTML or script")
    return ValidatedImage(
        data=data,
        image_format=image.format,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
        original_filename=original_filename,
    )


def filename_problem(name: str) -> str:
    """Why a file name given by the client is refused, or "" (checked before it is sanitised)."""
    if "\x00" in name or _ENCODED_NUL.search(name):
        return "the file name contains a NUL, encoded or not (e.g. '%00')"
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name))[-1].strip().lower()
    hostile = [part for part in base.split(".")[1:] if part.strip() in HOSTILE_EXTENSIONS]
    if hostile:
        return f"the file name carries the extension '.{hostile[0].strip()}' of a script or program"
    return ""


def _member_name_problem(name: str) -> str:
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or _DRIVE_LETTER.match(name) or ".." in parts:
        return "unsafe path in archive (absolute or '..')"
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return "control characters in the file name"
    return filename_problem(name)


def _member_problem(info: zipfile.ZipInfo, limits: UploadLimits) -> str:
    if problem := _member_name_problem(info.filename):
        return problem
    if info.flag_bits & 0x1:
        return "encrypted archive members are not accepted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return "unsupported compression method in archive"
    if info.file_size > limits.max_file_bytes:
        return f"the file is larger than {_megabytes(limits.max_file_bytes)}"
    if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) and info.file_size > 1024 * 1024:
        return "suspicious compression ratio (zip bomb)"
    return ""


def _member_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: UploadLimits) -> bytes:
    try:
        with archive.open(info) as member:
            # Never trust the declared size: read at most one byte past the limit.
            data = member.read(limits.max_file_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        raise UploadRejected(f"corrupt archive member ({error})") from error
    if len(data) > limits.max_file_bytes:
        raise UploadRejected(f"the file is larger than {_megabytes(limits.max_file_bytes)}")
    if data.startswith(ZIP_MAGIC):
        raise UploadRejected("archives inside archives are not accepted")
    return data


def _archive_members(
    archive: zipfile.ZipFile, archive_name: str, limits: UploadLimits, budget: UploadBudget
) -> Iterator[Candidate]:
    members = [info for info in archive.infolist() if not info.is_dir()]
    if not members:
        raise UploadRejected("the archive contains no files")
    if len(members) > limits.archive_max_members:
        raise UploadRejected(f"archive has {len(members)} files; the limit is {limits.archive_max_members}")
    if sum(info.file_size for info in members) > limits.archive_max_total_bytes:
        raise UploadRejected(f"archive expands to more than {_megabytes(limits.archive_max_total_bytes)}")
    for info in members:
        display_name = f"{archive_name} › {filename_sanitise(info.filename)}"
        original_filename = filename_sanitise(info.filename)
        try:
            budget.file_take()
            if problem := _member_problem(info, limits):
                raise UploadRejected(problem)
            data = _member_read(archive, info, limits)
        except UploadRejected as rejected:
            yield Candidate(display_name, original_filename, rejection=rejected.reason)
            continue
        yield Candidate(display_name, original_filename, data=data)


def upload_expand(
    *, name: str, stream: IO[bytes], size: int, limits: UploadLimits, budget: UploadBudget | None = None
) -> Iterator[Candidate]:
    """The candidates in one uploaded file: itself, or each member when it is a zip archive. Pass
    the request's ``budget`` when one request carries several files."""
    budget = budget or UploadBudget(limits)
    display_name = filename_sanitise(name)
    try:
        if budget.exhausted:
            budget.file_take()  # refuses: nothing of this file is read
        if problem := filename_problem(name):
            raise UploadRejected(problem)
    except UploadRejected as rejected:
        yield Candidate(display_name, display_name, rejection=rejected.reason)
        return
    head = stream.read(4)
    stream.seek(0)
    if head not in ZIP_MAGIC:
        try:
            budget.file_take()
        except UploadRejected as rejected:
            yield Candidate(display_name, display_name, rejection=rejected.reason)
            return
        if size > limits.max_file_bytes:
            yield Candidate(
                display_name,
                display_name,
                rejection=f"the file is larger than {_megabytes(limits.max_file_bytes)}",
            )
        else:
            yield Candidate(display_name, display_name, data=stream.read(limits.max_file_bytes + 1))
        return
    if size > limits.archive_max_total_bytes:
        yield Candidate(
            display_name,
            display_name,
            rejection=f"archive is larger than {_megabytes(limits.archive_max_total_bytes)}",
        )
        return
    try:
        with zipfile.ZipFile(stream) as archive:
            yield from _archive_members(archive, display_name, limits, budget)
    except UploadRejected as rejected:
        yield Candidate(display_name, display_name, rejection=rejected.reason)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        yield Candidate(display_name, display_name, rejection=f"not a readable zip archive ({error})")


def image_kind_detect(*, width: int, height: int) -> str:
    """ "field" or "cell" from an image's size alone (``FIELD_MIN_SHORT_SIDE``)."""
    return "field" if min(width, height) >= FIELD_MIN_SHORT_SIDE else "cell"
