#!/usr/bin/env python3
"""Writes the seed corpus: corpus/<target>/seed-<name>, a few valid packets per
fuzz target, encoded here with struct, independently of the Rust code.

Run from anywhere: python3 dataplane/fuzz/make_seeds.py
"""
import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

V4_SRC, V4_DST = "192.0.2.1", "198.51.100.7"  # the fuzz targets' UDP/TCP pair
V6_SRC, V6_DST = "2001:db8::1", "2001:db8::2"
LL_SRC, LL_DST = "fe80::1", "fe80::2"  # the icmpv6 target's pair
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip(a: str) -> bytes:
    return ipaddress.ip_address(a).packed


def pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    s, d = ip(src), ip(dst)
    if len(s) == 4:
        return s + d + struct.pack("!BBH", 0, proto, length)
    return s + d + struct.pack("!IxxxB", length, proto)


def with_csum(msg: bytes, at: int, prefix: bytes = b"") -> bytes:
    c = csum(prefix + msg)
    return msg[:at] + struct.pack("!H", c) + msg[at + 2 :]


def udp(src, dst, sport, dport, payload, zero=False):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if zero:
        return u
    u = with_csum(u, 6, pseudo(src, dst, 17, len(u)))
    if u[6:8] == b"\0\0":
        u = u[:6] + b"\xff\xff" + u[8:]
    return u


def tcp(src, dst, sport, dport, seq, ack, flags, window, options=b"", payload=b""):
    options += b"\0" * (-len(options) % 4)
    off = (20 + len(options)) // 4
    t = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0)
    t += options + payload
    return with_csum(t, 16, pseudo(src, dst, 6, len(t)))


def icmp4(typ, code, rest, data):
    return with_csum(struct.pack("!BBH", typ, code, 0) + rest + data, 2)


def icmp6(src, dst, typ, code, rest, data):
    m = struct.pack("!BBH", typ, code, 0) + rest + data
    return with_csum(m, 2, pseudo(src, dst, 58, len(m)))


def ipv4(src, dst, proto, payload, ttl=64, ident=1, flags_off=0x4000, options=b"", pad=b""):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, flags_off, ttl, proto, 0, ip(src), ip(dst))
    h += options
    return with_csum(h, 10) + payload + pad


def ipv6(src, dst, nh, payload, hop=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hop, ip(src), ip(dst)) + payload


def eth(ethertype, payload, tags=()):
    out = MAC_B + MAC_A
    for tpid, tci in tags:
        out += struct.pack("!HH", tpid, tci)
    return out + struct.pack("!H", ethertype) + payload


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, ip(spa), tha, ip(tpa))


