"""Opening an inline image with Pillow within a pixel limit, and what its EXIF says.

Only the header is read before the size is checked, so a decompression bomb
(a small file of a huge image) is refused before it is decoded.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from memoryd.plugins.builtin._files import Unreadable

#: EXIF tags kept: ImageDescription, Make, Model, DateTime, Artist, UserComment (in the
#: Exif IFD), DateTimeOriginal.
_BASE_TAGS = {0x010E: "description", 0x010F: "camera make", 0x0110: "camera model"}
_DATE_TAGS = {0x9003: "taken", 0x0132: "date"}
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825


def open_image(data: bytes, *, max_pixels: int) -> Any:
    """A Pillow image, header read; raises :class:`Unreadable` if it is not one or too large."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Our own limit (below) decides; Pillow's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise Unreadable(
            f"{exc} (Pillow's limit; this handler's is max_pixels = {max_pixels})"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Unreadable(f"it is not a readable image ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise Unreadable(
            f"it is {width}x{height} pixels, over max_pixels = {max_pixels} "
            "(setting [plugins.image-ocr] or [plugins.exif])"
        )
    return image


def _gps(gps: Any) -> str | None:
    try:

        def degrees(values: Any, ref: Any) -> float:
            d, m, s = (float(v) for v in values)
            sign = -1 if str(ref).upper() in ("S", "W") else 1
            return sign * (d + m / 60 + s / 3600)

        lat = degrees(gps[2], gps[1])
        lon = degrees(gps[4], gps[3])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return f"location: {lat:.5f}, {lon:.5f}"


def exif_lines(image: Any, *, keep_gps: bool = False) -> list[str]:
    """The description, camera and date an image's EXIF holds (GPS only if ``keep_gps``)."""
    try:
        exif = image.getexif()
    except Exception:  # a corrupt EXIF block is no reason to lose the image's text
        return []
    lines: list[str] = []
    sub = {}
    try:
        sub = dict(exif.get_ifd(_EXIF_IFD))
    except Exception:
        sub = {}
    for tag, label in _BASE_TAGS.items():
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip().strip("\x00"):
            lines.append(f"{label}: {' '.join(value.strip(chr(0)).split())[:500]}")
    for tag, label in _DATE_TAGS.items():
        value = sub.get(tag) or exif.get(tag)
        if isinstance(value, str) and value.strip():
            date, _, clock = value.strip().partition(" ")
            lines.append(f"{label}: {date.replace(':', '-')} {clock}".strip())
            break
    if keep_gps:
        try:
            where = _gps(exif.get_ifd(_GPS_IFD))
        except Exception:
            where = None
        if where:
            lines.append(where)
    return lines
