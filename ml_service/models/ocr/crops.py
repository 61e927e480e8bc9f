"""Cut each detected quadrilateral out of the image as an upright, horizontal line image."""

import cv2
import numpy as np
from numpy.typing import NDArray

# A crop this much taller than wide is a vertical line: turned a quarter so its first character is leftmost.
VERTICAL_RATIO = 1.5


def crop_line(bgr: NDArray[np.uint8], box: NDArray[np.float32]) -> NDArray[np.uint8]:
    """The box's content warped to a rectangle of the box's own width and height."""
    width = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    height = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), target)
    crop = cv2.warpPerspective(
        bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if height >= VERTICAL_RATIO * width:
        crop = np.ascontiguousarray(np.rot90(crop))
    return np.asarray(crop, dtype=np.uint8)
