#!/usr/bin/env python3
"""Hand-made TCP segments from the lab's client, watched arriving at the server.

Usage: tcp_probe.py MODE --client-ns PATH --server-ns PATH --src IP --dst IP
                    --sport N --dport N [--iface eth0] [--timeout S]

Run from the root namespace (as root). One process watches both ends: a packet
socket on the server's interface (opened after entering the server namespace)
shows what the unit let through; the client's segments go out through a raw IP
socket in the client namespace (so the client kernel routes them and resolves
the gateway), and a packet socket on the client's interface catches the
answers. Scapy builds and parses the segments.

MODE
  spoof-ack  Two segments of no connection, as an attacker injecting into a
             flow the firewall never saw: a bare ACK and an ACK carrying data,
             both with random sequence and acknowledgement numbers. Then a SYN on
             the same addresses and ports, which the rules pass.
  window     A real handshake (SYN, the server's SYN/ACK, ACK), then a data
             segment far beyond the server's window (sequence + 2^30), then an
             in-window data segment. The client kernel knows nothing of this
             connection and would reset it on the SYN/ACK: the caller drops the
             client's outgoing RSTs for --sport first (nftables).
  icmp-error A real handshake, then three ICMP fragmentation-needed errors
             from the client to the server, told apart by their MTU field:
             `forged-error` quotes a client->server segment of the connection
             (it travels the way its quote went: forged); `out-of-window-error`
             quotes a server->client segment 2^30 beyond the server's sequence;
             `related-error` quotes a server->client segment at the server's
             next sequence number, as the client's own stack would. RSTs
             dropped by the caller as for `window`.

Negative results are observed, not inferred from a timeout: segments of one
flow cross the unit in order, so when a later segment of the same flow has
arrived at the server, an earlier one that did not arrive before it was
dropped. Prints one JSON object on stdout:

  {"mode": ..., "arrived": [names of the segments seen at the server, in
   order], "handshake": true|false, "acked": true|false, "log": [...]}

`handshake`: the SYN/ACK came back to the client; `acked` (window mode): the
server acknowledged the in-window data.
"""

import argparse
import ctypes
import json
import os
import random
import select
import socket
import sys
import time

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

CLONE_NEWNET = 0x40000000
ETH_P_IP = 0x0800

SPOOFED_BARE = "spoofed-bare-ack"
SPOOFED_DATA = "spoofed-data-ack"
OUT_OF_WINDOW = "out-of-window"
IN_WINDOW = "in-window"
FORGED_ERROR = "forged-error"
OUT_OF_WINDOW_ERROR = "out-of-window-error"
RELATED_ERROR = "related-error"
# The MTU field of each fragmentation-needed error names it at the server.
ERROR_MTUS = {1111: FORGED_ERROR, 1222: OUT_OF_WINDOW_ERROR, 1333: RELATED_ERROR}
MARKERS = {
    SPOOFED_DATA: b"TANDEM-SPOOFED-ACK",
    OUT_OF_WINDOW: b"TANDEM-OUT-OF-WINDOW",
    IN_WINDOW: b"TANDEM-IN-WINDOW",
}

LOG = []


def log(text):
    LOG.append(f"{time.monotonic():.3f} {text}")


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
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


