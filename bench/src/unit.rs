//! The unit under test: a `workers::Worker` with its `Router` (and `Firewall`), built by
//! `workers::build` as `tandemd` builds its workers, for the lab of [`crate::frames`]. The
//! bench drives the worker's own `poll_once`.

use crate::frames::{self, Flow, GW, GW_MAC, SERVER, SERVER_MAC, UNIT0, UNIT1};
use dataplane::conntrack::conn::Timeouts;
use dataplane::conntrack::event::{EventQueue, InboundQueue};
use dataplane::counters::WorkerCounters;
use dataplane::filter::{Action, PortRange, Rule, RuleSet};
use dataplane::forward::router::Interface;
use dataplane::forward::{IfIndex, InterfaceConfig, RouterConfig, StaticRoute};
use dpdk_sys::{Mbuf, Mempool};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use workers::{FirewallSpec, IdlePolicy, PoolAlloc, Worker, WorkerLinks, WorkerPort, WorkerSpec};

/// The MTU of the lab profile's ports.
const MTU: u16 = 1500;
/// Connection table seed: fixed, so runs are comparable (a unit uses a fresh one per boot).
const SEED: u64 = 0x5eed_beef_cafe_f00d;

/// The router configuration of the lab.
pub fn config() -> RouterConfig {
    RouterConfig {
        interfaces: vec![
            InterfaceConfig {
                port: "data0".into(),
                address: "198.18.0.1/24".parse().expect("prefix"),
                virtual_ip: Some(Ipv4Addr::new(198, 18, 0, 254)),
                virtual_mac: Some(frames::VMAC0),
            },
            InterfaceConfig {
                port: "data1".into(),
                address: "198.19.0.1/24".parse().expect("prefix"),
                virtual_ip: Some(Ipv4Addr::new(198, 19, 0, 254)),
                virtual_mac: Some(frames::VMAC1),
            },
        ],
        routes: vec![StaticRoute {
            prefix: "198.18.128.0/17".parse().expect("prefix"),
            via: GW,
        }],
    }
}

/// `pass tcp in on data0 to port 80`, default block (keep state and sync: the defaults).
pub fn rules() -> RuleSet {
    let mut web = Rule::new(Action::Pass);
    web.in_iface = Some(0);
    web.proto = Some(6);
    web.dst_ports = PortRange::new(frames::SERVER_PORT, frames::SERVER_PORT);
    RuleSet::new(vec![web], Action::Block).expect("one rule")
}

/// One worker with a router and, given a capacity, a firewall.
pub struct Unit {
    /// The worker (owns the router, which owns the firewall, and its queues).
    pub worker: Worker,
    /// Its counters.
    pub counters: Arc<WorkerCounters>,
    /// The shard's event queue (the consumer end is syncd's; here the bench drains it).
    pub events: EventQueue,
    /// The worker's inbound queue (the producer end is syncd's).
    pub inbound: InboundQueue,
    /// Set to end `Worker::run`.
    pub stop: Arc<AtomicBool>,
    /// Buffers for frames fed outside the loop.
    pool: PoolAlloc,
    /// Frames the router emitted outside the loop (dropped: freed).
    out: Vec<(IfIndex, Mbuf)>,
}

