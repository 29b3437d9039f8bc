#!/usr/bin/env python3
"""Decodes tandem sync datagrams: a second implementation of the protocol,
written from its documentation (the module docs of syncd::wire, syncd::seal,
syncd::psk and dataplane::conntrack::record), not from the Rust code.

Usage:
  sync_decode.py --psk HEX64 --serials A,B --pcap FILE [--port 8421] [--summary]
  sync_decode.py --psk HEX64 --serials A,B --hex FILE [--summary]

--psk      the cluster's pre-shared key: 64 hexadecimal digits (the key file's
           content).
--serials  the two units' serials. A datagram's key is bound to its sender and
           its receiver; the header names the sender, the receiver is the
           other one.
--pcap     a capture (read with scapy): every UDP datagram from or to --port.
--hex      one datagram per line, as hexadecimal (blank lines are skipped).
--summary  instead of one line per datagram, one JSON object counting the
           datagrams and the records of each action.

Prints one JSON object per datagram and line:

  {"kind": "data" | "control", "serial": ..., "sender_epoch": ...,
   "receiver_epoch": ..., "sequence": ..., "ack": ..., "key_id": ...,
   "psk_id": ..., "counter": ..., "length": ...,
   "opened": true | false, "error": "...", "records": [{"action": ...}, ...]}

`error` is there only when something is wrong: the datagram is not a tandem
sync datagram of version 1 (then nothing after the version is read, and no
header field is printed), the header is inconsistent, the psk id is not this
key's, the tag does not verify (`opened` is false), or the opened body is
malformed (`opened` is true and `records` is empty: a datagram is taken whole
or not at all; as the wire docs' receiver rules say, a family, l4 kind, kind
that disagrees with the protocol, or state out of range, and a heartbeat's
quality above 10000, forced mode above 2 or flag bits 3-7 set, refuse the
whole datagram). From a capture each
object also has `packet` (its number in the file, from 1), `src` and `dst`.

Exit status: 0 once the input was read, whatever the datagrams held (an
undecodable datagram is reported on its own line); 2 for bad arguments or an
input file that cannot be read or parsed (a malformed capture, a line that is
not hexadecimal).
"""

import argparse
import functools
import ipaddress
import json
import struct
import sys
from collections import Counter

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# --- The protocol's constants (syncd::wire, syncd::seal, syncd::psk) --------

MAGIC = b"TDSY"
VERSION = 1
HEADER_LEN = 72
TAG_LEN = 16
SECTION_LEN = 12
SERIAL_LEN = 16
SALT = b"tandem-sync-v1"
KEY_INFO = b"tandem sync key v1"
ID_INFO = b"tandem psk id v1"

KIND_DATA = 1
KIND_CONTROL = 2
KIND_NAMES = {KIND_DATA: "data", KIND_CONTROL: "control"}

# Action number -> (name, record size in bytes, datagram kind it travels in).
ACTIONS = {
    1: ("insert", 96, KIND_DATA),
    2: ("update", 32, KIND_DATA),
    3: ("delete", 12, KIND_DATA),
    4: ("digest", 16, KIND_DATA),
    5: ("bulk_start", 16, KIND_DATA),
    6: ("bulk_end", 16, KIND_DATA),
    7: ("bulk_done", 16, KIND_DATA),
    8: ("bulk_request", 8, KIND_DATA),
    9: ("request", 12, KIND_DATA),
    10: ("resync", 8, KIND_DATA),
    11: ("ack", 16, KIND_CONTROL),
    12: ("nack", 16, KIND_CONTROL),
    13: ("heartbeat", 24, KIND_CONTROL),
    14: ("management", 240, KIND_DATA),
}

# A management record's data bytes, and the largest message (syncd::mgmt).
MGMT_DATA = 224
MAX_MGMT_MESSAGE = 48 << 20

# dataplane::conntrack::record: protocol kinds, the rule index's special values.
L4_KINDS = {0: "tcp", 1: "udp", 2: "icmp_echo", 3: "other"}
L4_TCP = 0
DEFAULT_RULE = 0xFFFF
NO_RULE = 0xFFFE