class Probe:
    def __init__(self, args):
        self.a = args
        # The server's end first: the watcher lives in the server namespace.
        setns(args.server_ns)
        self.server = packet_socket(args.iface)
        setns(args.client_ns)
        self.client = packet_socket(args.iface)
        self.out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.arrived = []

    def send(self, name, flags, seq, ack, payload=b""):
        seg = IP(src=self.a.src, dst=self.a.dst) / TCP(
            sport=self.a.sport, dport=self.a.dport, flags=flags, seq=seq, ack=ack, window=64240
        )
        if payload:
            seg = seg / Raw(payload)
        self.out.sendto(bytes(seg), (self.a.dst, 0))
        log(f"sent {name}: flags {flags} seq {seq} ack {ack} len {len(payload)}")

    def send_error(self, name, quoted):
        """An ICMP fragmentation-needed from the client to the server quoting
        `quoted` (its IP header and first 8 bytes, as a router quotes)."""
        mtu = next(m for m, n in ERROR_MTUS.items() if n == name)
        err = IP(src=self.a.src, dst=self.a.dst) / ICMP(type=3, code=4, nexthopmtu=mtu)
        err = err / Raw(bytes(quoted)[:28])
        self.out.sendto(bytes(err), (self.a.dst, 0))
        q = quoted[TCP]
        log(f"sent {name}: quoting {quoted[IP].src}:{q.sport} -> {quoted[IP].dst}:{q.dport} seq {q.seq}")

    def error_name(self, frame):
        """The name of one of our ICMP errors arriving at the server, or None."""
        pkt = Ether(frame)
        if IP not in pkt or ICMP not in pkt:
            return None
        ip, icmp = pkt[IP], pkt[ICMP]
        if (ip.src, ip.dst, icmp.type, icmp.code) != (self.a.src, self.a.dst, 3, 4):
            return None
        return ERROR_MTUS.get(icmp.nexthopmtu)

    def ours(self, frame, src, dst, sport, dport):
        pkt = Ether(frame)
        if IP not in pkt or TCP not in pkt:
            return None
        ip, tcp = pkt[IP], pkt[TCP]
        if (ip.src, ip.dst, tcp.sport, tcp.dport) != (src, dst, sport, dport):
            return None
        return tcp

    def name_of(self, tcp):
        payload = bytes(tcp.payload)
        for name, marker in MARKERS.items():
            if marker in payload:
                return name
        flags = str(tcp.flags)
        if flags == "S":
            return "syn"
        if flags == "A" and not payload:
            # The handshake's ACK and the spoofed bare ACK differ by number.
            return "ack"
        return f"flags {flags} len {len(payload)}"

    def watch_server(self, until, timeout):
        """Records what reaches the server until a segment named `until` has."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.server], [], [], 0.1)
            if not r:
                continue
            while True:
                try:
                    frame = self.server.recv(65535)
                except BlockingIOError:
                    break
                name = self.error_name(frame)
                if name is not None:
                    log(f"at the server: {name}")
                else:
                    tcp = self.ours(frame, self.a.src, self.a.dst, self.a.sport, self.a.dport)
                    if tcp is None:
                        continue
                    name = self.name_of(tcp)
                    if name == "ack" and tcp.seq != self.handshake_ack_seq:
                        name = SPOOFED_BARE
                    log(f"at the server: {name} (seq {tcp.seq} ack {tcp.ack})")
                self.arrived.append(name)
                if name == until:
                    return True
        log(f"gave up waiting for {until} at the server")
        return False

    handshake_ack_seq = None

    def wait_client(self, want, timeout):
        """The first answer from the server for which want(tcp) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.client], [], [], 0.1)
            if not r:
                continue
            while True:
                try:
                    frame = self.client.recv(65535)
                except BlockingIOError:
                    break
                tcp = self.ours(frame, self.a.dst, self.a.src, self.a.dport, self.a.sport)
                if tcp is not None:
                    log(f"at the client: flags {tcp.flags} seq {tcp.seq} ack {tcp.ack}")
                    if want(tcp):
                        return tcp
        return None

    def handshake(self, isn):
        """SYN (resent every second) until the SYN/ACK; then the ACK."""
        deadline = time.monotonic() + self.a.timeout
        while time.monotonic() < deadline:
            self.send("syn", "S", isn, 0)
            synack = self.wait_client(
                lambda t: str(t.flags) == "SA" and t.ack == (isn + 1) % 2**32, 1.0
            )
            if synack is not None:
                self.handshake_ack_seq = (isn + 1) % 2**32
                self.send("ack", "A", (isn + 1) % 2**32, (synack.seq + 1) % 2**32)
                return synack
        return None


def spoof_ack(p):
    p.send(SPOOFED_BARE, "A", random.getrandbits(32), random.getrandbits(32))
    p.send(
        SPOOFED_DATA, "PA", random.getrandbits(32), random.getrandbits(32), MARKERS[SPOOFED_DATA]
    )
    isn = random.getrandbits(32)
    p.send("syn", "S", isn, 0)
    p.watch_server("syn", p.a.timeout)
    synack = p.wait_client(lambda t: str(t.flags) == "SA", p.a.timeout)
    return {"handshake": synack is not None}


def window(p):
    isn = random.getrandbits(31)
    synack = p.handshake(isn)
    if synack is None:
        return {"handshake": False, "acked": False}
    seq = (isn + 1) % 2**32
    ack = (synack.seq + 1) % 2**32
    p.send(OUT_OF_WINDOW, "PA", (seq + 2**30) % 2**32, ack, MARKERS[OUT_OF_WINDOW])
    p.send(IN_WINDOW, "PA", seq, ack, MARKERS[IN_WINDOW])
    p.watch_server(IN_WINDOW, p.a.timeout)
    end = (seq + len(MARKERS[IN_WINDOW])) % 2**32
    acked = p.wait_client(lambda t: "A" in str(t.flags) and t.ack == end, p.a.timeout)
    return {"handshake": True, "acked": acked is not None}


def icmp_error(p):
    isn = random.getrandbits(31)
    synack = p.handshake(isn)
    if synack is None:
        return {"handshake": False}
    c_next = (isn + 1) % 2**32
    s_next = (synack.seq + 1) % 2**32

    def segment(from_client, seq, ack):
        src, dst = (p.a.src, p.a.dst) if from_client else (p.a.dst, p.a.src)
        sport, dport = (p.a.sport, p.a.dport) if from_client else (p.a.dport, p.a.sport)
        return IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="A", seq=seq, ack=ack)

    p.send_error(FORGED_ERROR, segment(True, c_next, s_next))
    p.send_error(OUT_OF_WINDOW_ERROR, segment(False, (s_next + 2**30) % 2**32, c_next))
    p.send_error(RELATED_ERROR, segment(False, s_next, c_next))
    p.watch_server(RELATED_ERROR, p.a.timeout)
    return {"handshake": True}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["spoof-ack", "window", "icmp-error"])
    ap.add_argument("--client-ns", required=True)
    ap.add_argument("--server-ns", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--sport", type=int, required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    p = Probe(a)
    result = {"spoof-ack": spoof_ack, "window": window, "icmp-error": icmp_error}[a.mode](p)
    result.update({"mode": a.mode, "arrived": p.arrived, "log": LOG})
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