impl Unit {
    /// Worker `index` on `ports`, sharing `links` with the others. All table memory is
    /// taken (and touched) here.
    pub fn new(
        pool: &Mempool,
        firewall_capacity: Option<usize>,
        index: usize,
        ports: Vec<WorkerPort>,
        links: WorkerLinks,
    ) -> Unit {
        let cfg = config();
        let spec = WorkerSpec {
            index,
            router: &cfg,
            interfaces: vec![
                Interface::new(&cfg.interfaces[0], frames::MAC0, MTU),
                Interface::new(&cfg.interfaces[1], frames::MAC1, MTU),
            ],
            firewall: firewall_capacity.map(|capacity| FirewallSpec {
                rules: Arc::new(rules()),
                capacity,
                seed: SEED,
                timeouts: Timeouts::default(),
                epoch: 1,
                sync_min_age: 0,
            }),
            idle: IdlePolicy::BusyPoll,
            probe_targets: Vec::new(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let inbound = links.inbound.clone();
        let (worker, handles) = workers::build(spec, ports, pool.clone(), Arc::clone(&stop), links)
            .expect("the lab's routes are valid");
        Unit {
            worker,
            counters: handles.counters,
            events: handles.events,
            inbound,
            stop,
            pool: PoolAlloc(pool.clone()),
            out: Vec::with_capacity(64),
        }
    }

    /// A lone worker (index 0 of 1).
    pub fn single(
        pool: &Mempool,
        firewall_capacity: Option<usize>,
        ports: Vec<WorkerPort>,
    ) -> Unit {
        Unit::new(
            pool,
            firewall_capacity,
            0,
            ports,
            WorkerLinks::for_workers(1, workers::Clock::new()).remove(0),
        )
    }

    /// Hands one frame to the router as received on `iface` at `now` (ns) and frees
    /// whatever comes out. Not the measured path: setup only.
    pub fn feed(&mut self, iface: IfIndex, frame: &[u8], now: u64) -> Result<usize, String> {
        let mbuf = mbuf_with(&self.pool.0, frame)?;
        self.worker
            .router_mut()
            .handle(iface, mbuf, now, &mut self.pool, &mut self.out);
        let n = self.out.len();
        self.out.clear();
        Ok(n)
    }

    /// Teaches the neighbours as ARP would: the clients' gateway on data0 and the
    /// server on data1 (whose MAC is data0's virtual MAC: see [`crate::frames`]).
    pub fn teach_neighbours(&mut self, now: u64) -> Result<(), String> {
        self.feed(0, &frames::arp_request(GW_MAC, GW, UNIT0), now)?;
        self.feed(1, &frames::arp_request(SERVER_MAC, SERVER, UNIT1), now)?;
        Ok(())
    }

    /// Opens `flows` with a full handshake through the router (SYN in on data0,
    /// SYN/ACK in on data1, ACK in on data0). Events are drained as syncd would.
    pub fn establish(&mut self, flows: &[u32], now: u64) -> Result<(), String> {
        for &f in flows {
            let fl = Flow::nth(f);
            let sent = self.feed(0, &fl.syn(64), now)?
                + self.feed(1, &fl.syn_ack(64), now)?
                + self.feed(0, &fl.ack(64), now)?;
            if sent != 3 {
                return Err(format!(
                    "handshake of flow {f} ({}:{}): {sent} of 3 frames forwarded; counters: {}",
                    fl.client,
                    fl.port,
                    nonzero(&self.counters)
                ));
            }
            if f % 1024 == 0 {
                self.drain_events();
            }
        }
        self.drain_events();
        Ok(())
    }

    /// Empties the event queue; returns how many were taken.
    pub fn drain_events(&self) -> u64 {
        let mut n = 0;
        while self.events.pop().is_some() {
            n += 1;
        }
        n
    }

    /// Connections in the table.
    pub fn connections(&self) -> usize {
        self.worker
            .router()
            .firewall()
            .map_or(0, |fw| fw.shard().table().len())
    }

    /// Connections created so far (shard statistics).
    pub fn created(&self) -> u64 {
        self.worker
            .router()
            .firewall()
            .map_or(0, |fw| fw.shard().stats().created)
    }

    /// (bytes, capacity) of the connection table.
    pub fn table_memory(&self) -> Option<(usize, usize)> {
        self.worker.router().firewall().map(|fw| {
            let t = fw.shard().table();
            (t.memory_bytes(), t.capacity())
        })
    }
}

/// An mbuf holding `frame`.
pub fn mbuf_with(pool: &Mempool, frame: &[u8]) -> Result<Mbuf, String> {
    let mut m = pool
        .alloc()
        .ok_or_else(|| format!("mempool {} is empty", pool.name()))?;
    m.append(frame.len())
        .ok_or("frame larger than the mbuf")?
        .copy_from_slice(frame);
    Ok(m)
}

/// The counters that are not zero, `name=value` separated by spaces.
pub fn nonzero(c: &WorkerCounters) -> String {
    c.snapshot()
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
