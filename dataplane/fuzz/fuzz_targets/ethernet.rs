//! Ethernet II with up to two VLAN tags: accessors, then a Repr round trip.
#![no_main]

use dataplane::wire::{EthernetFrame, EthernetRepr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    black_box((frame.dst_addr(), frame.src_addr(), frame.ethertype()));
    black_box((
        frame.vlan(),
        frame.outer_vlan(),
        frame.vlan_id(),
        frame.tag_count(),
    ));
    black_box((frame.header_len(), frame.payload()));
    let src = frame.src_addr();
    black_box((
        src.is_broadcast(),
        src.is_multicast(),
        src.is_unicast(),
        src.to_string(),
    ));

    let Ok(repr) = EthernetRepr::parse(&frame) else {
        return;
    };
    assert_eq!(repr.header_len(), frame.header_len());
    let mut buf = vec![0u8; repr.buffer_len() + frame.payload().len()];
    let mut out = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(frame.payload());
    let again = EthernetFrame::new_checked(&buf[..]).expect("emitted frame checks");
    assert_eq!(EthernetRepr::parse(&again), Ok(repr));
    assert_eq!(again.payload(), frame.payload());
});
