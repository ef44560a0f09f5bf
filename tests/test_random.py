"""gc.random: Philox-4x32-10 against Random123's known answers; one key's samples identical across
compiled functions, thread counts and the NumPy interpreter; their statistics within 6 sigma; dropout's
scaling and gradient; and what the passes do with random ops (CSE of identical samples only, no folding)."""
import itertools
import math

import numpy as np
import pytest

import graphc as gc
from graphc import passes
from graphc.ops import OPS

from numeric_gradient import central_differences

N = 2 ** 17 + 3   # a call-time size: the samples' kernels run in two parallel chunks of 65536+ elements
SIGMAS = 6        # statistical bounds: a correct generator fails one about once in 10^8 runs

# Random123 tests/kat_vectors (DEShawResearch/random123): rounds, counter words, key words -> output words
KNOWN_ANSWERS = [
    (7, (0, 0, 0, 0), (0, 0), (0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48)),
    (7, (0xffffffff,) * 4, (0xffffffff,) * 2, (0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662)),
    (7, (0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a)),
    (10, (0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    (10, (0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    (10, (0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]
KEYS = [0, 1, -1, 2 ** 32, -0x5DEECE66D]  # 2**32 differs from 0 in the key's high word only


@pytest.fixture(scope="module")
def gr():
    return gc.random


# ---- the generator ------------------------------------------------------------------------------------------

def test_philox_matches_random123_known_answers(gr):
    for rounds, counter, key, expected in KNOWN_ANSWERS:
        got = tuple(int(w) for w in gr.random_ops.philox4x32(counter, key, rounds))
        assert got == expected, f"philox4x32-{rounds} of counter {counter}, key {key}"


# ---- one compiled function drawing every kind of sample -------------------------------------------------------

@pytest.fixture(scope="module")
def sampled(gr):
    x = gc.tensor("x", (None,), "float64")  # only its call-time size is read
    key = gc.scalar("key", "int64")
    steps = gc.tensor("steps", (3,), "int64")
    p = gc.tensor("p", (2,), "float32")
    split0, split1 = gr.split(key)
    outputs = {
        "bits": gr.bits(key, (3,)),
        "uniform32": gr.uniform(key, (x.shape[0], 3)),                   # parallel chunks
        "normal64": gr.normal(key, x.shape, "float64"),                    # parallel chunks
        "uniform64": gr.uniform(key, (N,), "float64", low=-2.0, high=3.0),  # serial loops
        "normal32": gr.normal(key, (N,)),
        "bernoulli": gr.bernoulli(key, p, (N, 2)),
        "split0": split0, "split1": split1,
        "fold_in_7": gr.fold_in(key, 7),
        "fold_in_steps": gr.fold_in(key, steps),
    }
    inputs = [x, key, steps, p]
    f = gc.compile(inputs, list(outputs.values()), name="random_samples")
    return {"f": f, "names": list(outputs), "graph": gc.lower(list(outputs.values()), inputs)}


def _feeds(key):
    return [np.zeros(N), np.int64(key), np.array([7, 0, -5], np.int64), np.array([0.3, 0.9], np.float32)]


def _draw(sampled, key):
    return dict(zip(sampled["names"], sampled["f"](*_feeds(key))))


def test_compiled_bits_start_with_the_known_answer(sampled):
    """Element 0 under key 0 is the block of counter 0 and key 0: Random123's first vector, words 0 and 1."""
    assert int(_draw(sampled, 0)["bits"][0]) % 2 ** 64 == 0xe169c58d_6627e8d5


def test_interpreter_gives_the_kernels_bits(sampled):
    for key in (0, KEYS[-1]):
        compiled = _draw(sampled, key)
        (interpreted, _) = gc.interpret(sampled["graph"], *_feeds(key))
        for name, value in zip(sampled["names"], interpreted):
            assert compiled[name].dtype == value.dtype and np.array_equal(compiled[name], value), f"{name}, key {key}"


def test_same_key_same_bits_on_one_and_two_threads(sampled):
    threads = gc.get_num_threads()
    try:
        gc.set_num_threads(1)
        one = _draw(sampled, 3)
        gc.set_num_threads(2)
        two = _draw(sampled, 3)
    finally:
        gc.set_num_threads(threads)
    for name in sampled["names"]:
        assert np.array_equal(one[name], two[name]), name


@pytest.fixture(scope="module")
def stepper(gr):
    """A training loop's pattern in another compiled function: each call draws with its key, then
    writes the next key (split's first) into the caller's key; a fixed size, so a serial loop."""
    key = gc.scalar("key", "int64")
    next_key, _ = gr.split(key)
    samples = [gr.uniform(key, (3 * N,)), gr.normal(key, (N,), "float64")]  # sampled's, of other shapes and loops
    return gc.compile([key], samples, updates={key: next_key}, name="stepper")


def test_same_key_same_bits_in_another_function(sampled, stepper):
    state = np.array(11, np.int64)
    for _ in range(2):
        expected = _draw(sampled, int(state))
        uniform, normal = stepper(state)
        assert np.array_equal(uniform, expected["uniform32"].reshape(-1)) and np.array_equal(normal, expected["normal64"])
        assert state == expected["split0"]


def test_fold_in_gives_a_key_per_value(sampled):
    draw = _draw(sampled, 5)
    assert draw["fold_in_steps"][0] == draw["fold_in_7"]  # steps[0] is 7


def test_different_keys_give_unrelated_samples(sampled):
    """Other keys, and the keys split and fold_in derive, give other, uncorrelated samples."""
    draw = _draw(sampled, KEYS[0])
    derived = [int(draw["split0"]), int(draw["split1"])] + draw["fold_in_steps"].tolist()
    keys = KEYS + derived
    assert len(set(keys)) == len(keys)
    samples = [_draw(sampled, key)["uniform32"].reshape(-1) for key in keys]
    for a, b in itertools.combinations(range(len(keys)), 2):
        u, v = samples[a], samples[b]
        assert np.mean(u == v) < 1e-3, (keys[a], keys[b])
        assert abs(np.corrcoef(u, v)[0, 1]) < SIGMAS / math.sqrt(u.size), (keys[a], keys[b])


# ---- statistics ------------------------------------------------------------------------------------------------

def _within(value, expected, sigma, what):
    assert abs(value - expected) <= SIGMAS * sigma, f"{what}: {value} vs {expected} +- {SIGMAS} x {sigma:.3g}"


def _frequency(flags, probability, what):
    _within(np.mean(flags), probability, math.sqrt(probability * (1 - probability) / flags.size), what)


def _fraction_below(sample, point, probability, what):
    _frequency(sample < point, probability, what)


@pytest.mark.parametrize("name, low, high", [("uniform32", 0.0, 1.0), ("uniform64", -2.0, 3.0)])
def test_uniform_lies_in_its_range_with_uniform_moments(sampled, name, low, high):
    u = _draw(sampled, 7)[name].astype(np.float64)
    assert u.min() >= low and u.max() < high
    width, n = high - low, u.size
    _within(u.mean(), (low + high) / 2, width / math.sqrt(12 * n), f"{name} mean")
    # the variance of a sample variance: (mu4 - sigma^4) / n, mu4 = width^4 / 80 for a uniform
    _within(u.var(), width ** 2 / 12, width ** 2 * math.sqrt((1 / 80 - 1 / 144) / n), f"{name} variance")
    for quantile in (0.1, 0.25, 0.5, 0.9):
        _fraction_below(u, low + quantile * width, quantile, f"{name} below its {quantile} quantile")


@pytest.mark.parametrize("name", ["normal32", "normal64"])
def test_normal_moments_and_distribution(sampled, name):
    z = _draw(sampled, 7)[name].astype(np.float64)
    n = z.size
    _within(z.mean(), 0.0, 1 / math.sqrt(n), f"{name} mean")
    _within(z.var(), 1.0, math.sqrt(2 / n), f"{name} variance")
    _within(np.mean(z ** 4), 3.0, math.sqrt((105 - 9) / n), f"{name} fourth moment")  # E z^8 = 105
    for point in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0):
        _fraction_below(z, point, 0.5 * (1 + math.erf(point / math.sqrt(2))), f"{name} below {point}")


def test_bernoulli_frequencies(sampled):
    draw = _draw(sampled, 7)
    for column, p in enumerate(_feeds(7)[3]):  # p broadcast along the rows
        _frequency(draw["bernoulli"][:, column], p, f"bernoulli(p={p})")


# ---- dropout ---------------------------------------------------------------------------------------------------

RATE, DROPOUT_KEY = 0.25, 2


@pytest.fixture(scope="module")
def dropped(gr):
    x = gc.tensor("x", (3, 4), "float64")
    r = gc.tensor("r", (3, 4), "float64")
    key = gc.scalar("key", "int64")
    rate = gc.scalar("rate", "float64")
    y = gr.dropout(x, RATE, key)
    y_scheduled = gr.dropout(x, rate, key)
    loss = gc.sum(y * r)
    outputs = [y, gr.bernoulli(key, 1 - RATE, x.shape), gc.grad(loss, x), y_scheduled, gc.grad(gc.sum(y_scheduled * r), x)]
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), np.int64(DROPOUT_KEY)]
    f = gc.compile([x, r, key, rate], outputs, name="dropout")
    return {"f": f, "feeds": feeds, "loss": gc.lower([loss], [x, r, key]), "forward": gc.lower(outputs[:2], [x, key])}


def test_dropout_scales_the_kept_elements(dropped):
    x, r, key = dropped["feeds"]
    y, mask, _, y_scheduled, _ = dropped["f"](x, r, key, RATE)
    assert 0 < mask.sum() < mask.size, "the key should drop some elements and keep others"
    assert np.array_equal(y, np.where(mask, x / (1 - RATE), 0.0))
    interpreted_y, interpreted_mask = gc.interpret(dropped["forward"], x, key)[0]
    assert np.array_equal(y, interpreted_y) and np.array_equal(mask, interpreted_mask)
    assert np.array_equal(y_scheduled, y)
    assert np.array_equal(dropped["f"](x, r, key, 0.0)[3], x)


def test_dropout_gradient_goes_through_the_same_mask(dropped):
    x, r, key = dropped["feeds"]
    _, mask, grad, _, grad_scheduled = dropped["f"](x, r, key, RATE)
    numeric = central_differences(lambda arrays: float(gc.interpret(dropped["loss"], *arrays)[0][0]), [x, r, key], 0)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, np.where(mask, r / (1 - RATE), 0.0), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(grad_scheduled, grad)
    # the forward, the mask output and the scheduled dropout draw one sample; the backward reads it
    assert [op for _, op in dropped["f"].graph.nodes(data="op")].count("random_uniform") == 1


def test_dropout_at_rate_zero_or_outside_training_is_x(gr):
    x = gc.tensor("x", (3,))
    assert gr.dropout(x, 0.0, 1) is x and gr.dropout(x, 0.5, 1, training=False) is x


# ---- passes --------------------------------------------------------------------------------------------------

def test_cse_merges_only_identical_samples_and_fold_leaves_them(gr):
    k1, k2 = gc.scalar("k1", "int64"), gc.scalar("k2", "int64")
    samples = [gr.uniform(k1, (3,)), gr.uniform(k1, (3,)), gr.uniform(k2, (3,)), gr.uniform(k1, (3,), low=0.5),
               gr.uniform(5, (3,)), gr.normal(k1, (3,)), gr.normal(k1, (3,))]
    graph = passes.run_pipeline(gc.lower(samples, [k1, k2]), passes.PIPELINE).graph
    ops = [graph.op(n) for n in graph.g]
    assert ops.count("random_uniform") == 4 and ops.count("random_normal") == 1
    assert graph.outputs[0] == graph.outputs[1] and graph.outputs[5] == graph.outputs[6]


# ---- mistakes ------------------------------------------------------------------------------------------------

def _mistakes(gr):
    x = gc.tensor("x", (2,))
    return [  # (the mistake, one lambda per line: the line the message names; the error class; words it holds)
        (lambda: gr.uniform(gc.scalar("kf", "float64"), (2,)), gc.DTypeError, ["random_uniform", "int64 scalar", "f64[]"]),
        (lambda: gr.normal(gc.tensor("kv", (2,), "int64"), (2,)), gc.ShapeError, ["random_normal", "rank 1"]),
        (lambda: gr.uniform(True, (2,)), gc.DTypeError, ["random.uniform", "bool"]),
        (lambda: gr.uniform(2 ** 63, (2,)), gc.DTypeError, ["random.uniform", "out of bounds for int64"]),
        (lambda: gr.uniform(0, (2,), "int64"), gc.DTypeError, ["random.uniform", "float32 or float64"]),
        (lambda: gr.uniform(0, (2,), low=1.0, high=1.0), gc.GraphcError, ["random.uniform", "low < high"]),
        (lambda: gr.normal(0, "ab"), gc.ShapeError, ["random.normal", "str 'ab'"]),
        (lambda: gr.bernoulli(0, 1.5, (2,)), gc.GraphcError, ["random.bernoulli", "[0, 1]"]),
        (lambda: gr.bernoulli(0, gc.tensor("pp", (3,)), (2,)), gc.ShapeError, ["random.bernoulli", "(2,)", "f32[3]"]),
        (lambda: gr.split(0, 0), gc.ShapeError, ["random.split", "positive int"]),
        (lambda: gr.fold_in(0, 1.5), gc.DTypeError, ["random.fold_in", "float"]),
        (lambda: gr.dropout(x, 1.0, 0), gc.GraphcError, ["random.dropout", "[0, 1)", "f32[2]"]),
        (lambda: gr.dropout(x, gc.scalar("ri", "int64"), 0), gc.DTypeError, ["random.dropout", "int64"]),
    ]


def test_mistakes_name_the_op_the_operands_and_the_line(gr):
    for mistake, error_class, words in _mistakes(gr):
        with pytest.raises(error_class) as caught:
            mistake()
        message = str(caught.value)
        for word in words + [f"test_random.py:{mistake.__code__.co_firstlineno}"]:
            assert word in message, f"{word!r} not in {message!r}"
