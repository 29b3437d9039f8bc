//! IPv4, options included: accessors, TTL decrement, then a Repr round trip.
#![no_main]

use dataplane::wire::{ChecksumMode, Ipv4Packet, Ipv4Repr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    black_box((
        packet.version(),
        packet.header_len(),
        packet.dscp(),
        packet.ecn(),
    ));
    black_box((
        packet.total_len(),
        packet.ident(),
        packet.dont_frag(),
        packet.more_frags(),
    ));
    black_box((
        packet.reserved_flag(),
        packet.frag_offset(),
        packet.is_fragment(),
    ));
    black_box((packet.ttl(), packet.next_header(), packet.checksum()));
    black_box((
        packet.src_addr(),
        packet.dst_addr(),
        packet.verify_checksum(),
    ));
    black_box((packet.options(), packet.payload()));

    // The router's per-packet rewrite: must keep a valid checksum valid.
    let mut copy = data.to_vec();
    let mut writable = Ipv4Packet::new_unchecked(&mut copy[..]);
    writable.fill_checksum();
    if writable.decrement_ttl_and_update_checksum().is_some() {
        let incremental = writable.checksum();
        writable.fill_checksum();
        assert_eq!(
            incremental,
            writable.checksum(),
            "RFC 1624 update != recompute"
        );
    }

    let Ok(repr) = Ipv4Repr::parse(&packet, ChecksumMode::Verify) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(packet.payload());
    let again = Ipv4Packet::new_checked(&buf[..]).expect("emitted IPv4 checks");
    assert_eq!(Ipv4Repr::parse(&again, ChecksumMode::Verify), Ok(repr));
    assert_eq!(again.payload(), packet.payload());
});
