#!/usr/bin/env python3
"""Inputs and independent references for the end-to-end tests, with the standard library only (the test
machine has no numpy): writes .npy float32 files, and checks a result file against a reference computed
here in double precision.

  npy-check.py make DIR            writes DIR/{a,b,x}.npy (gemm A 24x40, B 40x12; relu/softmax X 9x33)
  npy-check.py check OP DIR OUT    OP in gemm, relu, softmax: compares OUT with the reference; exit 1 if off
"""
import math
import random
import struct
import sys


def write_npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else ""))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%df" % len(values), *values))


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise SystemExit(f"{path}: not an .npy file")
    major = data[6]
    hlen, start = (struct.unpack("<H", data[8:10])[0], 10) if major == 1 else (struct.unpack("<I", data[8:12])[0], 12)
    header = data[start:start + hlen].decode("latin1")
    if "'<f4'" not in header or "True" in header:
        raise SystemExit(f"{path}: expected little-endian float32 in C order: {header.strip()}")
    shape = tuple(int(x) for x in header.split("(")[1].split(")")[0].split(",") if x.strip())
    body = data[start + hlen:]
    return shape, struct.unpack("<%df" % (len(body) // 4), body)


def make(d):
    rnd = random.Random(20261124)
    write_npy(f"{d}/a.npy", (24, 40), [rnd.uniform(-1, 1) for _ in range(24 * 40)])
    write_npy(f"{d}/b.npy", (40, 12), [rnd.uniform(-1, 1) for _ in range(40 * 12)])
    write_npy(f"{d}/x.npy", (9, 33), [rnd.uniform(-4, 4) for _ in range(9 * 33)])


def reference(op, d):
    if op == "gemm":
        (m, k), a = read_npy(f"{d}/a.npy")
        (_, n), b = read_npy(f"{d}/b.npy")
        return (m, n), [sum(a[i * k + p] * b[p * n + j] for p in range(k)) for i in range(m) for j in range(n)]
    (rows, cols), x = read_npy(f"{d}/x.npy")
    if op == "relu":
        return (rows, cols), [max(v, 0.0) for v in x]
    out = []
    for r in range(rows):
        row = x[r * cols:(r + 1) * cols]
        top = max(row)
        e = [math.exp(v - top) for v in row]
        out += [v / sum(e) for v in e]
    return (rows, cols), out


def check(op, d, result):
    shape, want = reference(op, d)
    got_shape, got = read_npy(result)
    if got_shape != shape:
        raise SystemExit(f"{op}: shape {got_shape}, expected {shape}")
    err = max(abs(g - w) for g, w in zip(got, want))
    tol = 1e-4 if op == "gemm" else 1e-6
    print(f"{op}: {len(got)} values, max error {err:.2e} (tolerance {tol:.0e})")
    return 0 if err <= tol else 1


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
