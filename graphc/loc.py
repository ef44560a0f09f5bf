"""Where the user wrote an expression: the first stack frame outside graphc's own packages."""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_INTERNAL = tuple(os.path.join(os.path.dirname(_HERE), name) + os.sep for name in ("graphc", "passes", "runtime"))
_override = []


def user_location():
    """'file.py:12' of the user's line (or the location set by `located`)."""
    if _override:
        return _override[-1]
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_INTERNAL):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class located:
    """Within this block, new tensors take `loc` (used by passes that build nodes for a user's line)."""

    def __init__(self, loc):
        self.loc = loc

    def __enter__(self):
        _override.append(self.loc)

    def __exit__(self, *exc):
        _override.pop()
