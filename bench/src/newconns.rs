//! New connections per second: a ring of SYNs, each the first packet of a new flow.
//!
//! Setup (untimed): the unit learns its neighbours; data0's ring is filled with `M`
//! SYNs to port 80 of distinct 5-tuples; data1 sends into a sink ring that takes all
//! of them (nothing is freed on the measured core). The worker lcore runs the bench
//! loop until all `M` were received; each SYN misses the table, is decided by the rules
//! (pass), gets an entry (and a `Created` event for syncd) and is forwarded. The main
//! lcore meanwhile drains the event queue, standing in for syncd.
//!
//! Checks: `M` connections created, `M` `accepted_new`, `M` forwarded and sent, no drop.

use crate::cpu::{Interval, ThreadStat};
use crate::established::Params;
use crate::figure::{Counts, NewConns};
use crate::frames::Flow;
use crate::hotloop::{self, Clock, Stop};
use crate::topo::{self, Topology};
use crate::unit::{self, Unit};
use dpdk_sys::{lcore, LcoreId, Mempool};
use std::sync::mpsc;
use std::time::Duration;

/// Opens `p.flows` new connections through the worker lcore and times it.
pub fn run(p: Params, pool: &Mempool, wl: LcoreId) -> Result<NewConns, String> {
    let m = p.flows;
    let topo = Topology::one_way(pool, m + 1024).map_err(|e| e.to_string())?;
    let mut unit = Unit::single(pool, Some(p.capacity), topo.worker_ports(0)?);
    unit.teach_neighbours(0)?;
    let syns: Result<Vec<_>, String> = (0..m)
        .map(|f| unit::mbuf_with(pool, &Flow::nth(f).syn(64)))
        .collect();
    topo::fill(&topo.a_rx[0], syns?)?;
    let events = unit.events.clone();
    let sink = topo.b_tx[0].clone();
    eprintln!("    opening {m} connections on {wl}");
    let (tx, rx) = mpsc::channel();
    let handle = lcore::launch(wl, move || {
        let hz = lcore::tsc_hz();
        let clock = Clock::new();
        let stat = ThreadStat::current();
        let before = Counts::of(&unit.counters);
        let created = unit.created();
        let stop = Stop {
            packets: u64::from(m),
            deadline_ns: 600_000_000_000,
        };
        let s0 = stat.start();
        let n = hotloop::run_worker(&mut unit.worker, &clock, stop, None);
        let s1 = stat.end();
        if let Some(fw) = unit.worker.router().firewall() {
            fw.publish(&unit.counters);
        }
        let d = Counts::of(&unit.counters).since(&before);
        let made = unit.created() - created;
        let m = u64::from(m);
        let check = if n == m
            && made == m
            && d.accepted_new == m
            && d.forwarded == m
            && d.tx == m
            && d.dropped == 0
            && sink.count() as u64 == m
        {
            Ok(())
        } else {
            Err(format!(
                "{n} received, {made} created, {} in the sink, {d:?}; counters: {}",
                sink.count(),
                unit::nonzero(&unit.counters)
            ))
        };
        let c = &unit.counters;
        let _ = tx.send(NewConns {
            conns: n,
            interval: Interval::between(s0, s1, hz),
            check,
            events: (c.events_sent.get(), c.events_overflow.get()),
            table: unit.table_memory().unwrap_or((0, 0)),
        });
        0
    })
    .map_err(|e| e.to_string())?;
    // syncd's part: take the events off the queue while the worker makes them.
    let mut drained = 0u64;
    while handle.is_running() {
        while events.pop().is_some() {
            drained += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    handle.wait();
    while events.pop().is_some() {
        drained += 1;
    }
    let result = rx
        .recv()
        .map_err(|_| "the worker lcore sent nothing".to_string())?;
    eprintln!("    {drained} sync events drained by the main lcore");
    drop(topo);
    Ok(result)
}
