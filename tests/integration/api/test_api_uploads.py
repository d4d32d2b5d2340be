"""Hostile uploads: each is a 4xx in the one error shape, and the gallery is unchanged afterwards."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from apiworld import World, blank_jpeg
from PIL import Image

from faceward.security.permissions import Role


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height RGB, one tiny IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b"")


def decompression_bomb() -> bytes:
    """15000 x 15000 one-bit pixels of zero: about 30 kB that would decode to 675 MB of RGB."""
    buffer = io.BytesIO()
    Image.new("1", (15_000, 15_000)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def gif_js_polyglot() -> bytes:
    """Valid as GIF and as JavaScript: a classic way to smuggle a script through an image upload."""
    return b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00;*/=alert(document.domain)//;" + b"\x00" * 32 + b";"


def pdf_jpeg_polyglot(jpeg: bytes) -> bytes:
    return b"%PDF-1.4\n1 0 obj<<>>stream\n" + jpeg + b"\nendstream endobj\n%%EOF"


def jpeg_html_zip_polyglot() -> bytes:
    """A real JPEG (no face) with an HTML comment segment and a zip appended after its end."""
    jpeg = blank_jpeg(200)
    comment = b"<html><script>alert(1)</script></html>"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:2] + segment + jpeg[2:] + b"PK\x03\x04" + b"\x00" * 64


@pytest.fixture(scope="module")
def hostile(astronaut_jpeg: bytes) -> dict[str, tuple[tuple[str, bytes, str], int]]:
    """name -> ((filename, bytes, content type), expected status)."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(astronaut_jpeg)).save(buffer, format="PNG")
    astronaut_png = buffer.getvalue()
    progressive = io.BytesIO()
    Image.open(io.BytesIO(astronaut_jpeg)).save(progressive, format="JPEG", progressive=True)
    data = progressive.getvalue()
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    scan_bomb = data[:end] + data[last:end] * 150 + data[end:]  # each scan walks every block again
    return {
        "decompression bomb": (("bomb.png", decompression_bomb(), "image/png"), 413),
        "30000x30000 PNG header": (("huge.png", png_header_only(30_000, 30_000), "image/png"), 413),
        "PNG one pixel over 3840x2160 (decoded whole)": (("wide.png", png_header_only(13801, 601), "image/png"), 413),
        "progressive JPEG of 160 scans": (("scans.jpg", scan_bomb, "image/jpeg"), 422),
        "truncated JPEG": (("cut.jpg", astronaut_jpeg[: len(astronaut_jpeg) // 2], "image/jpeg"), 422),
        "JPEG cut after the header": (("cut.jpg", astronaut_jpeg[:200], "image/jpeg"), 422),
        "zero bytes": (("empty.jpg", b"", "image/jpeg"), 422),
        "GIF/JS polyglot": (("x.jpg", gif_js_polyglot(), "application/octet-stream"), 415),
        "PDF/JPEG polyglot": (("x.jpg", pdf_jpeg_polyglot(astronaut_jpeg), "application/octet-stream"), 415),
        "JPEG/HTML/ZIP polyglot (no face)": (("x.jpg", jpeg_html_zip_polyglot(), "image/jpeg"), 422),
        "SVG with a script": (("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"), 415),
        "SVG sent as image/jpeg": (("x.jpg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/jpeg"), 415),
        "JPEG named .png": (("face.png", astronaut_jpeg, "application/octet-stream"), 415),
        "JPEG sent as text/html": (("face", astronaut_jpeg, "text/html"), 415),
        "PNG declared as image/jpeg": (("face.jpg", astronaut_png, "image/jpeg"), 415),
        "JPEG named .exe": (("face.exe", astronaut_jpeg, "image/jpeg"), 415),
        "random bytes": (("noise.jpg", np.random.default_rng(1).bytes(5000), "image/jpeg"), 415),
        "JPEG magic then noise": (("noise.jpg", b"\xff\xd8\xff\xe0" + np.random.default_rng(2).bytes(5000), "image/jpeg"), 422),
        "PNG with a bad IHDR CRC": (("crc.png", astronaut_png[:29] + bytes([astronaut_png[29] ^ 0xFF]) + astronaut_png[30:], "image/png"), 422),
        "image over the byte cap": (("big.jpg", b"\xff\xd8\xff" + b"\x00" * (1024 * 1024), "image/jpeg"), 413),
    }


CASES = [
    "decompression bomb", "30000x30000 PNG header", "PNG one pixel over 3840x2160 (decoded whole)",
    "progressive JPEG of 160 scans", "truncated JPEG", "JPEG cut after the header", "zero bytes",
    "GIF/JS polyglot", "PDF/JPEG polyglot", "JPEG/HTML/ZIP polyglot (no face)", "SVG with a script",
    "SVG sent as image/jpeg", "JPEG named .png", "JPEG sent as text/html", "PNG declared as image/jpeg",
    "JPEG named .exe", "random bytes", "JPEG magic then noise", "PNG with a bad IHDR CRC", "image over the byte cap",
]


def gallery_state(w: World) -> tuple[int, int, list[str]]:
    store = w.services.gallery.store
    return store.count_faces(w.own.id), store.count_subjects(w.own.id), [
        e.action for e in w.services.audit.entries(w.own.id, limit=1000) if e.action == "face.enroll"
    ]


@pytest.mark.parametrize("case", CASES)
def test_hostile_upload_to_enrollment(world: World, hostile: dict[str, tuple[tuple[str, bytes, str], int]], case: str) -> None:
    w = world
    upload, status = hostile[case]
    subject_id = w.new_subject(w.own)
    before = gallery_state(w)
    response = w.api.post(f"/v1/subjects/{subject_id}/faces", headers=w.own.auth(Role.ENROLLER), files={"image": upload})
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message"}
    assert gallery_state(w) == before
    assert w.services.gallery.store.faces_of(w.own.id, subject_id) == []


@pytest.mark.parametrize("case", ["decompression bomb", "30000x30000 PNG header",
                                  "PNG one pixel over 3840x2160 (decoded whole)", "progressive JPEG of 160 scans",
                                  "truncated JPEG", "zero bytes",
                                  "GIF/JS polyglot", "JPEG sent as text/html", "image over the byte cap"])
def test_hostile_upload_to_search_and_verify(sqlite_world: World, hostile: dict[str, tuple[tuple[str, bytes, str], int]], case: str) -> None:
    w = sqlite_world
    upload, status = hostile[case]
    auth = w.own.auth(Role.SEARCHER)
    search = w.api.post("/v1/search", headers=auth, data={"purpose": "p", "case_reference": "c"}, files={"image": upload})
    assert search.status_code == status, search.text
    verify = w.api.post("/v1/verify", headers=auth, files={"image_a": upload, "image_b": upload})
    assert verify.status_code == status, verify.text
    one = w.api.post("/v1/verify", headers=auth, data={"subject_id": w.own.subject_id}, files={"image": upload})
    assert one.status_code == status, one.text


def test_the_image_must_be_a_file_part_not_a_url(sqlite_world: World) -> None:
    w = sqlite_world
    response = w.api.post(
        f"/v1/subjects/{w.own.subject_id}/faces", headers=w.own.auth(Role.ENROLLER),
        data={"image": "https://example.org/face.jpg"},
    )
    assert response.status_code == 422
    assert w.services.gallery.store.count_faces(w.own.id) == 1


def test_verify_needs_exactly_one_mode(sqlite_world: World, astronaut_jpeg: bytes) -> None:
    w = sqlite_world
    auth = w.own.auth(Role.SEARCHER)
    jpeg = ("a.jpg", astronaut_jpeg, "image/jpeg")
    for files, data in (
        ({"image_a": jpeg}, {}),
        ({"image": jpeg}, {}),
        ({"image_a": jpeg, "image_b": jpeg, "image": jpeg}, {}),
        ({"image_a": jpeg, "image_b": jpeg}, {"subject_id": w.own.subject_id}),
        ({}, {"subject_id": w.own.subject_id}),
    ):
        response = w.api.post("/v1/verify", headers=auth, files=files, data=data)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("declared", ["image/heic", "application/octet-stream"])
def test_a_phone_photo_in_heic_is_refused_with_how_to_send_it(sqlite_world: World, declared: str) -> None:
    # An iPhone's camera default: not decoded (no HEIF parser runs on untrusted bytes), but said so plainly.
    w = sqlite_world
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
    response = w.api.post("/v1/search", headers=w.own.auth(Role.SEARCHER), data={"purpose": "p", "case_reference": "c"},
                          files={"image": ("IMG_0001.HEIC" if declared == "image/heic" else "photo", heic, declared)})
    assert response.status_code == 415, response.text
    assert "send image/jpeg" in response.json()["error"]["message"] or "send JPEG" in response.json()["error"]["message"]
    assert "a phone shares its photos as JPEG" in response.json()["error"]["message"]


def test_a_png_past_a_4k_frame_is_refused_with_why_and_what_to_send(sqlite_world: World) -> None:
    # Decision 036: PNG, WebP and progressive JPEG cost their full size to decode; a baseline JPEG does not.
    w = sqlite_world
    response = w.api.post("/v1/search", headers=w.own.auth(Role.SEARCHER), data={"purpose": "p", "case_reference": "c"},
                          files={"image": ("screen.png", png_header_only(13801, 601), "image/png")})
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    assert "13801x601" in message and "8,294,400 pixels (a 3840x2160 4K frame" in message
    assert "cost their full size to decode" in message and "as a baseline JPEG" in message
