"""Built-in part handler ``exif``: an image's EXIF description, camera and date (``memoryd[ocr]``).

It answers for images that no other handler reads: the ``image-ocr`` handler
adds the same lines to its text itself (handlers are asked in turn and the
first that accepts a part reads it), so this one serves when ``image-ocr``
is disabled or its extra is missing. GPS coordinates are dropped unless
``keep_gps`` is set: a photo's location is often more than its sender meant
to share.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from memoryd.core.contain import BlockingPartHandler
from memoryd.core.payload import Payload
from memoryd.plugins.builtin._files import Deadline, available, file_handler
from memoryd.plugins.builtin._image import exif_lines, open_image
from memoryd.plugins.context import PluginContext
from memoryd.plugins.hookspecs import hookimpl

IMAGE_KINDS = ("image", "image_url", "file")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "webp", "tif", "tiff", "bmp")


@frozen
class ExifSettings:
    """``[plugins.exif]``."""

    #: Keep the GPS position (``location: lat, lon``) in the text.
    keep_gps: bool = False
    #: Pixels an image may have (width times height); a larger one is skipped.
    max_pixels: int = 50_000_000


@frozen
class _Reader:
    config: ExifSettings

    def __call__(self, payload: Payload, deadline: Deadline) -> str | None:
        with open_image(payload.data, max_pixels=self.config.max_pixels) as image:
            return "\n".join(exif_lines(image, keep_gps=self.config.keep_gps)) or None


@hookimpl
def memoryd_plugin_settings() -> type[ExifSettings]:
    return ExifSettings


@hookimpl
def memoryd_register_part_handlers(
    context: PluginContext[ExifSettings],
) -> Sequence[BlockingPartHandler]:
    if not available(context, "PIL", extra="ocr"):
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
