"""Built-in part handler ``image-ocr``: the text in an image, read by OCR (``memoryd[ocr]``).

RapidOCR on onnxruntime reads it; its wheel carries its models, so nothing
is downloaded. An image takes about a second or two on one thread, so the
handler runs in a worker thread (core/contain.py), one image at a time, with
the engine loaded at the first image. A larger image is scaled down to
``max_side`` pixels first; one over ``max_pixels`` (a decompression bomb) is
refused from its header, unread. The EXIF description and date join the
text; GPS only with ``keep_gps``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from attrs import define, field, frozen

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import (
    Deadline,
    Unreadable,
    available,
    file_handler,
)
from memoryd.plugins.builtin._image import exif_lines, open_image
from memoryd.plugins.builtin.exif import IMAGE_EXTENSIONS, IMAGE_KINDS
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

PLUGIN_NAME = "image-ocr"


@frozen
class OcrSettings:
    """``[plugins.image-ocr]``."""

    #: Pixels an image may have (width times height); a larger one is skipped unread.
    max_pixels: int = 50_000_000
    #: The longer side an image is scaled down to before OCR.
    max_side: int = 2000
    #: Threads onnxruntime uses for one image.
    threads: int = 1
    #: Add the image's EXIF description and date to its text.
    exif: bool = True
    #: Keep the EXIF GPS position in the text.
    keep_gps: bool = False


@define
class _Reader:
    config: OcrSettings
    _engine: Any = None
    _lock: threading.Lock = field(factory=threading.Lock)

    def _ocr(self) -> Any:
        if self._engine is None:
            from rapidocr import RapidOCR

            threads = max(1, self.config.threads)
            self._engine = RapidOCR(
                params={
                    "Global.log_level": "error",
                    "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
        return self._engine

    def __call__(self, payload: Payload, deadline: Deadline) -> str | None:
        import numpy as np

        with open_image(payload.data, max_pixels=self.config.max_pixels) as image:
            lines = exif_lines(image, keep_gps=self.config.keep_gps) if self.config.exif else []
            image.draft("RGB", (self.config.max_side, self.config.max_side))
            rgb = image.convert("RGB")
        rgb.thumbnail((self.config.max_side, self.config.max_side))
        pixels = np.asarray(rgb)[:, :, ::-1]  # RapidOCR reads BGR, as OpenCV does
        if not self._lock.acquire(timeout=max(0.0, deadline.at - time.monotonic())):
            raise Unreadable("other images were being read until its time limit (plugin_timeout)")
        try:
            result = self._ocr()(pixels)
        finally:
            self._lock.release()
        found = [t for t in (getattr(result, "txts", None) or ()) if t and t.strip()]
        text = "\n".join([*lines, *found])
        return text or None


@hookimpl
def memoryd_plugin_settings() -> type[OcrSettings]:
    return OcrSettings


@hookimpl
def memoryd_register_part_handlers(
    context: PluginContext[OcrSettings],
) -> Sequence[BlockingPartHandler]:
    if not available(context, "rapidocr", "onnxruntime", "PIL", extra="ocr"):
        return []
    return [
        file_handler(
            context,
            _Reader(context.config),
            mimes=("image/",),
            extensions=IMAGE_EXTENSIONS,
            kinds=IMAGE_KINDS,
        )
    ]