def seeds():
    dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    syn_opts = bytes.fromhex("020405b4") + bytes.fromhex("0402") + bytes.fromhex("080a0000000100000000") + bytes.fromhex("01030307")
    sack_opts = bytes.fromhex("0101080a0000000200000001") + bytes.fromhex("0101050a000003e8000007d0")
    t_syn = tcp(V4_SRC, V4_DST, 40000, 80, 0x01234567, 0, 0x02, 64240, syn_opts)
    t_ack = tcp(V4_SRC, V4_DST, 40000, 80, 0x01234568, 0x89ABCDF0, 0x18, 502, sack_opts, b"GET / HTTP/1.0\r\n\r\n")
    t_rst = tcp(V4_SRC, V4_DST, 80, 40000, 0, 0x01234568, 0x14, 0)
    u_dns = udp(V4_SRC, V4_DST, 53000, 53, dns)
    echo = icmp4(8, 0, struct.pack("!HH", 0x1234, 1), b"abcdefghijklmnop")
    quoted = ipv4("10.0.0.1", "10.0.1.1", 17, u_dns[:8], ttl=1)[:28]
    time_exceeded = icmp4(11, 0, b"\0\0\0\0", quoted)
    frag_needed = icmp4(3, 4, struct.pack("!HH", 0, 1400), quoted)
    v4_udp = ipv4(V4_SRC, V4_DST, 17, u_dns)
    v4_opts = ipv4(V4_SRC, V4_DST, 1, echo, options=bytes.fromhex("94040000"), pad=b"\0" * 6)
    v4_frag = ipv4(V4_SRC, V4_DST, 17, u_dns[:16], flags_off=0x2000 | 0)
    v4_frag2 = ipv4(V4_SRC, V4_DST, 17, u_dns[16:], flags_off=2)
    req = arp(1, MAC_A, "192.168.1.1", b"\0" * 6, "192.168.1.254")
    rep = arp(2, MAC_B, "192.168.1.254", MAC_A, "192.168.1.1")

    u6 = udp(V6_SRC, V6_DST, 546, 547, b"\x01\x00\x00\x01")
    t6 = tcp(V6_SRC, V6_DST, 40000, 443, 7, 0, 0x02, 65535, syn_opts)
    hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])  # -> DestOpts, PadN
    dst_opts = bytes([44, 0, 1, 4, 0, 0, 0, 0])  # -> Fragment
    frag_first = bytes([6, 0]) + struct.pack("!HI", 0x0001, 0xDEADBEEF)  # -> TCP, offset 0, M
    frag_later = bytes([6, 0]) + struct.pack("!HI", 1448, 0xDEADBEEF)  # offset 1448
    e6 = icmp6(V6_SRC, V6_DST, 128, 0, struct.pack("!HH", 7, 1), b"ping6")
    v6_udp = ipv6(V6_SRC, V6_DST, 17, u6)
    v6_chain = ipv6(V6_SRC, V6_DST, 0, hbh + dst_opts + frag_first + t6)
    v6_later = ipv6(V6_SRC, V6_DST, 44, frag_later + b"\xaa" * 16)
    v6_icmp = ipv6(V6_SRC, V6_DST, 58, e6)

    ll_echo = icmp6(LL_SRC, LL_DST, 128, 0, struct.pack("!HH", 0x1234, 0xABCD), b"\xaa\x00\x00\xff")
    ll_ns = icmp6(LL_SRC, LL_DST, 135, 0, b"\0" * 4, ip(LL_DST) + bytes([1, 1]) + MAC_A)
    ll_na = icmp6(LL_SRC, LL_DST, 136, 0, bytes([0x60, 0, 0, 0]), ip(LL_SRC) + bytes([2, 1]) + MAC_A)
    ll_ptb = icmp6(LL_SRC, LL_DST, 2, 0, struct.pack("!I", 1280), v6_udp[:48])

    return {
        "ethernet": {
            "ipv4": eth(0x0800, v4_udp),
            "vlan-ipv6": eth(0x86DD, v6_udp, tags=[(0x8100, 0xB064)]),
            "qinq-arp": eth(0x0806, req + b"\0" * 18, tags=[(0x88A8, 0x0FFF), (0x8100, 0x2007)]),
        },
        "arp": {"request": req, "reply": rep, "padded": req + b"\0" * 18},
        "ipv4": {"udp": v4_udp, "options-icmp-padded": v4_opts, "first-frag": v4_frag, "later-frag": v4_frag2},
        "icmpv4": {"echo": echo, "time-exceeded": time_exceeded, "frag-needed": frag_needed},
        "udp": {"dns": u_dns, "zero-checksum": udp(V4_SRC, V4_DST, 1234, 5678, b"x", zero=True)},
        "tcp": {"syn": t_syn, "ack-sack-data": t_ack, "rst": t_rst},
        "ipv6": {"udp": v6_udp, "ext-chain": v6_chain, "later-frag": v6_later, "icmpv6": v6_icmp},
        "icmpv6": {"echo": ll_echo, "ns": ll_ns, "na": ll_na, "packet-too-big": ll_ptb},
        "frame": {
            "ipv4-tcp": eth(0x0800, ipv4(V4_SRC, V4_DST, 6, t_syn)),
            "ipv4-icmp-error": eth(0x0800, ipv4(V4_DST, V4_SRC, 1, time_exceeded)),
            "vlan-ipv4-udp": eth(0x0800, v4_udp, tags=[(0x8100, 100)]),
            "ipv6-chain": eth(0x86DD, v6_chain),
            "qinq-ipv6-icmp": eth(0x86DD, v6_icmp, tags=[(0x88A8, 10), (0x8100, 20)]),
            "arp": eth(0x0806, req + b"\0" * 18),
        },
    }


def main():
    for target, files in seeds().items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, f"seed-{name}"), "wb") as f:
                f.write(data)
    print("wrote", sum(len(f) for f in seeds().values()), "seeds")


if __name__ == "__main__":
    main()
