"""Contractions and data movement with NumPy's signatures: matmul, einsum, tensordot, dot, stack, split and
integer-array indexing (index).

einsum, tensordot and dot are lowered when declared: per pair of operands, transposes and reshapes
bring the shared axes together, one matmul (BLAS; batched where both keep an axis) contracts them, and
elementwise products and sums do the rest, so their gradients are those ops' gradients.
"""
import numbers
import string
from collections import Counter

import numpy as np

from . import functions as F
from .errors import DTypeError, ShapeError, describe
from .loc import user_location
from .ops.movement import _product, normalize_index
from .tensor import MAX_SIZE, Tensor, apply, make_constant
from .types import Dim, broadcast_shapes, is_float, resolve, result_dtype, same_shape, size_text, transaction, unify


_fail, _tensors = F._fail, F._tensors  # declaration-time errors naming the op, the operands and the line


class _unifying:
    """Sizes unified inside are restored when a ShapeError(detail) leaves it; the error then names the op,
    the operands' types as they were and the user's line (a class, not contextlib: the line is the first
    frame outside graphc)."""

    def __init__(self, op, operands):
        self.op, self.operands, self.sizes = op, operands, transaction()

    def __enter__(self):
        self.sizes.__enter__()

    def __exit__(self, error_type, error, traceback):
        self.sizes.__exit__(error_type, error, traceback)
        if error_type is not None and issubclass(error_type, ShapeError):
            types = [t.type for t in self.operands if isinstance(t, Tensor)]
            raise ShapeError(describe(self.op, types, user_location(), str(error))) from None


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int(value, op, what, operands):
    if not _is_int(value):
        _fail(ShapeError, op, operands, f"{what} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def _floats(op, tensors):
    """The operands in one float dtype, NumPy's promotion among them: matrix products take floats only."""
    if not all(is_float(t.dtype) for t in tensors):
        _fail(DTypeError, op, tensors, "needs float32 or float64 operands")
    dtype = result_dtype(*[t.dtype for t in tensors])
    return [t if t.dtype == dtype else F.cast(t, dtype) for t in tensors]


def _shape_text(shape):
    return "(" + ",".join(size_text(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def matmul(a, b):
    """NumPy's matmul: rank-1 operands are promoted (and the added axis dropped), dimensions before the last
    two are batch dimensions that broadcast; two float operands of one dtype."""
    return apply("matmul", a, b)


# einsum
_LETTERS = set(string.ascii_letters)


def einsum(subscripts, *operands):
    """NumPy's einsum for explicit ("ij,jk->ik") and implicit ("ij,jk") subscripts without an ellipsis: a
    letter repeated in one operand takes its diagonal, letters missing from the output are summed, and a
    size-1 axis broadcasts against its letter's size. Float operands (promoted to one dtype)."""
    tensors = _tensors("einsum", list(operands))
    if not isinstance(subscripts, str):
        _fail(ShapeError, "einsum", tensors, f"subscripts must be a string such as 'ij,jk->ik', got "
                                             f"{type(subscripts).__name__} {subscripts!r}")
    if not tensors:
        _fail(ShapeError, "einsum", [], "needs at least one operand")
    terms, output = _parse(subscripts, tensors)
    return _contract("einsum", _floats("einsum", tensors), terms, output)


def _parse(subscripts, tensors):
    """(one list of letters per operand, the output's letters)."""
    def bad(detail):
        _fail(ShapeError, "einsum", tensors, f"subscripts {subscripts!r}: {detail}")
    text = subscripts.replace(" ", "")
    if "." in text:
        bad("an ellipsis (...) is not supported; name every axis with a letter")
    inputs, arrow, result = text.partition("->")
    terms = inputs.split(",")
    for term in terms + [result]:
        for char in term:
            if char not in _LETTERS:
                bad(f"{char!r} is not a subscript (letters a-z and A-Z, terms separated by ',', then '->')")
    if len(terms) != len(tensors):
        bad(f"they name {len(terms)} operand(s), got {len(tensors)}")
    for k, (term, t) in enumerate(zip(terms, tensors)):
        if len(term) != t.ndim:
            bad(f"operand {k} has rank {t.ndim}, but its subscripts {term!r} name {len(term)} axes")
    if not arrow:  # NumPy's implicit output: the letters used once, in alphabetical order
        return [list(t) for t in terms], sorted(c for c, n in Counter(inputs.replace(",", "")).items() if n == 1)
    for char in result:
        if result.count(char) > 1:
            bad(f"output subscript {char!r} is repeated")
        if char not in inputs:
            bad(f"output subscript {char!r} names no operand's axis")
    return [list(t) for t in terms], list(result)


def _contract(op, tensors, terms, output):
    """The product of the operands, each axis labelled by terms[k], summed over labels not in `output`
    and ordered as `output`: pairs contracted left to right."""
    tensors = _broadcast_labels(op, tensors, terms)
    operands = [_diagonals(t, labels) for t, labels in zip(tensors, terms)]
    x, labels = operands[0]
    for k in range(1, len(operands)):
        needed = set(output).union(*(later for _, later in operands[k + 1:]))
        x, labels = _pair(x, labels, *operands[k], needed)
    x, labels = _sum_out(x, labels, set(output))
    return _transposed(x, labels, output)


def _broadcast_labels(op, tensors, terms):
    """Each label's size must agree across its axes (a size-1 axis broadcasts, call-time sizes unify);
    operands with a broadcasting axis are broadcast to their labels' sizes."""
    axes = {}
    for k, (t, labels) in enumerate(zip(tensors, terms)):
        for axis, (label, size) in enumerate(zip(labels, t.shape)):
            axes.setdefault(label, []).append((size, k, axis))
    sizes = {}
    with _unifying(op, tensors):
        for label, found in axes.items():
            size = broadcast_shapes(*[(s,) for s, _, _ in found])
            if size is None:
                where = ", ".join(f"{size_text(s)} (operand {k} axis {axis})" for s, k, axis in found)
                raise ShapeError(f"subscript {label!r} has sizes that differ: {where}")
            sizes[label] = size[0]
    out = []
    for t, labels in zip(tensors, terms):
        target = tuple(sizes[label] for label in labels)
        out.append(t if same_shape(t.shape, target) else F.broadcast_to(t, target))
    return out


def _diagonals(x, labels):
    """A label repeated within one operand: its diagonal, as the last axis."""
    labels = list(labels)
    while len(set(labels)) < len(labels):
        label = next(label for label in labels if labels.count(label) > 1)
        first = labels.index(label)
        second = labels.index(label, first + 1)
        x = apply("diagonal", x, axis1=first, axis2=second)
        labels = [lab for k, lab in enumerate(labels) if k not in (first, second)] + [label]
    return x, labels


def _sum_out(x, labels, keep):
    axes = tuple(k for k, label in enumerate(labels) if label not in keep)
    if not axes:
        return x, labels
    return F.sum(x, axis=axes), [label for label in labels if label in keep]


def _transposed(x, labels, order):
    if list(labels) == list(order):
        return x
    return F.transpose(x, tuple(labels.index(label) for label in order))


def _reshaped(x, shape):
    return x if same_shape(x.shape, shape) else F.reshape(x, tuple(shape))


def _pair(x, x_labels, y, y_labels, needed):
    """x * y summed over their shared labels that are not `needed` later: one matmul with the labels
    both keep as batch axes, each side's own labels merged into its rows or columns."""
    x, x_labels = _sum_out(x, x_labels, needed | set(y_labels))
    y, y_labels = _sum_out(y, y_labels, needed | set(x_labels))
    batch = [label for label in x_labels if label in y_labels and label in needed]
    summed = [label for label in x_labels if label in y_labels and label not in needed]
    x_only = [label for label in x_labels if label not in y_labels]
    y_only = [label for label in y_labels if label not in x_labels]
    labels = batch + x_only + y_only
    if not summed:  # nothing to contract: a broadcasting product
        return _aligned(x, x_labels, labels) * _aligned(y, y_labels, labels), labels
    sizes = dict(zip(x_labels, x.shape)) | dict(zip(y_labels, y.shape))
    batch_sizes, inner = [sizes[label] for label in batch], _product([sizes[label] for label in summed])

    def side(own):  # without batch axes, a side with no labels of its own is a vector (matmul's rank-1 form)
        return [] if not own and not batch else [_product([sizes[label] for label in own])]
    left = _reshaped(_transposed(x, x_labels, batch + x_only + summed), batch_sizes + side(x_only) + [inner])
    right = _reshaped(_transposed(y, y_labels, batch + summed + y_only), batch_sizes + [inner] + side(y_only))
    return _reshaped(apply("matmul", left, right), [sizes[label] for label in labels]), labels


def _aligned(x, labels, order):
    """x transposed to follow `order`, with a size-1 axis for each label of `order` it lacks."""
    present = [label for label in order if label in labels]
    x = _transposed(x, labels, present)
    return _reshaped(x, [x.shape[present.index(label)] if label in labels else 1 for label in order])


# tensordot and dot
def tensordot(a, b, axes=2):
    """NumPy's tensordot: axes=N sums a's last N axes against b's first N; axes=(a_axes, b_axes) pairs
    them explicitly (ints or sequences; negative axes count from the end). The result has a's free axes,
    then b's."""
    a, b = _floats("tensordot", _tensors("tensordot", [a, b]))
    axes_a, axes_b = _tensordot_axes(a, b, axes)
    with _unifying("tensordot", [a, b]):
        for p, q in zip(axes_a, axes_b):
            if unify(a.shape[p], b.shape[q]) is None:
                raise ShapeError(f"shape mismatch for the sum: axis {p} of a has size {size_text(a.shape[p])}, "
                                 f"axis {q} of b {size_text(b.shape[q])}")
    a_labels = list(range(a.ndim))
    b_labels = [a.ndim + k for k in range(b.ndim)]
    for p, q in zip(axes_a, axes_b):
        b_labels[q] = p
    output = ([a_labels[k] for k in range(a.ndim) if k not in axes_a]
              + [b_labels[k] for k in range(b.ndim) if k not in axes_b])
    return _contract("tensordot", [a, b], [a_labels, b_labels], output)


def _tensordot_axes(a, b, axes):
    def bad(detail):
        _fail(ShapeError, "tensordot", [a, b], detail)
    if _is_int(axes):
        if not 0 <= axes <= min(a.ndim, b.ndim):
            bad(f"axes={axes} must be between 0 and the smaller rank ({min(a.ndim, b.ndim)})")
        return list(range(a.ndim - axes, a.ndim)), list(range(axes))
    if not (isinstance(axes, (tuple, list)) and len(axes) == 2):
        bad(f"axes must be an int or a pair (a_axes, b_axes), got {type(axes).__name__} {axes!r}")
    pairs = []
    for t, which, given in ((a, "a", axes[0]), (b, "b", axes[1])):
        listed = list(given) if isinstance(given, (tuple, list, np.ndarray)) else [given]
        if not all(_is_int(k) for k in listed):
            bad(f"axes of {which} must be ints, got {given!r}")
        if not all(-t.ndim <= k < t.ndim for k in listed):
            bad(f"axes {given!r} are out of range for {which}, a rank-{t.ndim} tensor")
        normal = [int(k) % t.ndim for k in listed]
        if len(set(normal)) != len(normal):
            bad(f"repeated axis in {given!r} for {which}")
        pairs.append(normal)
    if len(pairs[0]) != len(pairs[1]):
        bad(f"a and b need as many axes each, got {len(pairs[0])} and {len(pairs[1])}")
    return pairs


def dot(a, b):
    """NumPy's dot: a product with a scalar; 1-D . 1-D the inner product; 2-D . 2-D the matrix product;
    N-D . 1-D sums over a's last axis; N-D . M-D over a's last and b's second-to-last axis (result: a's
    other axes, then b's)."""
    a, b = _tensors("dot", [a, b])
    if a.ndim == 0 or b.ndim == 0:
        return F.multiply(a, b)
    a, b = _floats("dot", [a, b])
    q = b.ndim - 2 if b.ndim >= 2 else 0
    with _unifying("dot", [a, b]):
        if unify(a.shape[-1], b.shape[q]) is None:
            raise ShapeError(f"shapes {_shape_text(a.shape)} and {_shape_text(b.shape)} not aligned: "
                             f"{size_text(a.shape[-1])} (axis {a.ndim - 1}) != {size_text(b.shape[q])} (axis {q})")
    if a.ndim == 1 or b.ndim == 1 or a.ndim == b.ndim == 2:  # the same as matmul
        return apply("matmul", a, b)
    return tensordot(a, b, ([a.ndim - 1], [q]))


# stack and split
def stack(tensors, axis=0):
    """NumPy's stack: tensors of one shape joined along a new axis (dtypes promoted as NumPy does)."""
    if not isinstance(tensors, (list, tuple)):
        _fail(ShapeError, "stack", [tensors], f"takes a list of tensors, got {type(tensors).__name__}")
    tensors = _tensors("stack", list(tensors))
    if not tensors:
        _fail(ShapeError, "stack", [], "needs at least one tensor")
    axis, rank = _int(axis, "stack", "axis", tensors), tensors[0].ndim
    if not -(rank + 1) <= axis <= rank:
        _fail(ShapeError, "stack", tensors, f"axis {axis} is out of range for stacking rank-{rank} tensors")
    axis %= rank + 1
    with _unifying("stack", tensors):
        for t in tensors[1:]:
            if t.ndim != rank or any(unify(p, q) is None for p, q in zip(tensors[0].shape, t.shape)):
                raise ShapeError(f"all tensors need one shape, got {tensors[0].type} and {t.type}")
    dtype = result_dtype(*[t.dtype for t in tensors])
    parts = [F.reshape(t if t.dtype == dtype else F.cast(t, dtype), t.shape[:axis] + (1,) + t.shape[axis:])
             for t in tensors]
    return parts[0] if len(parts) == 1 else F.concatenate(parts, axis=axis)


def split(x, indices_or_sections, axis=0):
    """NumPy's split, returning a list: an int N cuts the axis into N equal parts (its size must be fixed
    and divisible by N); a list of indices gives the cut points (x[:i0], x[i0:i1], ..., x[ik:])."""
    (x,) = _tensors("split", [x])
    if x.ndim == 0:
        _fail(ShapeError, "split", [x], "can't split a rank-0 tensor")
    axis = _int(axis, "split", "axis", [x])
    if not -x.ndim <= axis < x.ndim:
        _fail(ShapeError, "split", [x], f"axis {axis} is out of range for a rank-{x.ndim} tensor")
    axis %= x.ndim
    size = resolve(x.shape[axis])
    if _is_int(indices_or_sections):
        sections = int(indices_or_sections)
        if sections <= 0:
            _fail(ShapeError, "split", [x], f"the number of sections must be positive, got {sections}")
        if isinstance(size, Dim):
            _fail(ShapeError, "split", [x], f"axis {axis} has a call-time size: split it at explicit indices (a list), "
                                            f"not into {sections} sections")
        if size % sections:
            _fail(ShapeError, "split", [x], f"array split does not result in an equal division: axis {axis} of size "
                                            f"{size} into {sections} sections")
        points = [size // sections * k for k in range(1, sections)]
    else:
        points = indices_or_sections.tolist() if isinstance(indices_or_sections, np.ndarray) else indices_or_sections
        if not (isinstance(points, (list, tuple)) and all(_is_int(p) for p in points)):
            _fail(ShapeError, "split", [x], f"indices_or_sections must be an int or a list of ints, got "
                                            f"{type(indices_or_sections).__name__} {indices_or_sections!r}")
        points = [max(min(int(p), MAX_SIZE), -MAX_SIZE) for p in points]
    bounds = [None] + points + [None]
    lead = (slice(None),) * axis
    return [apply("getitem", x, index=normalize_index(lead + (slice(start, stop),), x.type))
            for start, stop in zip(bounds, bounds[1:])]


# integer-array indexing
def index(x, key):
    """x[key] as NumPy indexes: basic items (ints, slices, None, ...) and at most one integer array (an int
    tensor, a NumPy int array or a list), e.g. x[idx], x[:, idx], x[idx, 1:3]. Negative indices count from
    the end; indices out of range raise gc.RunError when the function runs (a ShapeError when declared,
    for constant indices on a fixed size). The gradient adds into zeros: repeated indices accumulate."""
    (x,) = _tensors("getitem", [x])
    items = key if isinstance(key, tuple) else (key,)
    items = tuple(i.item() if isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu" else i for i in items)
    arrays = [k for k, item in enumerate(items) if isinstance(item, (Tensor, np.ndarray, list))]
    if not arrays:
        return F.getitem(x, items if isinstance(key, tuple) else items[0])
    if len(arrays) > 1:
        _fail(ShapeError, "getitem", [x], "at most one integer-array index is supported")
    position = arrays[0]
    indices = _indices(x, items[position])
    basic = items[:position] + (slice(None),) + items[position + 1:]
    try:
        normal = normalize_index(basic, x.type)
    except ShapeError as error:
        _fail(ShapeError, "getitem", [x, indices], str(error))
    # the array's axis in the basic result: the axes the items before it keep (an Ellipsis expanded)
    used = sum(1 for item in basic if item is not None and item is not Ellipsis)
    start = sum(x.ndim - used if item is Ellipsis else 1 for item in basic[:position])
    axis = sum(1 for item in normal[:start] if item[0] != "int")
    picked = x if all(item == ("slice", None, None, None) for item in normal) else apply("getitem", x, index=normal)
    _check_constant(indices, picked, axis)
    out = apply("take", picked, indices, axis=axis)
    # NumPy's rule: ints beside an array index are indices too; separated from it, the array's axes go first
    advanced = [k for k, item in enumerate(items) if k == position or _is_int(item)]
    if advanced != list(range(advanced[0], advanced[-1] + 1)) and axis > 0:
        rank = indices.ndim
        moved = tuple(range(axis, axis + rank)) + tuple(range(axis)) + tuple(range(axis + rank, out.ndim))
        out = F.transpose(out, moved)
    return out


def _indices(x, item):
    """An integer-array index as an int tensor (NumPy arrays and lists become int64 constants)."""
    if isinstance(item, Tensor):
        if item.dtype == "bool":
            _fail(DTypeError, "getitem", [x, item], "boolean masks are not supported (the result's shape would depend "
                                                   "on the values); use gc.where")
        if item.dtype not in ("int32", "int64"):
            _fail(DTypeError, "getitem", [x, item], f"array indices must be int32 or int64, not {item.dtype}")
        return item
    try:
        array = np.asarray(item)
    except ValueError as error:
        _fail(ShapeError, "getitem", [x], f"can't index with {type(item).__name__} {item!r}: {error}")
    if array.size == 0:
        array = array.astype(np.int64)  # NumPy reads an empty list as no indices
    if array.dtype.kind == "b":
        _fail(DTypeError, "getitem", [x], "boolean masks are not supported (the result's shape would depend on the "
                                         "values); use gc.where")
    if array.dtype.kind not in "iu":
        _fail(DTypeError, "getitem", [x], f"array indices must be integers, got {array.dtype}")
    if array.size and array.max() > MAX_SIZE:
        _fail(ShapeError, "getitem", [x], f"index {array.max()} is out of bounds for any axis (int64)")
    return make_constant(array.astype(np.int64), "int64")


def _check_constant(indices, x, axis):
    """Constant indices on a fixed size are checked when declared."""
    size = resolve(x.shape[axis])
    if indices.op != "constant" or isinstance(size, Dim):
        return
    values = np.asarray(indices.attrs["value"])
    bad = values[(values < -size) | (values >= size)]
    if bad.size:
        _fail(ShapeError, "getitem", [x, indices],
              f"index {bad.flat[0]} is out of bounds for axis {axis} with size {size}")
