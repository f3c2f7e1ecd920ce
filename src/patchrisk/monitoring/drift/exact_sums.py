"""Sums of float64 values (and of their squares) that are exact, so any partitioning merges to the same bits.

A float sum depends on the order it is taken in: a window summed in one pass and the same window
summed in four partitions and then added differ in the last bits, and "identical statistics" from
a fanned-out job would be false. Every finite float64 is an integer multiple of 2**-1126 (with
margin below the smallest subnormal), so its value is the Python integer ``mantissa << shift``;
sums of those integers are exact, associative and order-free. The work is vectorised: values are
split into 18-bit limbs whose per-exponent sums fit a float64 exactly (bincount), and only one
Python big-integer step per distinct exponent remains (tens per batch, not one per row).
"""

from __future__ import annotations

import numpy as np

SCALE_BITS = 1126  # value = integer * 2**-SCALE_BITS for every finite float64
LIMB = 18
CHUNK = 1 << 16  # limb products < 2**37, times 2**16 rows < 2**53: bincount's float sums stay exact


def _limbs(values: np.ndarray):
    """|x| = m * 2**(exponent - 53) with the integer m < 2**53 cut in three 18-bit limbs, as float64
    (integers below 2**53: exact). Read from the IEEE 754 bits with integer shifts and masks, not
    frexp/ldexp/floor: the same sums at a quarter of the cost (the limbs were most of a monitor run's
    CPU). A subnormal keeps its unnormalised mantissa; m * 2**(exponent - 53) is the same value."""
    bits = values.view(np.uint64)
    biased = (bits >> np.uint64(52)) & np.uint64(0x7FF)
    normal = biased != 0
    m = bits & np.uint64((1 << 52) - 1)
    m[normal] |= np.uint64(1 << 52)
    exponent = np.where(normal, biased.astype(np.int64), 1) - 1022
    mask = np.uint64((1 << LIMB) - 1)
    return ((m >> np.uint64(2 * LIMB)).astype(np.float64), ((m >> np.uint64(LIMB)) & mask).astype(np.float64),
            (m & mask).astype(np.float64), exponent)


def exact_sums(values: np.ndarray) -> tuple[int, int]:
    """(sum of values * 2**SCALE_BITS, sum of squares * 2**(2*SCALE_BITS)) of finite float64s, exactly."""
    values = np.ascontiguousarray(values, dtype=np.float64)  # its bits are read as uint64
    total = total_sq = 0
    for start in range(0, values.size, CHUNK):
        t, s = _chunk_sums(values[start:start + CHUNK])
        total += t
        total_sq += s
    return total, total_sq


SMALL_INTEGER = 1 << 23  # |k| below it: k² < 2**46, and 2**16 of those sum below 2**62 in int64


def _chunk_sums(values: np.ndarray) -> tuple[int, int]:
    if values.size == 0:
        return 0, 0
    if np.abs(values).max() < SMALL_INTEGER and np.array_equal(values, np.rint(values)):
        # Counts (files changed, lines added, devices targeted...) are most numeric features: their
        # sums are exact in int64 directly, without the limbs (a sixth of the CPU).
        ints = values.astype(np.int64)
        return int(ints.sum()) << SCALE_BITS, int((ints * ints).sum()) << (2 * SCALE_BITS)
    a, b, c, exponent = _limbs(values)
    low = int(exponent.min())
    group = exponent - low  # exponents span a few dozen values in practice: a dense bincount, no sort
    n = int(group.max()) + 1
    used = np.flatnonzero(np.bincount(group, minlength=n))

    def by_shift(weights: np.ndarray) -> list[int]:
        return [int(w) for w in np.bincount(group, weights=weights, minlength=n)[used]]

    sign = np.sign(values)
    # sum of signed m = a*2**36 + b*2**18 + c; each limb's signed sum per exponent is exact
    sa, sb, sc = by_shift(sign * a), by_shift(sign * b), by_shift(sign * c)
    # m**2 = a²·2**72 + 2ab·2**54 + (2ac + b²)·2**36 + 2bc·2**18 + c²
    q4, q3, q2, q1, q0 = (by_shift(a * a), by_shift(2 * a * b), by_shift(2 * a * c + b * b),
                          by_shift(2 * b * c), by_shift(c * c))
    total = total_sq = 0
    for k, shift in enumerate((used + low - 53 + SCALE_BITS).tolist()):
        total += ((sa[k] << 36) + (sb[k] << 18) + sc[k]) << shift
        total_sq += ((q4[k] << 72) + (q3[k] << 54) + (q2[k] << 36) + (q1[k] << 18) + q0[k]) << (2 * shift)
    return total, total_sq


def exact_mean(total: int, count: int) -> float:
    """The correctly rounded mean (Python's int / int division is correctly rounded)."""
    if not count:
        return float("nan")
    try:
        return total / (count << SCALE_BITS)
    except OverflowError:
        return float("inf") if total > 0 else float("-inf")


def exact_std(total: int, total_sq: int, count: int) -> float:
    """Population standard deviation from exact sums: variance = (n·Σx² − (Σx)²) / n², rounded once."""
    if not count:
        return float("nan")
    try:
        variance = (count * total_sq - total * total) / ((count * count) << (2 * SCALE_BITS))
    except OverflowError:  # beyond float64, as numpy's std would be
        return float("inf")
    return float(np.sqrt(max(variance, 0.0)))
