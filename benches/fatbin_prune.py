#!/usr/bin/env python3
"""Keep one GPU architecture's kernels in a CUDA shared library (benches/cuda_bundle.sh).

A CUDA library's `.nv_fatbin` section is a run of fat binaries, one per translation unit, each
a header (magic 0xBA55ED50, version, header size, payload size) followed by entries (kind: 1 PTX,
2 cubin; the target architecture at byte 28 of the entry header). The CUDA runtime registers each
fat binary by its start address and reads its entries from there, then picks the entry that
matches the device. This rewrites every fat binary in place with only the entries for --arch
(cubins, and PTX for that architecture if any), its payload size shrunk to match, and the freed
bytes zeroed: same file size, same offsets, every other byte unchanged, and the zeros compress
to nothing. A fat binary with no entry for --arch is left empty (its kernels cannot run on that
device anyway) and is reported.

    python3 benches/fatbin_prune.py --arch 90 libonnxruntime_providers_cuda.so pruned.so
"""

import argparse
import collections
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50


def section(data, name):
    """(offset, size) of the ELF64 little-endian section `name`."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def header(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    strtab = header(shstrndx)
    for i in range(shnum):
        h = header(i)
        start = strtab[4] + h[0]
        if data[start:data.index(b"\0", start)].decode() == name:
            return h[4], h[5]
    sys.exit(f"no {name} section")


def prune(data, arch):
    off, size = section(data, ".nv_fatbin")
    end, p = off + size, off
    kept, dropped, empty = collections.Counter(), collections.Counter(), 0
    while p < end:
        magic, _version, header_size, payload = struct.unpack_from("<IHHQ", data, p)
        if magic != FATBIN_MAGIC:
            p += 8  # fat binaries are 8-byte aligned; padding between them
            continue
        body_start, body_end = p + header_size, p + header_size + payload
        q, body = body_start, bytearray()
        while q < body_end:
            kind, _v, entry_header, entry_payload = struct.unpack_from("<HHIQ", data, q)
            if entry_header == 0:
                break
            entry_arch, = struct.unpack_from("<I", data, q + 28)
            entry = data[q:q + entry_header + entry_payload]
            if entry_arch == arch:
                body += entry
                kept[(kind, entry_arch)] += len(entry)
            else:
                dropped[(kind, entry_arch)] += len(entry)
            q += entry_header + entry_payload
        if not body:
            empty += 1
        struct.pack_into("<Q", data, p + 8, len(body))
        data[body_start:body_end] = body + bytes(payload - len(body))
        p = body_end
    return kept, dropped, empty


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="SM version to keep, e.g. 90 for sm_90")
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args()
    data = bytearray(open(args.src, "rb").read())
    kept, dropped, empty = prune(data, args.arch)
    if not kept:
        sys.exit(f"{args.src} has no kernels for sm_{args.arch}")
    kinds = {1: "PTX", 2: "cubin"}
    mib = lambda c: sum(c.values()) / 2**20
    print(f"kept {mib(kept):.1f} MiB ({', '.join(f'{kinds.get(k, k)} sm_{a}' for k, a in sorted(kept))}); "
          f"dropped {mib(dropped):.1f} MiB (sm_{', sm_'.join(sorted({str(a) for _, a in dropped}))}); "
          f"{empty} fat binaries without sm_{args.arch}", file=sys.stderr)
    open(args.dst, "wb").write(data)


if __name__ == "__main__":
    main()
