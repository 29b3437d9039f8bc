//! Ring-backed ports: traffic with no NIC and no generator on the measured core.
//!
//! ```text
//!                 ┌──────────── ring `loop` ◄────────────┐
//!                 ▼                                      │
//!   port A (data0) rx                          port B (data1) tx
//!   port A (data0) tx ──► ring `sink_a`        port B (data1) rx ◄── ring `idle_b` (empty)
//! ```
//!
//! Recirculation: what the unit forwards out of data1 lands in the ring data0 reads, so
//! a ring prefilled with one frame per flow is processed flow after flow, pass after
//! pass, with nobody generating anything. With several workers each has its own queue
//! pair on both ports and its own loop ring, holding the flows RSS would give it. For the new-connection run, data1's tx goes
//! to a sink ring instead, big enough to take every frame (so nothing is freed on the
//! measured core either).

use dpdk_sys::ring_port::eth_from_rings;
use dpdk_sys::{Burst, DpdkError, Mbuf, Mempool, Port, PortConfig, Ring, SocketId, BURST_MAX};
use std::sync::atomic::{AtomicU32, Ordering};
use workers::WorkerPort;

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// Two ring-backed ports with a queue pair per worker, and the rings behind them
/// (index = queue = worker).
pub struct Topology {
    /// data0.
    pub a: Port,
    /// data1.
    pub b: Port,
    /// What data0 receives, per queue.
    pub a_rx: Vec<Ring>,
    /// What data0 sends, per queue.
    pub a_tx: Vec<Ring>,
    /// What data1 sends, per queue (= `a_rx` when recirculating).
    pub b_tx: Vec<Ring>,
    /// What data1 receives, per queue (empty but for [`Topology::both_ways`]).
    pub b_rx: Vec<Ring>,
}

impl Topology {
    /// Queue `w` of data1's tx feeds queue `w` of data0's rx: a ring of `capacity[w]`
    /// frames per worker.
    pub fn recirculating(pool: &Mempool, capacity: &[u32]) -> Result<Topology, DpdkError> {
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut loops = Vec::new();
        for (w, &c) in capacity.iter().enumerate() {
            loops.push(Ring::new(&format!("bl{n}.{w}"), c, SocketId::ANY)?);
        }
        Self::build(pool, n, loops.clone(), loops, None)
    }

    /// One queue: data0 reads a ring of `capacity` frames; data1 sends into a sink
    /// of as many.
    pub fn one_way(pool: &Mempool, capacity: u32) -> Result<Topology, DpdkError> {
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let src = Ring::new(&format!("bsrc{n}"), capacity, SocketId::ANY)?;
        let sink_b = Ring::new(&format!("bsb{n}"), capacity, SocketId::ANY)?;
        Self::build(pool, n, vec![src], vec![sink_b], None)
    }

    /// One queue, both ports fed: data0 and data1 each read a ring of `capacity`
    /// frames and send into a sink of as many (the connection life cycles of the
    /// sync run: the clients' packets in on data0, the server's in on data1).
    pub fn both_ways(pool: &Mempool, capacity: u32) -> Result<Topology, DpdkError> {
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let ring = |name: &str| Ring::new(&format!("{name}{n}"), capacity, SocketId::ANY);
        let (src_a, src_b, sink_a, sink_b) =
            (ring("bba")?, ring("bbb")?, ring("bbsa")?, ring("bbsb")?);
        Self::build(
            pool,
            n,
            vec![src_a],
            vec![sink_b],
            Some((vec![sink_a], vec![src_b])),
        )
    }

    /// `a_tx_b_rx`: data0's tx and data1's rx rings, when not the defaults (a
    /// 4096-frame sink, an empty ring).
    fn build(
        pool: &Mempool,
        n: u32,
        a_rx: Vec<Ring>,
        b_tx: Vec<Ring>,
        a_tx_b_rx: Option<(Vec<Ring>, Vec<Ring>)>,
    ) -> Result<Topology, DpdkError> {
        let queues = a_rx.len();
        let (mut a_tx, mut b_rx) = a_tx_b_rx.unwrap_or_default();
        // data1's rx rings stay empty; the port holds them.
        for w in a_tx.len()..queues {
            a_tx.push(Ring::new(&format!("bsa{n}.{w}"), 4096, SocketId::ANY)?);
        }
        for w in b_rx.len()..queues {
            b_rx.push(Ring::new(&format!("bib{n}.{w}"), 1024, SocketId::ANY)?);
        }
        let q = u16::try_from(queues).unwrap_or(u16::MAX);
        let cfg = PortConfig {
            promiscuous: true,
            rx_queues: q,
            tx_queues: q,
            ..PortConfig::default()
        };
        let ida = eth_from_rings(&format!("bench_a{n}"), &a_rx, &a_tx, SocketId::ANY)?;
        let idb = eth_from_rings(&format!("bench_b{n}"), &b_rx, &b_tx, SocketId::ANY)?;
        let a = Port::configure(ida, &cfg, pool)?;
        let b = Port::configure(idb, &cfg, pool)?;
        a.start()?;
        b.start()?;
        Ok(Topology {
            a,
            b,
            a_rx,
            a_tx,
            b_tx,
            b_rx,
        })
    }

    /// Queue `w` of both ports, as worker `w` holds them (index = interface).
    pub fn worker_ports(&self, w: u16) -> Result<Vec<WorkerPort>, String> {
        let take = |p: &Port| -> Result<WorkerPort, String> {
            Ok(WorkerPort {
                rx: p.rx_queue(w).ok_or(format!("rx queue {w} already taken"))?,
                tx: p.tx_queue(w).ok_or(format!("tx queue {w} already taken"))?,
            })
        };
        Ok(vec![take(&self.a)?, take(&self.b)?])
    }
}

/// Enqueues every mbuf of `frames` into `ring`, in order. Fails if the ring is full.
pub fn fill(ring: &Ring, frames: impl IntoIterator<Item = Mbuf>) -> Result<u64, String> {
    let mut burst = Burst::new();
    let mut n = 0u64;
    for m in frames {
        if let Err(m) = burst.push(m) {
            flush(ring, &mut burst)?;
            burst.push(m).map_err(|_| "burst still full")?;
        }
        n += 1;
    }
    flush(ring, &mut burst)?;
    Ok(n)
}

fn flush(ring: &Ring, burst: &mut Burst) -> Result<(), String> {
    let want = burst.len();
    if ring.enqueue_burst(burst) != want {
        return Err(format!("ring {} is full", ring.name()));
    }
    Ok(())
}

/// Dequeues every frame in `ring` once, hands it to `fix`, and enqueues it back at the
/// tail: the order is kept. Returns how many frames went round, and how many `fix`
/// refused (those are kept too).
pub fn rotate(ring: &Ring, mut fix: impl FnMut(&mut Mbuf) -> bool) -> Result<(u64, u64), String> {
    let total = ring.count();
    let mut done = 0usize;
    let mut refused = 0u64;
    while done < total {
        let mut part = Burst::with_limit((total - done).min(BURST_MAX));
        let got = ring.dequeue_burst(&mut part);
        if got == 0 {
            break;
        }
        for m in part.iter_mut() {
            if !fix(m) {
                refused += 1;
            }
        }
        flush(ring, &mut part)?;
        done += got;
    }
    Ok((done as u64, refused))
}
