"""Where the user wrote an expression: the first stack frame outside graphc's own packages."""
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
# NumPy's own frames are skipped too: np.sum(x) or np.reshape(x, ...) reach graphc through them
_INTERNAL = tuple(os.path.join(os.path.dirname(_HERE), name) + os.sep for name in ("graphc", "passes", "runtime")) + (
    os.path.dirname(os.path.abspath(np.__file__)) + os.sep,)


def user_location():
    """'file.py:12' of the user's line."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_INTERNAL):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None