# TCP states, Linux conntrack's numbering (0..9).
TCP_STATES = [
    "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
    "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
]
# Other protocols' pseudo-states.
OTHER_STATES = ["UNREPLIED", "REPLIED"]

# The heartbeat: its known flags (bit 0 active, 1 wants a bulk, 2 bulk done;
# bits 3-7 must be 0), its highest quality (100 % in hundredths of a percent)
# and its forced modes.
HEARTBEAT_FLAGS = 0b111
MAX_QUALITY = 10000
FORCED = {0: "none", 1: "active", 2: "passive"}


class Refused(Exception):
    """The datagram (or its body) is not taken; the message says why."""


# --- Keys -------------------------------------------------------------------


def hkdf(psk, info, length):
    """HKDF-SHA256 (RFC 5869) with the protocol's salt and the PSK as IKM."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=SALT,
                info=info).derive(psk)


@functools.lru_cache(maxsize=None)
def psk_id(psk):
    """The key's public fingerprint: the first 4 bytes of HKDF under ID_INFO."""
    return struct.unpack(">I", hkdf(psk, ID_INFO, 4))[0]


def padded_serial(serial):
    """A serial as the wire and the key schedule hold it: ASCII, NUL-padded."""
    return serial.ljust(SERIAL_LEN, b"\0")


def direction_key(psk, sender_serial, sender_epoch, receiver_serial,
                  receiver_epoch, key_id):
    """The AES-256-GCM key the sender uses towards the receiver (seal docs)."""
    info = (KEY_INFO
            + padded_serial(sender_serial) + struct.pack(">Q", sender_epoch)
            + padded_serial(receiver_serial) + struct.pack(">Q", receiver_epoch)
            + struct.pack(">I", key_id))
    return hkdf(psk, info, 32)


# --- Header -----------------------------------------------------------------


def serial_text(raw):
    """The 16 serial bytes as text, without the NUL padding."""
    return raw.rstrip(b"\0").decode("ascii", errors="backslashreplace")


def check_preamble(datagram):
    """Magic, then version, before anything after the version is read."""
    if len(datagram) < HEADER_LEN + TAG_LEN:
        raise Refused("shorter than a header and a tag")
    if datagram[0:4] != MAGIC:
        raise Refused("not a tandem sync datagram")
    if datagram[4] != VERSION:
        raise Refused(f"protocol version {datagram[4]}, this decoder speaks {VERSION}")


def parse_header(datagram):
    """The header fields of a version-1 datagram, by their offsets."""
    (kind, length) = struct.unpack_from(">BH", datagram, 5)
    (sender_epoch, receiver_epoch, sequence, ack, key_id, pskid, counter) = \
        struct.unpack_from(">QQQQIIQ", datagram, 24)
    return {
        "kind": KIND_NAMES.get(kind, kind),
        "serial": serial_text(datagram[8:24]),
        "sender_epoch": sender_epoch,
        "receiver_epoch": receiver_epoch,
        "sequence": sequence,
        "ack": ack,
        "key_id": key_id,
        "psk_id": pskid,
        "counter": counter,
        "length": length,
    }


def check_header(header, datagram):
    """What the header must agree with before the body is opened."""
    if header["kind"] not in ("data", "control"):
        raise Refused(f"unknown datagram kind {header['kind']}")
    if header["length"] != len(datagram):
        raise Refused(f"the length field ({header['length']}) disagrees with "
                      f"the datagram ({len(datagram)} bytes)")
    if (header["kind"] == "data") != (header["sequence"] != 0):
        raise Refused("sequence number wrong for the datagram kind")


# --- Opening ----------------------------------------------------------------


def receiver_serial(sender, serials):
    """The serial of the unit that is not the sender."""
    if sender not in serials:
        raise Refused(f"sender serial {serial_text(sender)!r} is not one of --serials")
    others = [s for s in serials if s != sender]
    if not others:
        raise Refused("--serials names the sender twice")
    return others[0]


