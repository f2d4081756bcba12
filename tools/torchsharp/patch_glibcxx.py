#!/usr/bin/env python3
"""Make TorchSharp's native shim load on Debian 12.

libLibTorchSharp.so (TorchSharp 0.107.0) declares a need for GLIBCXX_3.4.32 (GCC 13's libstdc++), but
Debian 12 ships libstdc++ up to GLIBCXX_3.4.30, so dlopen fails and TorchSharp reports the misleading
"libtorch-cpu-linux-x64 ... is not restored". The only symbol behind that version is
_ZSt21ios_base_library_initv, which GCC 13 emits for <iostream> static init and older libstdc++ performs
itself, so the need can be marked weak (VER_FLG_WEAK in the Vernaux entry of .gnu.version_r): the dynamic
linker then accepts the library without that version.

Usage: patch_glibcxx.py DIR [DIR...]   patches every libLibTorchSharp.so below each DIR.
No-op when the system libstdc++ already provides GLIBCXX_3.4.32. Idempotent: an entry already weak is left as is.
"""
import os
import struct
import sys
import tempfile

VERSION = b"GLIBCXX_3.4.32"
VER_FLG_WEAK = 0x2
SYSTEM_LIBSTDCXX = ["/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6"]


def system_has_version():
    for path in SYSTEM_LIBSTDCXX:
        if os.path.exists(path):
            with open(path, "rb") as f:
                return VERSION in f.read()
    # No libstdc++ where we look (not glibc Linux?): patching is harmless, the weak flag only relaxes a check.
    return False


def patch_bytes(data):
    """Returns (new bytes, changed entries) or raises ValueError for a file that is not a 64-bit LE ELF."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    buf = bytearray(data)
    e_shoff, = struct.unpack_from("<Q", buf, 0x28)
    e_shentsize, e_shnum = struct.unpack_from("<HH", buf, 0x3A)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info = struct.unpack_from("<IIQQQQII", buf, off)
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_info))
    SHT_GNU_VERNEED = 0x6FFFFFFE
    changed = 0
    found = False
    for sh_type, sh_offset, sh_size, sh_link, sh_info in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab_off = sections[sh_link][1]

        def name_at(o):
            start = strtab_off + o
            return bytes(buf[start:buf.index(b"\0", start)])

        vn = sh_offset
        for _ in range(sh_info):  # sh_info = number of Verneed entries
            vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", buf, vn)
            aux = vn + vn_aux
            for _ in range(vn_cnt):
                vna_hash, vna_flags, vna_other, vna_name, vna_next = struct.unpack_from("<IHHII", buf, aux)
                if name_at(vna_name) == VERSION:
                    found = True
                    if not vna_flags & VER_FLG_WEAK:
                        struct.pack_into("<H", buf, aux + 4, vna_flags | VER_FLG_WEAK)
                        changed += 1
                if vna_next == 0:
                    break
                aux += vna_next
            if vn_next == 0:
                break
            vn += vn_next
    return bytes(buf), changed, found


def patch_file(path):
    with open(path, "rb") as f:
        data = f.read()
    new, changed, found = patch_bytes(data)
    if not found:
        print(f"patch_glibcxx: {path}: no {VERSION.decode()} need, nothing to do")
        return
    if changed == 0:
        print(f"patch_glibcxx: {path}: already patched")
        return
    # Write a new file and rename it over the old one: the output copy may be a hard link into the NuGet cache,
    # which must stay pristine.
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".libLibTorchSharp.")
    with os.fdopen(fd, "wb") as f:
        f.write(new)
    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)
    print(f"patch_glibcxx: {path}: marked {VERSION.decode()} weak")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    if system_has_version():
        print(f"patch_glibcxx: system libstdc++ provides {VERSION.decode()}, no patch needed")
        return 0
    for root in argv[1:]:
        for dirpath, _, files in os.walk(root):
            for name in files:
                if name == "libLibTorchSharp.so":
                    patch_file(os.path.join(dirpath, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
