//! The whole receive path of a unit: open → check → parse → deliver →
//! install into a shard. The first byte picks how the rest is used:
//!
//! * even: as a raw datagram (every check before the tag is reached);
//! * odd: as the body of a data datagram the genuine partner sealed, after a
//!   handshake (so parsing, delivery and installing are reached too).
//!
//! Nothing may panic, and the shard must stay consistent (its digest count
//! equals its synchronised entries).
#![no_main]

use dataplane::conntrack::conn::{flag, Timeouts};
use dataplane::conntrack::event::{EventQueue, InboundQueue};
use dataplane::conntrack::shard::Shard;
use libfuzzer_sys::fuzz_target;
use syncd::engine::{Engine, EngineConfig};
use syncd::psk::Psk;
use syncd::seal::Party;
use syncd::session::Session;
use syncd::wire::{BodyWriter, Heartbeat, Kind, Message};

fn serial(s: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let psk = Psk::from_bytes([3; 32]);
    let (a, b) = (serial("TNDM-A"), serial("TNDM-B"));
    let events = vec![EventQueue::new(256), EventQueue::new(256)];
    let inbound = vec![InboundQueue::new(256), InboundQueue::new(256)];
    let mut shards: Vec<Shard> = events
        .iter()
        .map(|e| Shard::new(64, 1, Timeouts::default(), e.clone()))
        .collect();
    let mut cfg = EngineConfig::new(b, 2, a, 2, 1500);
    cfg.interfaces = 2;
    let mut engine = Engine::new(cfg, psk.clone(), events, inbound.clone(), 0).unwrap();
    let mut partner = Session::new(psk, Party { serial: a, epoch: 1 }, b, 0);
    let mut buf = vec![0u8; 2048];

    if mode % 2 == 0 {
        let mut d = rest.to_vec();
        engine.receive(1, 0, &mut d);
    } else {
        // Handshake: the partner's heartbeat, then the engine's answer.
        let mut heartbeat = BodyWriter::new(64);
        let _ = heartbeat.push(&Message::Heartbeat(Heartbeat::default()));
        if let Some(n) = partner.seal(1, Kind::Control, 0, 0, heartbeat.as_bytes(), &mut buf) {
            engine.receive(1, 0, &mut buf[..n]);
        }
        let mut answers = Vec::new();
        engine.poll(2, &mut |_, d| answers.push(d.to_vec()));
        for mut d in answers {
            let _ = partner.open(2, &mut d);
        }
        if let Some(n) = partner.seal(3, Kind::Data, 1, 0, rest, &mut buf) {
            engine.receive(3, 0, &mut buf[..n]);
        }
        engine.poll(4, &mut |_, _| {});
    }
    for (s, q) in shards.iter_mut().zip(&inbound) {
        while let Some(item) = q.pop() {
            s.receive(item, 5);
        }
        s.service(5);
        let synced = s
            .table()
            .iter()
            .filter(|(_, _, c)| c.flags & flag::SYNC != 0)
            .count();
        assert_eq!(s.digest().count as usize, synced);
    }
});
