//! ARP (Ethernet/IPv4): accessors, then a Repr round trip.
#![no_main]

use dataplane::wire::{ArpPacket, ArpRepr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    black_box((
        packet.hardware_type(),
        packet.protocol_type(),
        packet.operation(),
    ));
    black_box((packet.hardware_len(), packet.protocol_len()));
    black_box((packet.source_hardware_addr(), packet.source_protocol_addr()));
    black_box((packet.target_hardware_addr(), packet.target_protocol_addr()));

    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    black_box(repr.reply(packet.target_hardware_addr()));
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    let again = ArpPacket::new_checked(&buf[..]).expect("emitted ARP checks");
    assert_eq!(ArpRepr::parse(&again), Ok(repr));
    assert_eq!(&buf[..], &data[..repr.buffer_len()]);
});