def open_body(datagram, header, psk, serials):
    """The plaintext body, or Refused if the tag does not verify."""
    sender = datagram[8:24].rstrip(b"\0")
    key = direction_key(psk, sender, header["sender_epoch"],
                        receiver_serial(sender, serials),
                        header["receiver_epoch"], header["key_id"])
    nonce = struct.pack(">IQ", header["key_id"], header["counter"])
    aad = datagram[:HEADER_LEN]
    try:
        return AESGCM(key).decrypt(nonce, datagram[HEADER_LEN:], aad)
    except InvalidTag:
        raise Refused("authentication failed (forged, corrupted, or another "
                      "key, serial, epoch or direction)") from None


# --- Records ----------------------------------------------------------------


def sync_id(value):
    """SyncId: creator (24 bits) | worker (8) | slot (32)."""
    return {"creator": value >> 40, "worker": (value >> 32) & 0xFF,
            "slot": value & 0xFFFFFFFF}


def address_text(raw, family):
    """An address as text; IPv4-mapped addresses of family 4 as IPv4."""
    addr = ipaddress.IPv6Address(raw)
    if family == 4 and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def state_name(l4_kind, state):
    """The state's name: a TCP state, or unreplied/replied; None if out of range."""
    names = TCP_STATES if l4_kind == L4_TCP else OTHER_STATES
    return names[state] if state < len(names) else None


def rule_text(index):
    """What a rule index names: a rule, the default policy, or no rule."""
    return {DEFAULT_RULE: "default", NO_RULE: "no_rule"}.get(index, "rule")


def peer(raw, offset):
    """One direction's TCP tracking: 18 bytes."""
    (end, maxend, maxwin, maxack, scale, flags) = struct.unpack_from(">IIIIBB", raw, offset)
    return {"end": end, "maxend": maxend, "maxwin": maxwin, "maxack": maxack,
            "window_scale": scale, "flags": flags}


def edge(raw, offset):
    """One direction's sequence edges in an update: end, maxend."""
    (end, maxend) = struct.unpack_from(">II", raw, offset)
    return {"end": end, "maxend": maxend}


def decode_insert(raw, revision):
    """A connection's full state (the 96-byte layout of the wire docs)."""
    (ident, family, protocol) = struct.unpack_from(">QBB", raw, 0)
    (lo_port, hi_port, kind, state, flags, tcp_flags, in_if, out_if, rule,
     _reserved, timeout) = struct.unpack_from(">HHBBBBBBHHI", raw, 42)
    if family not in (4, 6):
        raise Refused(f"record value out of range: family {family}")
    if kind not in L4_KINDS:
        raise Refused(f"record value out of range: l4 kind {kind}")
    name = state_name(kind, state)
    if name is None:
        raise Refused(f"record value out of range: state {state} for {L4_KINDS[kind]}")
    if not kind_fits_protocol(kind, protocol):
        raise Refused(f"record value out of range: {L4_KINDS[kind]} with protocol {protocol}")
    return {
        "id": sync_id(ident),
        "family": family,
        "protocol": protocol,
        "lower_address": address_text(raw[10:26], family),
        "higher_address": address_text(raw[26:42], family),
        "lower_port": lo_port,
        "higher_port": hi_port,
        "l4_kind": L4_KINDS[kind],
        "state": state,
        "state_name": name,
        "flags": flags,
        "opened_by": "higher" if flags & 1 else "lower",
        "log": bool(flags & 2),
        "tcp_flags": tcp_flags,
        "in_interface": in_if,
        "out_interface": out_if,
        "rule_index": rule,
        "rule": rule_text(rule),
        "rule_revision": revision,
        "timeout": timeout,
        "original": peer(raw, 60),
        "reply": peer(raw, 78),
    }


def kind_fits_protocol(kind, protocol):
    """The wire docs: tcp is 6, udp 17, icmp echo 1 or 58, other anything else."""
    if kind == L4_TCP:
        return protocol == 6
    name = L4_KINDS[kind]
    if name == "udp":
        return protocol == 17
    if name == "icmp_echo":
        return protocol in (1, 58)
    return protocol not in (1, 6, 17, 58)


