//! UDP over both address families: accessors, then a Repr round trip.
#![no_main]

use dataplane::wire::{ChecksumMode, IpAddr, Ipv4Addr, Ipv6Addr, UdpPacket, UdpRepr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

const PAIRS: [(IpAddr, IpAddr); 2] = [
    (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
    ),
    (
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    ),
];

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    black_box((
        packet.src_port(),
        packet.dst_port(),
        packet.len(),
        packet.is_empty(),
    ));
    black_box((packet.checksum(), packet.header_len(), packet.payload()));

    for (src, dst) in &PAIRS {
        black_box(packet.verify_checksum(src, dst));
        let Ok(repr) = UdpRepr::parse(&packet, src, dst, ChecksumMode::Verify) else {
            continue;
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst);
        let again = UdpPacket::new_checked(&buf[..]).expect("emitted UDP checks");
        assert_ne!(
            again.checksum(),
            0,
            "a computed zero must be sent as 0xFFFF"
        );
        assert_eq!(
            UdpRepr::parse(&again, src, dst, ChecksumMode::Verify),
            Ok(repr)
        );
    }
});
