#!/usr/bin/env python3
"""Where two compressors' bits go: compares two per-byte cost files of one input.

    scripts/cost_diff.py FILE A.f32 B.f32

Each cost file holds one little-endian f32 per byte of FILE: the bits the compressor
spent on it (nnz writes them with `bytes_bench --x86 off` and `BYTES_COSTS=PATH`; the
input must not be filtered, so that byte i is byte i). Prints both totals, then the bits
of A and B and their difference grouped by the byte's place in markup (XML, HTML), its
class, the class of the byte before, the column and the position in an alphanumeric
word, the bytes where A loses most, and the bytes grouped by A's cost.
"""
import collections
import struct
import sys


def costs(path, n):
    raw = open(path, 'rb').read()
    assert len(raw) == 4 * n, f"{path}: {len(raw) // 4} costs for {n} bytes"
    return struct.unpack(f'<{n}f', raw)


def cls(c):
    ch = chr(c)
    if ch.isalpha():
        return 'alpha'
    if ch.isdigit():
        return 'digit'
    if ch == ' ':
        return 'space'
    if ch == '\n':
        return 'nl'
    return 'punct' if 32 < c < 127 else 'other'


def markup_places(data):
    """Where each byte stands in markup, as the byte model's markup contexts see it: the
    byte after `<` ('tag start'), a start tag's name, an end tag's name, between
    attributes, an attribute's value, content; `<` and `>` themselves."""
    place, out = 'content', []
    for c in data:
        ch = chr(c)
        out.append('<' if ch == '<' else '>' if ch == '>' else place)
        if ch == '<':
            place = 'tag start'
        elif place == 'tag start':
            place = 'end tag name' if ch == '/' else 'tag name'
        elif place in ('tag name', 'end tag name'):
            if ch in ' \t\n':
                place = 'attributes'
            elif ch == '/':
                place = 'empty'
        elif place == 'attributes' and ch == '"':
            place = 'value'
        elif place == 'value' and ch == '"':
            place = 'attributes'
        if ch == '>':
            place = 'content'
    return out


def main():
    path, a_path, b_path = sys.argv[1:4]
    data = open(path, 'rb').read()
    a, b = costs(a_path, len(data)), costs(b_path, len(data))
    n = len(data)
    print(f"total bits A {sum(a):.0f} B {sum(b):.0f} ({sum(a) / n:.4f} / {sum(b) / n:.4f} bits per byte)")
    gap = sum(a) - sum(b)
    groups = collections.defaultdict(lambda: [0, 0.0, 0.0])

    def add(key, i):
        g = groups[key]
        g[0] += 1
        g[1] += a[i]
        g[2] += b[i]

    col = word = 0
    places = markup_places(data)
    for i, c in enumerate(data):
        add(('place in markup', places[i]), i)
        add(('byte class', cls(c)), i)
        add(('class of the byte before', cls(data[i - 1] if i else 10)), i)
        add(('column', col if col < 12 else '12+'), i)
        add(('position in word', min(word, 4)), i)
        add(('byte', repr(chr(c))), i)
        col = 0 if c == 10 else col + 1
        word = word + 1 if chr(c).isalnum() else 0
    for kind in ['place in markup', 'byte class', 'class of the byte before', 'column', 'position in word', 'byte']:
        print(f"== by {kind}")
        rows = sorted(((k[1], v) for k, v in groups.items() if k[0] == kind), key=lambda kv: -(kv[1][1] - kv[1][2]))
        for key, (count, x, y) in rows[:15]:
            print(f"  {str(key):8} n={count:7} A {x:9.0f} B {y:9.0f} diff {x - y:+8.0f} ({100 * (x - y) / gap:5.1f}% of the gap)"
                  f"  bits per byte {x / count:.3f} / {y / count:.3f}")


if __name__ == '__main__':
    main()
