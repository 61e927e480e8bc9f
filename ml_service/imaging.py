"""Decode uploaded image bytes into an RGB Pillow image, refusing corrupt data and decompression bombs."""

import io
import warnings

from PIL import Image

from ml_service.errors import ServiceError, bad_request

# The pixel limit is enforced by decode_image itself; Pillow's own guard would raise a different error type.
Image.MAX_IMAGE_PIXELS = None


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Return the fully decoded RGB image, or raise a 4xx ServiceError explaining what is wrong."""
    if not data:
        raise bad_request("the image part is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width <= 0 or height <= 0:
                raise bad_request("the image has no pixels")
            if width * height > max_pixels:
                raise ServiceError(
                    413,
                    f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}",
                )
            image.load()
            rgb = image.convert("RGB")
    except ServiceError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as error:
        raise bad_request(f"the image cannot be decoded: {error}") from None
    except Exception as error:  # Pillow plugins raise assorted types on hostile input
        raise bad_request(f"the image cannot be decoded ({type(error).__name__})") from None
    return rgb
