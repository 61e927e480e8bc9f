"""Reading order of text boxes: lines top to bottom, boxes left to right within a line."""

import numpy as np
from numpy.typing import NDArray


def reading_order(boxes: NDArray[np.float32]) -> list[int]:
    """Indices of boxes ordered top-to-bottom by line, then left-to-right within each line.

    Two boxes share a line when their vertical centres are closer than half the smaller box height,
    which keeps a line together even when its boxes start a few pixels apart vertically.
    """
    if len(boxes) == 0:
        return []
    top = boxes[:, :, 1].min(axis=1)
    bottom = boxes[:, :, 1].max(axis=1)
    left = boxes[:, :, 0].min(axis=1)
    centre = (top + bottom) / 2
    height = np.maximum(bottom - top, 1.0)
    lines: list[list[int]] = []
    line_centre: list[float] = []
    line_height: list[float] = []
    for index in np.argsort(centre, kind="stable").tolist():
        if lines and abs(centre[index] - line_centre[-1]) < 0.5 * min(height[index], line_height[-1]):
            members = lines[-1]
            members.append(index)
            line_centre[-1] = float(np.mean(centre[members]))
            line_height[-1] = float(np.mean(height[members]))
        else:
            lines.append([index])
            line_centre.append(float(centre[index]))
            line_height.append(float(height[index]))
    return [i for line in lines for i in sorted(line, key=lambda i: float(left[i]))]
