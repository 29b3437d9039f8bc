//! ICMPv6: accessors, then a Repr round trip.
#![no_main]

use dataplane::wire::{ChecksumMode, Icmpv6Packet, Icmpv6Repr, Ipv6Addr};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const DST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Icmpv6Packet::new_checked(data) else {
        return;
    };
    black_box((
        packet.msg_type(),
        packet.msg_type().is_error(),
        packet.msg_code(),
    ));
    black_box((packet.checksum(), packet.echo_ident(), packet.echo_seq_no()));
    black_box((packet.param(), packet.na_flags(), packet.target_addr()));
    black_box((
        packet.header_len(),
        packet.data(),
        packet.verify_checksum(&SRC, &DST),
    ));

    let Ok(repr) = Icmpv6Repr::parse(&packet, &SRC, &DST, ChecksumMode::Verify) else {
        return;
    };
    black_box(repr.echo_reply());
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &SRC, &DST);
    let again = Icmpv6Packet::new_checked(&buf[..]).expect("emitted ICMPv6 checks");
    assert_eq!(
        Icmpv6Repr::parse(&again, &SRC, &DST, ChecksumMode::Verify),
        Ok(repr)
    );
});
