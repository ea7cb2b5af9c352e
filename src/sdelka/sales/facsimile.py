"""Facsimile images of an organisation: the director's and the chief accountant's signatures and the stamp.

They are printed over the signature lines of an invoice printed "with facsimile". An upload is accepted
only when it really is a PNG or JPEG picture of a sane size (magic bytes, then Pillow decodes it whole);
it is stored under a name Sdelka makes up, never the uploaded one, and it is never served from a public
URL: the printed form embeds it as a data: URI.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.fields.files import FieldFile
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

FACSIMILE_FIELDS = ("director_signature", "accountant_signature", "stamp")
MAX_BYTES = 1024 * 1024
MAX_SIDE = 4000  # pixels: a 600 dpi scan of a 45 mm stamp is about 1100 pixels wide
MIN_SIDE = 16
EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"}  # file name suffix → format


def image_format(head: bytes) -> str | None:
    """ "png" or "jpeg" from the first bytes of a file (its magic number), None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return None


def _read(file: Any) -> bytes:
    file.seek(0)
    content = file.read(MAX_BYTES + 1)
    file.seek(0)
    return bytes(content)


def _check_pixels(content: bytes, expected: str) -> None:
    """Pillow opens and decodes the whole picture: a truncated or forged file fails here."""
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(content)) as image:
            if (image.format or "").lower() != expected:
                raise ValidationError(_("The file is not a valid PNG or JPEG image."), code="facsimile_format")
            width, height = image.size
            if max(width, height) > MAX_SIDE or min(width, height) < MIN_SIDE:
                raise ValidationError(
                    _("The picture is %(width)s×%(height)s pixels; each side must be from %(min)s to %(max)s.")
                    % {"width": width, "height": height, "min": MIN_SIDE, "max": MAX_SIDE},
                    code="facsimile_size",
                )
            image.load()
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            _("The file is damaged or not a real image (%(reason)s).") % {"reason": exc}, code="facsimile_broken"
        ) from None


def validate_facsimile(value: Any) -> None:
    """A new upload must be a real PNG or JPEG picture of at most 1 MB whose name says what it is."""
    if not value or getattr(value, "_committed", False):
        return  # nothing uploaded, or the file stored before (it was checked then)
    file = value.file if isinstance(value, FieldFile) else value
    name = str(getattr(value, "name", "") or "")
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in EXTENSIONS:
        raise ValidationError(
            _("Only PNG and JPEG images are accepted (the file is named “%(name)s”).") % {"name": name[-100:]},
            code="facsimile_extension",
        )
    size = getattr(file, "size", None)
    content = _read(file)
    if (size or len(content)) > MAX_BYTES:
        raise ValidationError(
            _("The image is larger than %(limit)s KB; scan it at a lower resolution.") % {"limit": MAX_BYTES // 1024},
            code="facsimile_too_large",
        )
    found = image_format(content[:16])
    if found is None:
        raise ValidationError(
            _("The file “%(name)s” is not a PNG or JPEG image.") % {"name": name[-100:]}, code="facsimile_format"
        )
    if found != EXTENSIONS[suffix]:
        raise ValidationError(
            _("The file is named .%(suffix)s but contains a %(format)s image.")
            % {"suffix": suffix, "format": found.upper()},
            code="facsimile_mismatch",
        )
    _check_pixels(content, found)


@deconstructible
class FacsimilePath:
    """upload_to of a facsimile field: `facsimiles/<organisation>/<kind>-<random>.<png|jpg>`; nothing of the
    uploaded name but its (checked) suffix reaches the disk."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, instance: Any, filename: str) -> str:
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        extension = "png" if EXTENSIONS.get(suffix) == "png" else "jpg"
        owner = instance.pk or "new"
        return f"facsimiles/{owner}/{self.kind}-{uuid.uuid4().hex[:16]}.{extension}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FacsimilePath) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)


def data_uri(file: FieldFile | None) -> str:
    """The stored picture as a data: URI for the printed form; "" when there is none or it cannot be read
    (the form then prints without it rather than failing)."""
    if not file:
        return ""
    try:
        with file.open("rb") as handle:
            content = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:
        logger.warning("facsimile %s cannot be read: %s", file.name, exc)
        return ""
    found = image_format(content[:16])
    if found is None or len(content) > MAX_BYTES:
        logger.warning("facsimile %s is not a PNG or JPEG image of at most %s bytes", file.name, MAX_BYTES)
        return ""
    return f"data:image/{found};base64,{base64.b64encode(content).decode('ascii')}"
