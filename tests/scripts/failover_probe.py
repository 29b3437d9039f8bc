#!/usr/bin/env python3
"""What a failover costs, seen from a client: a UDP echo probe every
millisecond and a paced TCP stream whose every byte is checked. Used by the
failover lab tests and the bench (tests/src/failover.rs); standard library only.

  failover_probe.py server --bind IP --udp-port P --tcp-port T [--chunk B --every-ms M]
      echoes every UDP datagram; sends every TCP client a stream of B bytes
      every M ms (default 1400 every 1) until it closes. Byte i of a stream is
      PATTERN[i % len(PATTERN)]. Prints `listening` once bound.

  failover_probe.py client --server IP --udp-port P --tcp-port T --duration S
                           [--interval-ms I]
      for S seconds sends a numbered UDP probe every I ms (default 1) and reads
      the TCP stream, checking each byte; then waits 0.5 s for late echoes and
      prints one JSON line:
        udp_sent, udp_answered     probes sent, echoes received
        udp_outage_ms              the longest time without an answered probe:
                                   send time of the first answered probe after
                                   a run of unanswered ones, minus that of the
                                   last answered before it, minus I
        udp_lost_runs              how many such runs
        tcp_bytes                  stream bytes received
        tcp_intact                 every byte was the pattern's, in order, and
                                   the connection never broke
        tcp_error                  why not (null when intact)
        tcp_stall_ms               the longest time between two reads of
                                   stream data (after the first)
      SIGTERM ends the run early (same output).
"""

import argparse
import json
import random
import selectors
import signal
import socket
import struct
import sys
import time

# A fixed pseudo-random block of a prime length: a lost, repeated or
# reordered chunk never lines up with it by accident.
PATTERN = random.Random(2544).randbytes(65521)


def expected(offset, n):
    out = bytearray()
    while n > 0:
        start = offset % len(PATTERN)
        take = min(n, len(PATTERN) - start)
        out += PATTERN[start:start + take]
        offset += take
        n -= take
    return bytes(out)


def serve(args):
    sel = selectors.DefaultSelector()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((args.bind, args.udp_port))
    udp.setblocking(False)
    sel.register(udp, selectors.EVENT_READ, "udp")
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((args.bind, args.tcp_port))
    lst.listen(16)
    lst.setblocking(False)
    sel.register(lst, selectors.EVENT_READ, "listen")
    streams = {}  # socket -> bytes sent
    print("listening", flush=True)
    next_send = time.monotonic()
    while True:
        timeout = max(0.0, next_send - time.monotonic()) if streams else None
        for key, _ in sel.select(timeout=timeout):
            s = key.fileobj
            if key.data == "udp":
                try:
                    data, peer = s.recvfrom(2048)
                    s.sendto(data, peer)
                except OSError:
                    pass
            elif key.data == "listen":
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                streams[conn] = 0
                sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    streams.pop(s, None)
                    s.close()
        now = time.monotonic()
        if streams and now >= next_send:
            next_send = now + args.every_ms / 1000.0
            for s in list(streams):
                chunk = expected(streams[s], args.chunk)
                try:
                    sent = s.send(chunk)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    sel.unregister(s)
                    streams.pop(s, None)
                    s.close()
                    continue
                streams[s] += sent


def client(args):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    interval = args.interval_ms / 1000.0
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    tcp = socket.create_connection((args.server, args.tcp_port), timeout=10)
    tcp.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(tcp, selectors.EVENT_READ, "tcp")
    sent_at = []
    answered = set()
    got = 0
    error = None
    last_read = None
    stall = 0.0
    start = time.monotonic()
    end = start + args.duration
    next_probe = start
    draining_until = None
    while True:
        now = time.monotonic()
        if draining_until is None and (now >= end or stop):
            draining_until = now + 0.5
        if draining_until is not None and now >= draining_until:
            break
        if draining_until is None and now >= next_probe:
            seq = len(sent_at)
            sent_at.append(now)
            try:
                udp.sendto(struct.pack("!Qd", seq, now), (args.server, args.udp_port))
            except OSError:
                pass
            next_probe += interval
            if next_probe < now:
                next_probe = now + interval
        timeout = max(0.0, min(next_probe, draining_until or next_probe) - time.monotonic())
        for key, _ in sel.select(timeout=timeout):
            if key.data == "udp":
                while True:
                    try:
                        data = udp.recv(2048)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    if len(data) >= 8:
                        answered.add(struct.unpack("!Q", data[:8])[0])
            elif error is None:
                try:
                    data = tcp.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    error = f"stream broke after {got} bytes: {e}"
                    sel.unregister(tcp)
                    continue
                if not data:
                    error = f"stream closed by the server after {got} bytes"
                    sel.unregister(tcp)
                    continue
                t = time.monotonic()
                if last_read is not None and draining_until is None:
                    stall = max(stall, t - last_read)
                last_read = t
                if data != expected(got, len(data)):
                    error = f"wrong bytes at offset {got}"
                    sel.unregister(tcp)
                got += len(data)
    outage = 0.0
    runs = 0
    last = None
    for seq in range(len(sent_at)):
        if seq in answered:
            if last is not None and seq != last + 1:
                runs += 1
                outage = max(outage, sent_at[seq] - sent_at[last] - interval)
            last = seq
    print(json.dumps({
        "udp_sent": len(sent_at),
        "udp_answered": len(answered),
        "udp_outage_ms": round(outage * 1000.0, 1),
        "udp_lost_runs": runs,
        "tcp_bytes": got,
        "tcp_intact": error is None and got > 0,
        "tcp_error": error,
        "tcp_stall_ms": round(stall * 1000.0, 1),
    }), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--udp-port", type=int, required=True)
    s.add_argument("--tcp-port", type=int, required=True)
    s.add_argument("--chunk", type=int, default=1400)
    s.add_argument("--every-ms", type=float, default=1.0)
    c = sub.add_parser("client")
    c.add_argument("--server", required=True)
    c.add_argument("--udp-port", type=int, required=True)
    c.add_argument("--tcp-port", type=int, required=True)
    c.add_argument("--duration", type=float, required=True)
    c.add_argument("--interval-ms", type=float, default=1.0)
    args = p.parse_args()
    return serve(args) if args.mode == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