def decode_update(raw, _revision):
    """A compact update: id, rss, state, tcp flags, timeout, both edges."""
    (ident, rss, state, tcp_flags, timeout) = struct.unpack_from(">QHBBI", raw, 0)
    if state > 9:
        raise Refused(f"record value out of range: update state {state}")
    return {"id": sync_id(ident), "rss": rss, "state": state,
            "tcp_flags": tcp_flags, "timeout": timeout,
            "original": edge(raw, 16), "reply": edge(raw, 24)}


def decode_named(raw, _revision):
    """A delete or a request: id, rss (then 2 reserved bytes)."""
    (ident, rss) = struct.unpack_from(">QH", raw, 0)
    return {"id": sync_id(ident), "rss": rss}


def decode_digest(raw, _revision):
    """One shard's digest: shard, (3 reserved), count, sum."""
    (shard, count, total) = struct.unpack_from(">B3xIQ", raw, 0)
    return {"shard": shard, "count": count, "sum": total}


def decode_bulk(raw, _revision):
    """A bulk start, end or done: bulk id, (4 reserved), shard bitmap."""
    (bulk_id, shards) = struct.unpack_from(">I4xQ", raw, 0)
    return {"bulk_id": bulk_id, "shards": shards,
            "whole_table": shards == 0xFFFFFFFFFFFFFFFF}


def decode_nothing(_raw, _revision):
    """A bulk request: 8 reserved bytes."""
    return {}


def decode_resync(raw, _revision):
    """The shards to send again (bit n = shard n)."""
    return {"shards": struct.unpack_from(">Q", raw, 0)[0]}


def decode_ack(raw, _revision):
    """Cumulative ack, and the lowest sequence its sender still holds."""
    (cumulative, first_held) = struct.unpack_from(">QQ", raw, 0)
    return {"cumulative": cumulative, "first_held": first_held}


def decode_nack(raw, _revision):
    """The sequences missing, first to last."""
    (first, last) = struct.unpack_from(">QQ", raw, 0)
    return {"first": first, "last": last}


def decode_heartbeat(raw, _revision):
    """Who the sender is and how it stands: workers, interfaces, flags, links
    heard, firmware, rule set revision, quality, priority, forced mode,
    configuration revision (the 24-byte layout of the wire docs)."""
    (workers, interfaces, flags, links_heard, firmware, rules, quality,
     priority, forced, config_revision) = struct.unpack_from(">BBBBIQHBBI", raw, 0)
    if flags & ~HEARTBEAT_FLAGS:
        raise Refused(f"record value out of range: heartbeat flags {flags:#04x}")
    if quality > MAX_QUALITY:
        raise Refused(f"record value out of range: heartbeat quality {quality}")
    if forced not in FORCED:
        raise Refused(f"record value out of range: heartbeat forced {forced}")
    return {
        "workers": workers,
        "interfaces": interfaces,
        "flags": flags,
        "active": bool(flags & 1),
        "wants_bulk": bool(flags & 2),
        "bulk_done": bool(flags & 4),
        "links_heard": links_heard,
        "firmware": firmware,
        "firmware_version": f"{firmware >> 16}.{(firmware >> 8) & 0xFF}.{firmware & 0xFF}",
        "rules": rules,
        "quality": quality,
        "quality_percent": quality / 100,
        "priority": priority,
        "forced": FORCED[forced],
        "config_revision": config_revision,
    }


def decode_management(raw, _revision):
    """A piece of a message between the daemons: message id, total bytes,
    offset, length, then the data (zero past the length)."""
    (message, total, offset, length) = struct.unpack_from(">IIIH", raw, 0)
    if (length > MGMT_DATA or offset + length > total or total > MAX_MGMT_MESSAGE
            or (length == 0 and total != 0)):
        raise Refused("record value out of range: management piece outside its message")
    return {
        "message": message,
        "total": total,
        "offset": offset,
        "length": length,
        "data": raw[16:16 + length].hex(),
    }


DECODERS = {
    "insert": decode_insert,
    "update": decode_update,
    "delete": decode_named,
    "digest": decode_digest,
    "bulk_start": decode_bulk,
    "bulk_end": decode_bulk,
    "bulk_done": decode_bulk,
    "bulk_request": decode_nothing,
    "request": decode_named,
    "resync": decode_resync,
    "ack": decode_ack,
    "nack": decode_nack,
    "heartbeat": decode_heartbeat,
    "management": decode_management,
}


