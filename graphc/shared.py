"""gc.shared: a tensor whose value lives with graphc. A compiled function reads it without its being
passed, and `updates` write it in place, so parameters and optimizer state stay out of the call."""
import itertools
import threading

import numpy as np

from .errors import DTypeError, GraphcError, ShapeError
from .loc import user_location
from .tensor import Tensor, checked_dtype, input_tensor
from .types import TensorType

_names = itertools.count()
_names_lock = threading.Lock()


class Shared(Tensor):
    """An input whose array graphc holds. get_value() returns a copy; set_value(a) copies `a` into the
    held array (same shape; a dtype NumPy casts "same_kind", so float64 data fits a float32 value), so
    every compiled function that reads it sees the new value."""

    __slots__ = ("_array", "trainable")

    def get_value(self, copy=True):
        """The current value; copy=False returns graphc's own array (writes to it change the value)."""
        return self._array.copy() if copy else self._array

    def set_value(self, value):
        array = np.asarray(value)
        if array.shape != self._array.shape:
            raise ShapeError(f"shared {self.name!r} is {self.type}: set_value got shape {array.shape} "
                             f"(at {user_location()})")
        if not np.can_cast(array.dtype, self._array.dtype, "same_kind"):
            raise DTypeError(f"shared {self.name!r} is {self.type}: set_value got {array.dtype}, which does not "
                             f"cast to {self._array.dtype} safely or within its kind (at {user_location()})")
        self._array[...] = array

    def __repr__(self):
        return f"<graphc.shared {self.name}: {self.type}>"

    def __reduce__(self):
        return _rebuild_shared, (self.name, self._array, self.trainable)


def _rebuild_shared(name, array, trainable):
    return shared(array, name=name, trainable=trainable)


def shared(value, name=None, dtype=None, trainable=True):
    """A tensor holding `value` (copied; a NumPy array or a number), of its dtype unless `dtype` is given.
    name: its name in dumps and saved graphs (default shared0, shared1, ...); trainable=False marks
    state such as optimizer moments, which gc.parameters leaves out."""
    array = np.array(value, dtype=None if dtype is None else checked_dtype(dtype), order="C", copy=True)
    if array.dtype.name not in ("float32", "float64", "int32", "int64", "bool"):
        raise DTypeError(f"gc.shared: a {array.dtype} value; graphc holds float32, float64, int32, int64 or bool "
                         f"(at {user_location()})")
    if name is None:
        with _names_lock:
            name = f"shared{next(_names)}"
    declared = input_tensor(name, array.shape, array.dtype.name)
    tensor = Shared.__new__(Shared)
    Tensor.__init__(tensor, "input", (), declared.attrs, TensorType(array.shape, array.dtype.name), declared.loc)
    tensor._array, tensor.trainable = array, bool(trainable)
    return tensor


def reachable_shared(tensors):
    """The shared tensors `tensors` depend on, in order of first appearance (a depth-first walk)."""
    found, seen, stack = [], set(), list(reversed(tensors))
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, Shared):
            found.append(t)
        stack.extend(reversed(t.inputs))
    return found


def parameters(*tensors):
    """The trainable shared tensors `tensors` (a loss, say) depend on, for an optimizer."""
    for t in tensors:
        if not isinstance(t, Tensor):
            raise GraphcError(f"gc.parameters takes graphc tensors, got {type(t).__name__} (at {user_location()})")
    return [t for t in reachable_shared(list(tensors)) if t.trainable]
