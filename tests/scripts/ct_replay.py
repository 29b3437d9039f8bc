#!/usr/bin/env python3
"""Replays one TCP trace through a Linux firewall namespace, segment by segment.

Usage: ct_replay.py RUN.json

Run it inside the firewall namespace (`ip netns exec FW ct_replay.py ...`).
RUN.json (written by tandem_tests::diff::linux) names the two endpoint
namespaces, their veth ends and MAC addresses, the addresses and ports, and the
segments. Prints one JSON object on stdout:

    {"results": [{"verdict": "pass" | "drop" | "lost", "tcp": "<hex>", "ms": 0.4}, ...]}

    a0 (ns A) ---- fwa [FW: forwards, conntrack, nft drops ct state invalid] fwb ---- b0 (ns B)
    C's segments are sent on a0, S's on b0, each as a whole Ethernet frame
    addressed to the firewall's MAC on that side.

Both verdicts are observed, not inferred from silence:
  pass  the frame came out on the far side's veth (its TCP header and payload
        byte for byte: conntrack does not rewrite anything without NAT);
  drop  the firewall's conntrack counted the packet invalid (column "invalid"
        of /proc/net/stat/nf_conntrack, read in FW); the ruleset drops exactly
        the invalid packets and nothing else crosses FW;
  lost  neither happened within the time limit: the harness is broken (a
        packet dropped before conntrack, a missing neighbour entry, ...).

The sockets of A and B are opened after entering those namespaces with
setns(2); the statistics file is opened first, in FW. One process replays one
trace; the segments go out one at a time, each after the previous one's
verdict.
"""

import ctypes
import json
import os
import select
import socket
import sys
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
STATS = "/proc/net/stat/nf_conntrack"


def setns(path):
    """Moves this (single-threaded) process into the network namespace at path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):
            os.setns(fd, CLONE_NEWNET)
        else:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def packet_socket(ifname):
    """A raw socket on ifname, in the current namespace, that sees every frame."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def invalid_count(fd):
    """Sum over CPUs of conntrack's "invalid" counter (hex columns)."""
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    lines = data.decode().splitlines()
    col = lines[0].split().index("invalid")
    return sum(int(line.split()[col], 16) for line in lines[1:] if line.strip())


def tcp_bytes(frame):
    """The TCP header and payload of an IPv4 frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    if ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = int.from_bytes(ip[2:4], "big")
    return bytes(ip[ihl:total])


def build(p, run, ident):
    """The Ethernet frame of segment p (checksums filled in by scapy)."""
    if p["from"] == "client":
        src_mac, dst_mac = run["a_mac"], run["fw_a_mac"]
        sip, dip = run["client_ip"], run["server_ip"]
        sport, dport = run["client_port"], run["server_port"]
    else:
        src_mac, dst_mac = run["b_mac"], run["fw_b_mac"]
        sip, dip = run["server_ip"], run["client_ip"]
        sport, dport = run["server_port"], run["client_port"]
    opts = []
    if p["mss"] is not None:
        opts.append(("MSS", p["mss"]))
    if p["sack_permitted"]:
        opts.append(("SAckOK", b""))
    if p["wscale"] is not None:
        opts += [("NOP", None), ("WScale", p["wscale"])]
    if p["sack"] is not None:
        opts += [("NOP", None), ("NOP", None), ("SAck", tuple(p["sack"]))]
    seg = TCP(
        sport=sport,
        dport=dport,
        seq=p["seq"],
        ack=p["ack"],
        flags=p["flags"],
        window=p["window"],
        options=opts,
    )
    frame = Ether(src=src_mac, dst=dst_mac) / IP(src=sip, dst=dip, ttl=64, id=ident) / seg
    if p["len"]:
        frame = frame / Raw(bytes(i & 0xFF for i in range(p["len"])))
    return bytes(frame)


def drain(sock):
    while True:
        try:
            sock.recvfrom(65535)
        except BlockingIOError:
            return


def arrived(sock, want):
    """Reads what is queued on sock; True if the segment want is among it."""
    while True:
        try:
            frame, addr = sock.recvfrom(65535)
        except BlockingIOError:
            return False
        if addr[2] != PACKET_OUTGOING and tcp_bytes(frame) == want:
            return True


def verdict(rx, want, stats, before, timeout):
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([rx], [], [], 0.001)
        if ready and arrived(rx, want):
            return "pass"
        if invalid_count(stats) > before:
            return "drop"
        if time.monotonic() >= deadline:
            return "lost"


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        run = json.load(f)
    timeout = run["timeout_ms"] / 1000.0

    stats = os.open(STATS, os.O_RDONLY)  # in FW, where we were started
    setns(run["a_netns"])
    a = packet_socket(run["a_if"])
    setns(run["b_netns"])
    b = packet_socket(run["b_if"])

    results = []
    for i, p in enumerate(run["packets"]):
        frame = build(p, run, i + 1)
        want = tcp_bytes(frame)
        tx, rx = (a, b) if p["from"] == "client" else (b, a)
        drain(rx)
        before = invalid_count(stats)
        start = time.monotonic()
        tx.send(frame)
        v = verdict(rx, want, stats, before, timeout)
        ms = round((time.monotonic() - start) * 1000.0, 2)
        results.append({"verdict": v, "tcp": want.hex(), "ms": ms})
    json.dump({"results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