def parse_section_header(body, at, kind):
    """One 12-byte sub-header at `at`: action name, record size, count, revision."""
    if at + SECTION_LEN > len(body):
        raise Refused("section runs past the body")
    (action, record_len, count, revision) = struct.unpack_from(">BBHQ", body, at)
    if action not in ACTIONS:
        raise Refused(f"unknown action {action}")
    (name, size, action_kind) = ACTIONS[action]
    if record_len != size:
        raise Refused(f"record length {record_len} wrong for {name} (must be {size})")
    if action_kind != kind:
        raise Refused(f"{name} out of place in a {KIND_NAMES[kind]} datagram")
    return (name, size, count, revision)


def parse_body(kind, body):
    """Every record of an opened body, in order; Refused on the first fault."""
    records = []
    at = 0
    while at < len(body):
        (name, size, count, revision) = parse_section_header(body, at, kind)
        at += SECTION_LEN
        if at + count * size > len(body):
            raise Refused("section runs past the body")
        for _ in range(count):
            fields = DECODERS[name](body[at:at + size], revision)
            records.append({"action": name, **fields})
            at += size
    return records


# --- One datagram -----------------------------------------------------------


def decode_datagram(datagram, psk, serials):
    """One datagram as a JSON-ready dict (never raises for bad content)."""
    try:
        check_preamble(datagram)
    except Refused as e:
        return {"opened": False, "error": str(e), "records": []}
    out = parse_header(datagram)
    out.update(opened=False, records=[])
    try:
        check_header(out, datagram)
        if out["psk_id"] != psk_id(psk):
            # The partner runs another key: the tag could not verify anyway.
            raise Refused(f"wrong_key: psk id {out['psk_id']:#010x}, "
                          f"this key's is {psk_id(psk):#010x}")
        body = open_body(datagram, out, psk, serials)
    except Refused as e:
        out["error"] = str(e)
        return out
    out["opened"] = True
    try:
        out["records"] = parse_body(KIND_DATA if out["kind"] == "data" else KIND_CONTROL, body)
    except Refused as e:
        out["error"] = str(e)
    return out


# --- Input ------------------------------------------------------------------


class BadInput(Exception):
    """The input file cannot be read: the run fails (exit 2)."""


def read_hex(path):
    """One datagram per non-blank line, as hexadecimal."""
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: {e}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield bytes.fromhex(line.strip()), {}
        except ValueError:
            raise BadInput(f"{path}:{number}: not hexadecimal") from None


PCAP_MAGICS = (0xA1B2C3D4, 0xA1B23C4D)  # microsecond, nanosecond timestamps
PCAPNG_SECTION = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D


def check_pcap_framing(data):
    """A classic pcap: a 24-byte file header, then records (16-byte header,
    caplen bytes) that end exactly at the end of the file."""
    order = "<" if struct.unpack_from("<I", data)[0] in PCAP_MAGICS else ">"
    at = 24
    while at < len(data):
        if at + 16 > len(data):
            raise BadInput(f"a record header cut short at byte {at}")
        caplen = struct.unpack_from(order + "I", data, at + 8)[0]
        if at + 16 + caplen > len(data):
            raise BadInput(f"the record at byte {at} is cut short")
        at += 16 + caplen


def check_pcapng_framing(data):
    """A pcapng: blocks (type, length, body, length again) that end exactly
    at the end of the file; each section header gives the byte order."""
    at = 0
    order = "<"
    while at < len(data):
        if at + 12 > len(data):
            raise BadInput(f"a block cut short at byte {at}")
        if struct.unpack_from("<I", data, at)[0] == PCAPNG_SECTION:
            order = "<" if struct.unpack_from("<I", data, at + 8)[0] == PCAPNG_BYTE_ORDER else ">"
        length = struct.unpack_from(order + "I", data, at + 4)[0]
        if length < 12 or length % 4 or at + length > len(data):
            raise BadInput(f"the block at byte {at} is cut short or malformed")
        if struct.unpack_from(order + "I", data, at + length - 4)[0] != length:
            raise BadInput(f"the block at byte {at} has mismatched lengths")
        at += length


