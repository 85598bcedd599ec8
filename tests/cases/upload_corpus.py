"""A corpus of bad uploads, generated in memory (no binaries committed).

Sized for ``TEST_LIMITS`` below; every entry must be refused with a reason and leave nothing
behind. Each entry is (upload name, bytes, what it is).
"""

import io
import struct
import zipfile
import zlib

from PIL import Image

from cases.uploads import UploadLimits
from tests.factories import distinct_png, image_bytes, zip_bytes

TEST_LIMITS = UploadLimits(
    max_file_bytes=2 * 1024 * 1024,
    max_pixels=4_000_000,
    archive_max_members=20,
    archive_max_total_bytes=8 * 1024 * 1024,
)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header claims any size: the cheap way to build a pixel flood."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def png_with_text_chunk(text: bytes) -> bytes:
    png = distinct_png(901)
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + _png_chunk(b"tEXt", b"Comment\x00" + text) + png[iend:]


def jpeg_with_comment(comment: bytes) -> bytes:
    jpeg = image_bytes("JPEG", color=(10, 200, 30))
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:2] + segment + jpeg[2:]


def jpeg_with_size(width: int, height: int) -> bytes:
    jpeg = bytearray(image_bytes("JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg)


def multi_frame(image_format: str) -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(buffer, format=image_format, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def noise_png(width: int, height: int) -> bytes:
    import os

    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
        buffer, format="PNG", compress_level=0
    )
    return buffer.getvalue()


def corrupted_idat_png() -> bytes:
    png = bytearray(image_bytes("PNG", size=(64, 64)))
    start = png.index(b"IDAT") + 10
    png[start : start + 12] = b"\xff" * 12
    return bytes(png)


def zip_with_flags(
    name: str, data: bytes, flag_bits: int = 0, compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.compress_type = compression
        archive.writestr(info, data)
    raw = bytearray(buffer.getvalue())
    if flag_bits:
        # Set the "encrypted" bit in both the local and the central header.
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            position = raw.index(signature) + offset
            raw[position] |= flag_bits
    return bytes(raw)


def zip_with_corrupt_member() -> bytes:
    raw = bytearray(zip_bytes({"cell.png": noise_png(40, 40)}, compression=zipfile.ZIP_STORED))
    position = raw.index(b"IDAT") + 20
    raw[position : position + 8] = b"\x00" * 8
    return bytes(raw)


def zip_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def zip_many_entries_same_data() -> bytes:
    """More members than allowed, each pointing at the same small image (overlap-style bomb)."""
    return zip_bytes(
        {f"cell-{index}.png": distinct_png(7) for index in range(TEST_LIMITS.archive_max_members + 5)}
    )


def _valid_png() -> bytes:
    return distinct_png(900)


def _bmp_with_wrong_size() -> bytes:
    bmp = bytearray(image_bytes("BMP"))
    bmp[2:6] = struct.pack("<I", len(bmp) + 100)
    return bytes(bmp)


def bad_upload_corpus() -> list[tuple[str, bytes, str]]:
    png = _valid_png()
    jpeg = image_bytes("JPEG")
    tiff = image_bytes("TIFF")
    bmp = image_bytes("BMP")
    html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
    zeros = b"\x00" * (1536 * 1024)
    return [
        ("empty.png", b"", "zero bytes"),
        ("empty.jpg", b"", "zero bytes, other name"),
        ("truncated.png", png[: len(png) // 2], "truncated PNG"),
        ("signature-only.png", png[:8], "PNG signature only"),
        ("header-only.png", png[:33], "PNG without image data"),
        ("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated JPEG"),
        ("soi-only.jpg", jpeg[:20], "JPEG header only"),
        ("truncated.tif", tiff[: len(tiff) // 2], "truncated TIFF"),
        ("truncated.bmp", bmp[: len(bmp) // 2], "truncated BMP"),
        ("wrong-size.bmp", _bmp_with_wrong_size(), "BMP whose header size lies"),
        ("corrupt-idat.png", corrupted_idat_png(), "PNG with corrupt compressed data"),
        ("bad-signature.png", b"\x89PNX\r\n\x1a\n" + png[8:], "PNG with a broken signature"),
        ("notes.png", b"just some text, not an image\n" * 10, "text renamed .png"),
        ("page.jpg", html, "HTML renamed .jpg"),
        ("script.png", b"<script>alert(1)</script>", "script renamed .png"),
        ("doc.png", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "PDF renamed .png"),
        ("program.jpg", b"MZ\x90\x00" + b"\x00" * 200, "Windows executable renamed .jpg"),
        ("elf.png", b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "ELF binary renamed .png"),
        ("shell.png", b"<?php system($_GET['c']); ?>", "PHP renamed .png"),
        ("data.png", b'{"not": "an image"}', "JSON renamed .png"),
        (
            "eicar.jpg",
            rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
            "EICAR test string",
        ),
        ("gzip.png", zlib.compress(png), "zlib stream renamed .png"),
        ("nul-bytes.png", b"\x00" * 4096, "only NUL bytes"),
        ("fake-magic.png", b"\x89PNG\r\n\x1a\n" + html, "PNG signature followed by HTML"),
        ("animation.gif", image_bytes("GIF"), "GIF: format not allowed"),
        ("photo.webp", image_bytes("WEBP"), "WebP: format not allowed"),
        ("icon.ico", image_bytes("ICO"), "ICO: format not allowed"),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "SVG with script",
        ),
        ("portable.ppm", image_bytes("PPM"), "PPM: format not allowed"),
        ("polyglot.png", png + html, "PNG/HTML polyglot: HTML after IEND"),
        ("text-chunk.png", png_with_text_chunk(html), "PNG with HTML in a tEXt chunk"),
        ("polyglot.jpg", jpeg + html, "JPEG/HTML polyglot"),
        ("comment.jpg", jpeg_with_comment(html), "JPEG with script in a comment segment"),
        ("png-zip.png", png + zip_bytes({"x.txt": b"payload"}), "PNG with a zip appended"),
        ("flood.png", png_with_header(100_000, 100_000), "pixel flood: 10 gigapixel PNG header"),
        ("flood-wide.png", png_with_header(4_000_001, 1), "pixel flood: just over the limit"),
        ("flood.jpg", jpeg_with_size(65_000, 65_000), "pixel flood: JPEG header"),
        ("zero-size.png", png_with_header(0, 0), "PNG claiming 0×0"),
        ("frames.tif", multi_frame("TIFF"), "multi-page TIFF"),
        ("frames.png", multi_frame("PNG"), "animated PNG"),
        ("oversized.png", noise_png(900, 900), "valid PNG over the per-file size limit"),
        ("..\\..\\windows\\evil.png", html, "traversal name, HTML content"),
        ("name\x1b[31m\r\n.png", b"not an image", "control characters in the name"),
        ("empty.zip", zip_bytes({}), "archive without files"),
        ("traversal.zip", zip_bytes({"../../etc/evil.png": png}), "archive member with ../"),
        ("absolute.zip", zip_bytes({"/etc/evil.png": png}), "archive member with an absolute path"),
        ("drive.zip", zip_bytes({"C:\\Windows\\evil.png": png}), "archive member with a drive letter"),
        ("control.zip", zip_bytes({"cell\x1b[2J.png": png}), "archive member with control characters"),
        ("rtl.zip", zip_bytes({"cell\u202egnp.exe": png}), "archive member with a right-to-left override"),
        ("bomb-ratio.zip", zip_bytes({"zeros.bmp": zeros}), "zip bomb: 1.5 MB of zeros in a few KB"),
        ("bomb-size.zip", zip_bytes({"huge.bmp": zeros * 2}), "zip bomb: member over the per-file limit"),
        (
            "bomb-total.zip",
            zip_bytes({f"part-{i}.bmp": zeros for i in range(6)}),
            "zip bomb: total over the archive limit",
        ),
        ("many.zip", zip_many_entries_same_data(), "more members than allowed"),
        ("nested.zip", zip_bytes({"inner.zip": zip_bytes({"cell.png": png})}), "archive inside an archive"),
        ("encrypted.zip", zip_with_flags("cell.png", png, flag_bits=0x1), "encrypted member"),
        (
            "bzip2.zip",
            zip_with_flags("cell.png", png, compression=zipfile.ZIP_BZIP2),
            "unsupported compression",
        ),
        ("corrupt-member.zip", zip_with_corrupt_member(), "member whose data fails its CRC"),
        ("truncated.zip", zip_bytes({"cell.png": png})[:60], "truncated archive"),
        ("symlink.zip", zip_symlink(), "symlink member"),
        ("bad-member.zip", zip_bytes({"notes.txt": b"hello"}), "archive member that is not an image"),
        ("html-member.zip", zip_bytes({"page.png": html}), "archive member with HTML renamed .png"),
    ]
