#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes a file's bytes as a C array: embed.py INPUT OUTPUT SYMBOL [--nul].

Defines `const unsigned char SYMBOL[]` (8-byte aligned: images are read as 64-bit fields) and
`const unsigned long SYMBOL_size` (the byte count, without the NUL that --nul appends for text)."""
import sys


def main() -> int:
    if len(sys.argv) not in (4, 5) or (len(sys.argv) == 5 and sys.argv[4] != "--nul"):
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, symbol = sys.argv[1:4]
    data = open(src, "rb").read()
    body = data + (b"\0" if len(sys.argv) == 5 else b"")
    lines = [", ".join(str(b) for b in body[i:i + 24]) for i in range(0, len(body), 24)]
    with open(dst, "w") as out:
        out.write(f"/* Generated from {src.rsplit('/', 1)[-1]} by embed.py. */\n")
        out.write(f"extern const unsigned char {symbol}[];\n")
        out.write(f"extern const unsigned long {symbol}_size;\n")
        out.write(f"__attribute__((aligned(8))) const unsigned char {symbol}[] = {{\n")
        out.write(",\n".join(lines))
        out.write("\n};\n")
        out.write(f"const unsigned long {symbol}_size = {len(data)}UL;\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
