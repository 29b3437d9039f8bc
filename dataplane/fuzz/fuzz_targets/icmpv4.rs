//! ICMPv4: accessors, then a Repr round trip.
#![no_main]

use dataplane::wire::{ChecksumMode, Icmpv4Packet, Icmpv4Repr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    black_box((
        packet.msg_type(),
        packet.msg_type().is_error(),
        packet.msg_code(),
    ));
    black_box((packet.checksum(), packet.echo_ident(), packet.echo_seq_no()));
    black_box((packet.next_hop_mtu(), packet.pointer(), packet.header_len()));
    black_box((packet.data(), packet.verify_checksum()));

    let Ok(repr) = Icmpv4Repr::parse(&packet, ChecksumMode::Verify) else {
        return;
    };
    black_box(repr.echo_reply());
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
    let again = Icmpv4Packet::new_checked(&buf[..]).expect("emitted ICMPv4 checks");
    assert!(again.verify_checksum());
    assert_eq!(Icmpv4Repr::parse(&again, ChecksumMode::Verify), Ok(repr));
});