def check_capture_framing(path):
    """Scapy skips or truncates a record cut short without a word: check the
    file's framing first, so that a cut or corrupt capture fails the run."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise BadInput("too short for a capture file")
    magic = struct.unpack_from("<I", data)[0]
    if magic in PCAP_MAGICS or struct.unpack_from(">I", data)[0] in PCAP_MAGICS:
        check_pcap_framing(data)
    elif magic == PCAPNG_SECTION:
        check_pcapng_framing(data)
    else:
        raise BadInput("not a pcap or pcapng capture file")


def read_pcap(path, port):
    """Every UDP payload from or to `port` in a capture, with where it went."""
    # scapy is imported here so that --hex works without it.
    from scapy.error import Scapy_Exception
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap
    try:
        check_capture_framing(path)
        packets = rdpcap(path)
    except BadInput as e:
        raise BadInput(f"{path}: {e}") from None
    except (OSError, EOFError, Scapy_Exception, struct.error) as e:
        raise BadInput(f"{path}: {e}") from None
    for number, packet in enumerate(packets, 1):
        if UDP not in packet:
            continue
        udp = packet[UDP]
        if port not in (udp.sport, udp.dport):
            continue
        ip = udp.underlayer
        where = {"packet": number,
                 "src": f"{getattr(ip, 'src', '?')}:{udp.sport}",
                 "dst": f"{getattr(ip, 'dst', '?')}:{udp.dport}"}
        yield bytes(udp.payload), where


# --- Command line -----------------------------------------------------------


def parse_args(argv):
    """The arguments, the PSK as bytes and the serials as padded-free bytes."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--psk", required=True, help="the pre-shared key, 64 hex digits")
    p.add_argument("--serials", required=True, help="the two units' serials, A,B")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pcap", help="a capture file")
    source.add_argument("--hex", help="one datagram per line, as hex")
    p.add_argument("--port", type=int, default=8421, help="the sync UDP port (--pcap)")
    p.add_argument("--summary", action="store_true", help="counts per action only")
    args = p.parse_args(argv)
    try:
        args.psk = bytes.fromhex(args.psk)
    except ValueError:
        p.error("--psk: not hexadecimal")
    if len(args.psk) != 32:
        p.error("--psk: must be 64 hex digits (32 bytes)")
    serials = args.serials.split(",")
    if len(serials) != 2 or not all(serials):
        p.error("--serials: two serials, comma-separated")
    try:
        args.serials = [s.encode("ascii") for s in serials]
    except UnicodeEncodeError:
        p.error("--serials: ASCII only")
    if any(len(s) > SERIAL_LEN for s in args.serials):
        p.error(f"--serials: at most {SERIAL_LEN} characters each")
    return args


def summarise(decoded):
    """Counts of datagrams (opened or not) and of records per action."""
    summary = {"datagrams": 0, "opened": 0, "not_opened": 0, "malformed_bodies": 0,
               "actions": Counter()}
    for d in decoded:
        summary["datagrams"] += 1
        summary["opened" if d["opened"] else "not_opened"] += 1
        if d["opened"] and "error" in d:
            summary["malformed_bodies"] += 1
        summary["actions"].update(r["action"] for r in d["records"])
    summary["actions"] = dict(sorted(summary["actions"].items()))
    return summary


def main(argv):
    args = parse_args(argv)
    source = read_pcap(args.pcap, args.port) if args.pcap else read_hex(args.hex)
    try:
        # Read the whole input first: a malformed file prints nothing but the error.
        datagrams = list(source)
    except BadInput as e:
        print(f"sync_decode: {e}", file=sys.stderr)
        return 2
    decoded = ({**where, **decode_datagram(data, args.psk, args.serials)}
               for (data, where) in datagrams)
    if args.summary:
        print(json.dumps(summarise(decoded)))
    else:
        for d in decoded:
            print(json.dumps(d))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
