//! IPv6: accessors, the extension header walk, then a Repr round trip.
#![no_main]

use dataplane::wire::{Ipv6Packet, Ipv6Repr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv6Packet::new_checked(data) else {
        return;
    };
    black_box((
        packet.version(),
        packet.traffic_class(),
        packet.flow_label(),
    ));
    black_box((
        packet.payload_len(),
        packet.total_len(),
        packet.next_header(),
    ));
    black_box((packet.hop_limit(), packet.src_addr(), packet.dst_addr()));
    black_box((packet.header_len(), packet.payload()));

    let mut walked = 0;
    for header in packet.ext_headers() {
        walked += 1;
        if let Ok(h) = header {
            assert!(h.offset + h.len <= packet.total_len());
        }
    }
    assert!(walked <= dataplane::wire::ipv6::MAX_EXT_HEADERS + 1);
    let upper = packet.upper_layer();
    if let Ok(upper) = &upper {
        assert!(upper.offset <= packet.total_len());
        black_box(packet.upper_layer_data(upper));
    }

    let Ok(repr) = Ipv6Repr::parse(&packet) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Ipv6Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(packet.payload());
    let again = Ipv6Packet::new_checked(&buf[..]).expect("emitted IPv6 checks");
    assert_eq!(Ipv6Repr::parse(&again), Ok(repr));
    assert_eq!(again.upper_layer(), upper);
});
