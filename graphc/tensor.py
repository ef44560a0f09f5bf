"""The symbolic handle users build expressions with. Each records op, operands, attrs, type, file:line."""
import numbers

import numpy as np

from .errors import DTypeError, GraphcError, ShapeError, describe
from .loc import user_location
from .ops.registry import get as get_op
from .types import Dim, TensorType, canonical_dtype, is_float, transaction


class Tensor:
    """A value in a graph under construction: an op applied to operand Tensors."""

    __slots__ = ("op", "inputs", "attrs", "type", "loc")
    __array_priority__ = 1000  # numpy scalars on the left defer to our operators
    __hash__ = object.__hash__  # == builds a graph node, so identity hashing is kept explicitly

    def __init__(self, op, inputs, attrs, type, loc):
        self.op, self.inputs, self.attrs, self.type, self.loc = op, tuple(inputs), attrs, type, loc

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return self.type.ndim

    @property
    def name(self):
        return self.attrs.get("name")

    def __repr__(self):
        label = self.attrs["name"] if self.op == "input" else self.op
        return f"<graphc.Tensor {label}: {self.type}>"

    def __bool__(self):
        where = f" (made at {self.loc})" if self.loc else ""
        raise GraphcError(f"a symbolic tensor has no truth value: {self!r}{where}, used at {user_location()}; "
                          "use gc.where for choices")

    # arithmetic
    def __add__(self, other): return apply("add", self, other)
    def __radd__(self, other): return apply("add", other, self)
    def __sub__(self, other): return apply("sub", self, other)
    def __rsub__(self, other): return apply("sub", other, self)
    def __mul__(self, other): return apply("mul", self, other)
    def __rmul__(self, other): return apply("mul", other, self)
    def __truediv__(self, other): return apply("div", self, other)
    def __rtruediv__(self, other): return apply("div", other, self)
    def __pow__(self, other): return apply("pow", self, other)
    def __rpow__(self, other): return apply("pow", other, self)
    def __matmul__(self, other): return apply("matmul", self, other)
    def __rmatmul__(self, other): return apply("matmul", other, self)
    def __neg__(self): return apply("neg", self)
    def __pos__(self): return self
    def __abs__(self): return apply("abs", self)

    # comparisons build bool tensors
    def __lt__(self, other): return apply("lt", self, other)
    def __le__(self, other): return apply("le", self, other)
    def __gt__(self, other): return apply("gt", self, other)
    def __ge__(self, other): return apply("ge", self, other)
    def __eq__(self, other): return apply("eq", self, other)
    def __ne__(self, other): return apply("ne", self, other)

    def __iter__(self):  # without it, Python would iterate through __getitem__, endlessly on a None axis
        raise GraphcError(f"can't iterate over a symbolic tensor ({self!r}, at {user_location()}); "
                          "index it (x[0]) or reduce it (gc.sum)")

    def __getitem__(self, index):
        from .functions import getitem
        return getitem(self, index)

    @property
    def T(self):
        from .functions import transpose
        return transpose(self)

    def sum(self, axis=None, keepdims=False):
        from .functions import sum
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        from .functions import mean
        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        from .functions import max
        return max(self, axis, keepdims)

    def reshape(self, *shape):
        from .functions import reshape
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def astype(self, dtype):
        from .functions import cast
        return cast(self, dtype)


def constant(value, dtype=None):
    """A constant tensor: a Python number or a NumPy array baked into the graph."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, np.bool_)):
        dtype = dtype or "bool"
        return Tensor("constant", (), {"value": bool(value)}, TensorType((), dtype), user_location())
    if isinstance(value, numbers.Number) and np.ndim(value) == 0:
        dtype = canonical_dtype(dtype or ("int64" if isinstance(value, numbers.Integral) else "float64"))
        number = float(value) if is_float(dtype) else int(value)
        return Tensor("constant", (), {"value": number}, TensorType((), dtype), user_location())
    array = np.array(value, dtype=dtype)
    array = array.astype(canonical_dtype(array.dtype))
    array.setflags(write=False)
    if array.ndim == 0:
        return constant(array.item(), array.dtype.name)
    return Tensor("constant", (), {"value": array}, TensorType(array.shape, array.dtype.name), user_location())


def _number_dtype(number, partner_dtypes):
    """A Python number takes its tensor partner's dtype (`x * 2.0` stays float32)."""
    floats = [d for d in partner_dtypes if is_float(d)]
    if isinstance(number, bool):
        return "bool" if "bool" in partner_dtypes else (partner_dtypes[0] if partner_dtypes else "bool")
    if isinstance(number, numbers.Integral):
        return floats[0] if floats else (partner_dtypes[0] if partner_dtypes and partner_dtypes[0] != "bool" else "int64")
    return floats[0] if floats else "float64"


def as_tensors(values):
    """Operands as Tensors; Python numbers become constants of their tensor partners' dtype."""
    dtypes = [v.dtype for v in values if isinstance(v, Tensor)]
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, numbers.Number) or isinstance(v, np.generic):
            number = v.item() if isinstance(v, np.generic) else v
            out.append(constant(number, _number_dtype(number, dtypes)))
        elif isinstance(v, (np.ndarray, list, tuple)):
            out.append(constant(v))
        else:
            raise GraphcError(f"can't use {type(v).__name__} {v!r} as a graphc operand")
    return out


def apply(op_name, *operands, **attrs):
    """Build a node: check the op's shape/dtype rule, record the user's line."""
    op = get_op(op_name)
    try:
        inputs = as_tensors(operands)
    except GraphcError as error:
        known = [t.type for t in operands if isinstance(t, Tensor)]
        raise type(error)(describe(op_name, known, user_location(), str(error))) from None
    types = [t.type for t in inputs]
    try:
        with transaction():
            out_type = op.infer(types, **attrs)
    except GraphcError as error:
        raise type(error)(describe(op_name, types, user_location(), str(error))) from None
    return Tensor(op_name, inputs, attrs, out_type, user_location())


def input_tensor(name, shape, dtype):
    """A named input; `None` sizes become call-time `Dim`s."""
    if not isinstance(name, str) or not name:
        raise GraphcError(f"an input needs a non-empty string name, got {name!r} (at {user_location()})")
    try:
        dtype = canonical_dtype(dtype)
    except DTypeError as error:
        raise DTypeError(f"input {name!r}: {error} (at {user_location()})") from None
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = () if shape is None else tuple(shape)
    sizes = []
    for axis, size in enumerate(shape):
        if size is None:
            sizes.append(Dim(f"{name}.shape[{axis}]"))
        elif isinstance(size, numbers.Integral) and not isinstance(size, bool) and size >= 0:
            sizes.append(int(size))
        else:
            raise ShapeError(f"input {name!r}: shape {shape} must hold non-negative ints or None (at {user_location()})")
    return Tensor("input", (), {"name": name}, TensorType(sizes, dtype), user_location())
