//! TCP over both address families: accessors, the option iterator, then a
//! Repr round trip.
#![no_main]

use dataplane::wire::{ChecksumMode, IpAddr, Ipv4Addr, Ipv6Addr, TcpOptions, TcpPacket, TcpRepr};
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
    // The option iterator alone, on raw bytes: must end, must not panic.
    let count = dataplane::wire::TcpOptionIter::new(data).count();
    assert!(count <= data.len());
    black_box(TcpOptions::parse(data).ok());

    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    black_box((
        packet.src_port(),
        packet.dst_port(),
        packet.seq_number(),
        packet.ack_number(),
    ));
    black_box((
        packet.header_len(),
        packet.flags(),
        packet.flags().to_string(),
    ));
    black_box((packet.fin(), packet.syn(), packet.rst(), packet.psh()));
    black_box((packet.ack(), packet.urg(), packet.ece(), packet.cwr()));
    black_box((packet.window_len(), packet.checksum(), packet.urgent_at()));
    black_box((packet.options(), packet.payload(), packet.segment_len()));
    for option in packet.options_iter() {
        black_box(option.ok());
    }

    for (src, dst) in &PAIRS {
        black_box(packet.verify_checksum(src, dst));
        let Ok(repr) = TcpRepr::parse(&packet, src, dst, ChecksumMode::Verify) else {
            continue;
        };
        black_box(repr.rst_reply());
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst);
        let again = TcpPacket::new_checked(&buf[..]).expect("emitted TCP checks");
        assert_eq!(
            TcpRepr::parse(&again, src, dst, ChecksumMode::Verify),
            Ok(repr)
        );
    }
});
