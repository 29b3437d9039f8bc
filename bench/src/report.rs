//! The results table (markdown), printed and written to `bench/results/`.

use crate::figure::{Figure, NewConns, Scaling};
use crate::machine::Stamp;
use crate::testpmd::Ceiling;
use std::fmt::Write as _;

/// Target: cycles per packet at 10k established flows.
pub const TARGET_CYCLES: f64 = 150.0;
/// FD.io VPP's published stateful ACL path, for comparison.
pub const VPP_CYCLES: f64 = 226.0;
/// Target: new connections per second per core.
pub const TARGET_CONNS: f64 = 1_000_000.0;

/// Everything one run found.
pub struct Run {
    /// Machine, commit, versions, date.
    pub stamp: Stamp,
    /// The workers' CPUs (`--cores`); one-worker scenarios run on the first.
    pub cpus: Vec<u32>,
    /// The main lcore's CPU.
    pub main_cpu: u32,
    /// Several workers at once, by flows then workers.
    pub scaling: Vec<Result<Scaling, (usize, u64, String)>>,
    /// TSC frequency.
    pub hz: u64,
    /// Connection table capacity of every shard built.
    pub capacity: usize,
    /// `--quick`.
    pub quick: bool,
    /// Rounds over all scenarios.
    pub rounds: u32,
    /// The command line.
    pub command: String,
    /// Established-flow figures.
    pub figures: Vec<Result<Figure, (String, u64, String)>>,
    /// New-connection figures, one per round.
    pub new_conns: Vec<Result<NewConns, String>>,
    /// The sync scenario, if it ran.
    pub sync: Option<crate::sync::Results>,
    /// testpmd, net_null then net_ring.
    pub ceilings: Vec<Result<Ceiling, (String, usize, String)>>,
    /// Load average when the run ended.
    pub load_after: String,
    /// Share of the worker CPU's time the hypervisor stole during the run.
    pub steal: f64,
    /// Wall seconds the whole run took.
    pub took_secs: f64,
}

fn check_cell(c: &Result<(), String>) -> String {
    match c {
        Ok(()) => "ok".into(),
        Err(e) => format!("**FAILED**: {}", e.replace('|', "/")),
    }
}

fn ratio(mpps: f64, ceiling: Option<f64>) -> String {
    ceiling.map_or("–".into(), |c| format!("{:.3}", mpps / c))
}

impl Run {
    /// Scenarios that failed to run or whose checks did not add up (testpmd's
    /// absence is not one: the ceiling is optional).
    pub fn failures(&self) -> usize {
        let figures = self
            .figures
            .iter()
            .filter(|f| f.as_ref().map_or(true, |f| f.check.is_err()))
            .count();
        let scaling = self
            .scaling
            .iter()
            // One worker is a copy of a firewall figure, counted there.
            .filter(|s| {
                s.as_ref()
                    .map_or(true, |s| s.workers() > 1 && s.check().is_err())
            })
            .count();
        let conns = self
            .new_conns
            .iter()
            .filter(|n| n.as_ref().map_or(true, |n| n.check.is_err()))
            .count();
        figures + scaling + conns + self.sync.as_ref().map_or(0, |s| s.failures())
    }

    /// The new-connection round with the median cost (only rounds whose checks passed).
    fn median_conns(&self) -> Option<&NewConns> {
        let mut ok: Vec<&NewConns> = self
            .new_conns
            .iter()
            .flatten()
            .filter(|n| n.check.is_ok())
            .collect();
        ok.sort_by(|a, b| a.cycles_per_conn().total_cmp(&b.cycles_per_conn()));
        ok.get(ok.len().saturating_sub(1) / 2).copied()
    }

    /// The null-PMD ceiling of one core in Mpps, if measured.
    fn ceiling(&self) -> Option<f64> {
        self.ceiling_of(1)
    }

    /// The null-PMD ceiling of `cores` forwarding cores together, if measured.
    fn ceiling_of(&self, cores: usize) -> Option<f64> {
        self.ceilings
            .iter()
            .flatten()
            .find(|c| c.vdev == "net_null" && c.cores == cores)
            .map(Ceiling::mpps)
    }

    /// The markdown page, linking the plot `plot` (an SVG file beside it) if given.
    pub fn markdown(&self, plot: Option<&str>) -> String {
        let s = &self.stamp;
        let hz = self.hz;
        let mut o = String::new();
        let _ = writeln!(o, "# tandem bench — {}\n", s.date);
        let _ = writeln!(o, "| | |\n|---|---|");
        let virt = if s.virtualised {
            ", virtual machine"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "| machine | {} ({} CPUs{virt}), kernel {} |",
            s.cpu, s.cores, s.kernel
        );
        let _ = writeln!(o, "| TSC | {:.3} GHz |", hz as f64 / 1e9);
        let _ = writeln!(o, "| commit | `{}` |", s.commit);
        let _ = writeln!(o, "| DPDK | {} |", s.dpdk);
        let _ = writeln!(
            o,
            "| memory | DPDK `--no-huge` (4 KiB pages); transparent huge pages: {} |",
            s.thp
        );
        let _ = writeln!(
            o,
            "| load average (1/5/15 min) | {} at start, {} at end (other work shares these CPUs) |",
            s.load_before, self.load_after
        );
        let _ = writeln!(
            o,
            "| hypervisor steal on the worker CPU | {:.1} % of the run |",
            100.0 * self.steal
        );
        let _ = writeln!(
            o,
            "| CPUs | workers on {:?} (`--cores`; one-worker scenarios on the first), main lcore on {} |",
            self.cpus, self.main_cpu
        );
        let _ = writeln!(o, "| connection table | capacity {} per shard (as a unit's shard; the 10k-flow runs use the same size) |", self.capacity);
        let _ = writeln!(
            o,
            "| run | `{}` ({}, {} round(s), {:.0} s) |\n",
            self.command,
            if self.quick { "quick" } else { "full" },
            self.rounds,
            self.took_secs
        );

        if let Some(svg) = plot {
            let _ = writeln!(
                o,
                "Plot: [Mpps and cycles/packet against established flows]({svg}) (log x; one line per scenario and frame size; ring I/O left out).\n\n![Mpps and cycles/packet against established flows]({svg})\n"
            );
        }
        let ceiling = self.ceiling();
        let _ = writeln!(
            o,
            "## Established flows: one worker core (CPU {})\n",
            self.cpus.first().copied().unwrap_or(0)
        );
        let _ = writeln!(
            o,
            "| scenario | flows | frame | Mpps | Gbit/s | cycles/packet | best – worst epoch | in-loop p50 / p99 / p99.9 / max (ns) | instructions/packet (IPC) | ratio to testpmd io (net_null) | CPU share | measured | loop | checks |"
        );
        let _ = writeln!(
            o,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
        );
        for f in &self.figures {
            match f {
                Ok(f) => {
                    let t = f.total();
                    let ipc = f.mean_ipc().map_or("–".into(), |ipc| {
                        format!("{:.0} ({ipc:.2})", ipc * f.cycles_per_packet())
                    });
                    let lat = f.latency_ns(hz).map_or("–".into(), |[a, b, c, d]| {
                        format!("{a:.0} / {b:.0} / {c:.0} / {d:.0}")
                    });
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | **{:.2}** | {:.2} | **{:.1}** | {:.1} – {:.1} | {lat} | {ipc} | {} | {:.0} % | {} pkts, {} epochs, {:.1} s | {} | {} |",
                        f.scenario,
                        f.flows,
                        f.size.label(),
                        f.mpps(hz),
                        f.mpps(hz) * f.size.mean_wire_len() * 8.0 / 1e3,
                        f.cycles_per_packet(),
                        f.best_cycles_per_packet(),
                        f.worst_cycles_per_packet(),
                        ratio(f.mpps(hz), ceiling),
                        100.0 * f.share(),
                        t.packets,
                        f.epochs.len(),
                        f.seconds(hz),
                        f.measured_loop,
                        check_cell(&f.check)
                    );
                }
                Err((scenario, flows, e)) => {
                    let _ = writeln!(o, "| {scenario} | {flows} | – | – | – | – | – | – | – | – | – | – | – | **ERROR**: {} |", e.replace('|', "/"));
                }
            }
        }
        let _ = writeln!(o, "\nMpps and cycles/packet are the median epoch's (on-CPU time); *best – worst* shows the spread between epochs. Gbit/s = Mpps × mean frame size (FCS included, no preamble or gap). IMIX = 7:4:1 of 64/576/1500-byte frames, assigned by flow number (mean 353.8 B).\n\n*In-loop p50 / p99 / p99.9 / max* is **not wire latency**: it is the duration (TSC, all epochs pooled in an HdrHistogram) of the `Worker::poll_once` call that received a packet — from its first rx burst to the end of its last tx burst — counted once per packet: an upper bound on the time a packet spends inside the worker. Queueing in the ring before rx is not included.\n");

        self.scaling_section(&mut o);

        let _ = writeln!(o, "## New connections: one worker core\n");
        if self.new_conns.is_empty() {
            let _ = writeln!(o, "(not run)\n");
        } else {
            let ceiling = self.ceiling();
            let _ = writeln!(o, "| round | connections | new conns/s | SYNs/s ÷ testpmd io packets/s (net_null) | cycles/connection | CPU share | sync events offered / refused (queue full) | checks |");
            let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---|---|");
            for (i, n) in self.new_conns.iter().enumerate() {
                match n {
                    Ok(n) => {
                        let _ = writeln!(
                            o,
                            "| {} | {} | {:.0} | {} | {:.0} | {:.0} % | {} / {} | {} |",
                            i + 1,
                            n.conns,
                            n.per_second(hz),
                            ratio(n.per_second(hz) / 1e6, ceiling),
                            n.cycles_per_conn(),
                            100.0 * n.interval.share(),
                            n.events.0,
                            n.events.1,
                            check_cell(&n.check)
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            o,
                            "| {} | – | – | – | – | – | – | **ERROR**: {} |",
                            i + 1,
                            e.replace('|', "/")
                        );
                    }
                }
            }
            if let Some(n) = self.median_conns() {
                let _ = writeln!(
                    o,
                    "\nMedian round: **{:.2} M new connections/s, {:.0} cycles per connection**.\n",
                    n.per_second(hz) / 1e6,
                    n.cycles_per_conn()
                );
                let (bytes, cap) = n.table;
                if cap > 0 {
                    let per = bytes as f64 / cap as f64;
                    let _ = writeln!(
                        o,
                        "Connection table memory: `ConnTable::memory_bytes()` = {bytes} bytes for a capacity of {cap}: **{per:.1} bytes per connection** (entry + index slots + wheel); 1M connections: {:.1} MB (10⁶ bytes){}.\n",
                        per,
                        if cap == 1_000_000 { "" } else { " (scaled from this capacity)" }
                    );
                }
            }
        }

        if let Some(sync) = &self.sync {
            self.sync_section(&mut o, sync);
        }

        let _ = writeln!(o, "## Ceiling: dpdk-testpmd io forwarding\n");
        let _ = writeln!(o, "| vdev | forwarding cores | Mpps | cycles/packet per core | best period | CPU share | what it measures | command |");
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---|---|");
        for c in &self.ceilings {
            match c {
                Ok(c) => {
                    let what = if c.vdev == "net_null" {
                        "mbuf alloc (rx) + free (tx) per packet, no data touched: **the ceiling**"
                    } else {
                        "one burst per port recirculating by pointer: ring PMD cost only, not a packet rate"
                    };
                    let _ = writeln!(
                        o,
                        "| {} | {} | **{:.2}** | {:.1} | {:.2} Mpps | {:.0} % | {what} | `{}` |",
                        c.vdev,
                        c.cores,
                        c.mpps(),
                        c.cycles_per_packet(hz),
                        c.best_mpps(),
                        100.0 * c.share(),
                        c.command
                    );
                }
                Err((vdev, cores, e)) => {
                    let _ = writeln!(
                        o,
                        "| {vdev} | {cores} | – | – | – | – | **not measured**: {e} | |"
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "\nMedian of the one-second statistics periods after two of warm-up. With several forwarding cores (a queue pair per core on each port), Mpps is what they reach together per on-CPU time: packets × cores / on-CPU seconds summed over the forwarding threads.\n"
        );

        let _ = writeln!(o, "## Targets\n");
        let _ = writeln!(o, "| target | measured | met |\n|---|---|---|");
        let at10k = self.figures.iter().flatten().find(|f| {
            f.flows == 10_000 && f.scenario == crate::established::Layer::Firewall.name()
        });
        match at10k {
            Some(f) => {
                let c = f.cycles_per_packet();
                let _ = writeln!(
                    o,
                    "| ≤ {TARGET_CYCLES:.0} cycles/packet, 10k established flows (VPP stateful ACL: {VPP_CYCLES:.0}) | {c:.1} cycles/packet | {} |",
                    if c <= TARGET_CYCLES && f.check.is_ok() { "yes" } else { "**no**" }
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "| ≤ {TARGET_CYCLES:.0} cycles/packet at 10k flows | not run | – |"
                );
            }
        }
        match self.median_conns() {
            Some(n) => {
                let r = n.per_second(hz);
                let _ = writeln!(
                    o,
                    "| ≥ 1M new connections/s per core | {:.2} M/s | {} |",
                    r / 1e6,
                    if r >= TARGET_CONNS && n.check.is_ok() {
                        "yes"
                    } else {
                        "**no**"
                    }
                );
            }
            _ => {
                let _ = writeln!(o, "| ≥ 1M new connections/s per core | not run | – |");
            }
        }
        if let Some(sync) = &self.sync {
            self.sync_targets(&mut o, sync);
        }
        let _ = writeln!(o);
        o.push_str(METHOD);
        o
    }
}

/// `yes`, or how far off.
fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

impl Run {
    /// M records per second at `cycles` per record.
    fn mrate(&self, cycles: f64) -> f64 {
        self.hz as f64 / cycles.max(1e-9) / 1e6
    }

    /// The sync scenario's tables.
    fn sync_section(&self, o: &mut String, s: &crate::sync::Results) {
        use crate::syncload::Mode;
        let hz = self.hz;
        let _ = writeln!(o, "## Synchronisation: firewall + sync\n");
        let _ = writeln!(
            o,
            "### The sync lcore's engine: records through one core each way (CPU {})\n",
            self.cpus.first().copied().unwrap_or(0)
        );
        let _ = writeln!(o, "| HA link MTU | records | count | per datagram | bytes/record on the wire (frame) | pack + seal + send: cycles/record (M/s) | open + parse + deliver (M/s) | install into shards (M/s) | receive together (M/s) | acks back, bytes/record | CPU share | checks |");
        let _ = writeln!(
            o,
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for r in &s.stream {
            match r {
                Ok(r) => {
                    let cell = |c: f64| format!("{c:.0} ({:.2})", self.mrate(c));
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {:.1} | {:.1} | **{}** | {} | {} | **{}** | {:.2} | {:.0} % | {} |",
                        r.mtu,
                        r.kind.name(),
                        r.records,
                        r.per_datagram(),
                        r.bytes_per_record(),
                        cell(r.send_cycles()),
                        cell(r.open_cycles()),
                        cell(r.install_cycles()),
                        cell(r.receive_cycles()),
                        r.acks.1 as f64 / r.records.max(1) as f64,
                        100.0 * r.share(),
                        match (&r.check, r.retransmitted) {
                            (Ok(()), n) if n > 0 => format!("ok ({n} datagrams retransmitted: an ack 50 ms late, the thread preempted)"),
                            (c, _) => check_cell(c),
                        }
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        o,
                        "| – | – | – | – | – | – | – | – | – | – | – | **ERROR**: {} |",
                        e.replace('|', "/")
                    );
                }
            }
        }
        let _ = writeln!(o, "\nCycles per record are on-CPU cycles of the median epoch (16384 records; rounds pooled), M/s = TSC rate ÷ cycles. *Bytes on the wire* are whole Ethernet frames: the datagram (72-byte header, 12-byte sub-header per run of one record type, the records, 16-byte tag) + UDP 8 + IPv4 20 + Ethernet 14 + FCS 4 (preamble and gap, 20 more per frame, not counted). *Acks back*: B's control datagrams (acks every 32 data datagrams, heartbeats) per record.\n");

        let _ = writeln!(o, "### Bulk: a whole table to a partner that appears\n");
        let _ = writeln!(o, "| round | entries | wall time | entries/s | data datagrams | MB on the wire | on-CPU share: worker lcore / main lcore | retransmitted | receiver backpressure | checks |");
        let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---|---:|---:|---|");
        for (i, b) in s.bulk.iter().enumerate() {
            match b {
                Ok(b) => {
                    let _ = writeln!(
                        o,
                        "| {} | {} | **{:.3} s** | {:.2} M | {} | {:.1} | {:.0} % / {:.0} % | {} | {} | {} |",
                        i + 1,
                        b.entries,
                        b.seconds,
                        b.rate() / 1e6,
                        b.data.0,
                        b.data.1 as f64 / 1e6,
                        100.0 * b.shares.0,
                        100.0 * b.shares.1,
                        b.retransmitted,
                        b.backpressure,
                        check_cell(&b.check)
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        o,
                        "| {} | – | – | – | – | – | – | – | – | **ERROR**: {} |",
                        i + 1,
                        e.replace('|', "/")
                    );
                }
            }
        }
        let _ = writeln!(o, "\nTwo threads, as a pair of units splits the work: the worker lcore (CPU {}) runs both units' workers — A's export walk (`Shard::service`) and B's installs (`Shard::receive`, up to 256 per poll, as `Worker::poll_once`) —, the main lcore (CPU {}) both engines (A packs and seals, B opens and stages; the HA link is memory). Wall time from the first heartbeat to B's worker handling the bulk's end marker, all entries installed. HA link MTU 1500.\n", self.cpus.first().copied().unwrap_or(0), self.main_cpu);

        let _ = writeln!(o, "### Bytes on the HA link per connection\n");
        let _ = writeln!(o, "| close | connections | opened | records per connection (inserts / updates / deletes, updates folded) | data datagrams per connection | **bytes per connection** (frames) | checks |");
        let _ = writeln!(o, "|---|---:|---|---|---:|---:|---|");
        for c in &s.per_conn {
            match c {
                Ok(c) => {
                    let n = c.conns.max(1) as f64;
                    let [i, u, d, f] = c.records;
                    let opened = if c.conns == 1 {
                        format!(
                            "alone; {} ms round trip, events ≥ 5 ms apart",
                            c.rtt_ns / 1_000_000
                        )
                    } else {
                        format!(
                            "{:.0}k/s, {:.1} ms round trip, {} ms life",
                            c.rate / 1e3,
                            c.rtt_ns as f64 / 1e6,
                            c.life_ns / 1_000_000
                        )
                    };
                    let _ = writeln!(
                        o,
                        "| {} | {} | {opened} | {:.2} ({:.2} / {:.2} / {:.2}, {:.2} folded) | {:.2} | **{:.1}** | {} |",
                        c.close.name(),
                        c.conns,
                        c.records_per_conn(),
                        i as f64 / n,
                        u as f64 / n,
                        d as f64 / n,
                        f as f64 / n,
                        c.datagrams_per_conn(),
                        c.bytes_per_conn(),
                        check_cell(&c.check)
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        o,
                        "| – | – | – | – | – | – | **ERROR**: {} |",
                        e.replace('|', "/")
                    );
                }
            }
        }
        let _ = writeln!(o, "\nReal TCP life cycles through A's two shards (`Shard::create`, `Shard::track`, expiry) on a virtual clock: SYN, SYN/ACK half a round trip later, ACK (ESTABLISHED), then the close; the entry is deleted when CLOSE or TIME_WAIT expires. A's engine packs what they tell it (a compact update of an entry still in the datagram being filled replaces the older one: *folded*); B opens and installs it (checked: B ends with every entry installed and deleted). Data datagrams only (the acks and heartbeats back are in the table above); digests off for this run (a record per shard every 2 s: bytes per second, not per connection).\n");

        let _ = writeln!(o, "### The worker with sync off and on\n");
        let _ = writeln!(o, "| round | events taken by | connections | packets | new conns/s | Mpps | cycles/connection | events queued / refused | engine: records, datagrams, main-lcore on-CPU share | checks |");
        let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---|---|---|");
        for w in &s.worker {
            match w {
                Ok(w) => {
                    let eng = w.engine.map_or("–".into(), |e| {
                        format!(
                            "{} ({} folded), {} ({:.1} MB), {:.0} %",
                            e.records,
                            e.folded,
                            e.data.0,
                            e.data.1 as f64 / 1e6,
                            100.0 * e.share
                        )
                    });
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | **{:.0}** | {:.2} | {:.0} | {} / {} | {eng} | {} |",
                        w.round,
                        w.mode.name(),
                        w.conns,
                        w.packets,
                        w.conns_per_sec(hz),
                        w.mpps(hz),
                        w.interval.on_cpu_cycles() as f64 / w.conns.max(1) as f64,
                        w.events.0,
                        w.events.1,
                        check_cell(&w.check)
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        o,
                        "| – | – | – | – | – | – | – | – | – | **ERROR**: {} |",
                        e.replace('|', "/")
                    );
                }
            }
        }
        if let (Some(off), Some(on)) = (
            s.median_worker(Mode::Drop, hz),
            s.median_worker(Mode::Engine, hz),
        ) {
            let _ = writeln!(
                o,
                "\nMedians: sync off **{:.2} M conns/s**, sync on **{:.2} M conns/s**: **ratio {:.3}** (on ÷ off).\n",
                off / 1e6,
                on / 1e6,
                on / off
            );
        }
        let _ = writeln!(o, "The worker lcore (CPU {}) runs `Worker::poll_once` over rings holding whole connections (SYN, SYN/ACK, ACK, RST from the server: 4 packets and 4 events each); the main lcore (CPU {}) takes the events: *off*, a loop pops and drops them; *on*, engine A packs and seals them for a partner that only acknowledges (its session reads the plaintext sequence numbers, acks every 32 datagrams). Same frames, same table; each twice per round, in the order off, on, on, off (on, off, off, on in even rounds).\n", self.cpus.first().copied().unwrap_or(0), self.main_cpu);
    }

    /// The sync goals in the targets table.
    fn sync_targets(&self, o: &mut String, s: &crate::sync::Results) {
        use crate::sync::RecordKind;
        use crate::syncload::Mode;
        let target = 5e6;
        match s.row(1500, RecordKind::Update) {
            Some(r) => {
                let send = self.mrate(r.send_cycles()) * 1e6;
                let recv = self.mrate(r.receive_cycles()) * 1e6;
                let _ = writeln!(o, "| sync: ≥ 5M compact updates/s packed, sealed and sent on one core (HA MTU 1500) | {:.2} M/s | {} |", send / 1e6, met(send >= target));
                let _ = writeln!(o, "| sync: ≥ 5M compact updates/s opened and installed (HA MTU 1500) | {:.2} M/s | {} |", recv / 1e6, met(recv >= target));
            }
            None => {
                let _ = writeln!(
                    o,
                    "| sync: ≥ 5M updates/s each way | not run or failed | – |"
                );
            }
        }
        match s.median_bulk() {
            Some(b) => {
                let _ = writeln!(
                    o,
                    "| sync: bulk of 1M entries in < 2 s | {:.3} s for {} entries | {} |",
                    b.seconds,
                    b.entries,
                    if b.entries < 1_000_000 {
                        "– (fewer entries)"
                    } else {
                        met(b.seconds < 2.0)
                    }
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "| sync: bulk of 1M entries in < 2 s | not run or failed | – |"
                );
            }
        }
        match (
            s.median_worker(Mode::Drop, self.hz),
            s.median_worker(Mode::Engine, self.hz),
        ) {
            (Some(off), Some(on)) => {
                let _ = writeln!(
                    o,
                    "| sync: worker with sync on within 10 % of sync off | ratio {:.3} | {} |",
                    on / off,
                    met(on / off >= 0.9)
                );
            }
            _ => {
                let _ = writeln!(
                    o,
                    "| sync: worker with sync on within 10 % of sync off | not run or failed | – |"
                );
            }
        }
    }

    /// Several workers at once: what the cores do together.
    fn scaling_section(&self, o: &mut String) {
        let _ = writeln!(o, "## Scaling with worker cores\n");
        if self.scaling.is_empty() {
            let _ = writeln!(o, "(not run)\n");
            return;
        }
        let hz = self.hz;
        let _ = writeln!(o, "| scenario | flows | workers | CPUs | Mpps together | × one worker | ÷ testpmd io on as many cores (net_null) | Mpps over wall time | cycles/packet per worker | CPU share per worker | checks |");
        let _ = writeln!(o, "|---|---:|---:|---|---:|---:|---:|---:|---|---|---|");
        let one = |flows: u64| {
            self.scaling
                .iter()
                .flatten()
                .find(|s| s.flows == flows && s.workers() == 1)
                .map(|s| s.mpps(hz))
        };
        let list = |v: Vec<f64>, f: &dyn Fn(f64) -> String| {
            v.into_iter().map(f).collect::<Vec<_>>().join(" / ")
        };
        for s in &self.scaling {
            match s {
                Ok(s) => {
                    let speedup =
                        one(s.flows).map_or("–".into(), |b| format!("{:.2}", s.mpps(hz) / b));
                    let _ = writeln!(
                        o,
                        "| {}, 64 B | {} | {} | {:?} | **{:.2}** | {speedup} | {} | {:.2} | {} | {} | {} |",
                        crate::established::Layer::Firewall.name(),
                        s.flows,
                        s.workers(),
                        s.cpus,
                        s.mpps(hz),
                        ratio(s.mpps(hz), self.ceiling_of(s.workers())),
                        s.wall_mpps(hz),
                        list(s.cycles_per_packet(), &|c| format!("{c:.0}")),
                        list(s.shares(), &|x| format!("{:.0} %", 100.0 * x)),
                        check_cell(&s.check())
                    );
                }
                Err((workers, flows, e)) => {
                    let _ = writeln!(
                        o,
                        "| {} | {flows} | {workers} | – | – | – | – | – | – | – | **ERROR**: {} |",
                        crate::established::Layer::Firewall.name(),
                        e.replace('|', "/")
                    );
                }
            }
        }
        let _ = writeln!(o, "\nEach worker has its own queue pair on both ports, its own ring and its own connection shard, and gets the flows symmetric RSS gives it (`Handoff::owner`, what the worker itself checks: no packet was handed to another worker). *Mpps together* is the sum of each worker's on-CPU rate (median epoch); *over wall time* is packets / elapsed time summed over the workers, lower when something else had the CPUs. With the same flows split over more shards each shard is smaller, so a worker can run faster than the one-worker figure (fewer cache misses per packet); a worker sharing its CPU with the sleeping main lcore is charged only for its on-CPU time.\n");
    }
}

const METHOD: &str = "## How it was measured

- **Traffic without a NIC or a generator.** Two ports made with `rte_eth_from_rings`:
  data1's tx ring *is* data0's rx ring, and the unit has learnt the server's MAC as data0's
  virtual MAC, so every frame the unit forwards comes back in. The ring is prefilled with
  one TCP ACK per established flow (60 bytes + FCS = 64 on the wire, or the size of the
  row: 512, 1500, or IMIX by flow number), valid IPv4 and TCP checksums, in a random
  (seeded) flow order — entries were created in flow order, so a sorted ring would let the
  hardware prefetcher walk the table —: every pass parses, routes, looks up and
  window-tracks every flow once, and no generator runs on any core. Each flow was opened
  beforehand by a real handshake through `Router::handle` (SYN in on data0, SYN/ACK in on
  data1, ACK in on data0). With several workers each has a queue pair and a ring of its
  own holding the flows RSS gives it.
- **Epochs and rounds.** Each pass takes one from every frame's TTL (255 at start), so the
  worker stops after at most 250 passes or 250 ms, puts TTL and the IPv4 checksum back in
  every frame (untimed, ring order kept), re-confirms the neighbours by ARP, and goes on.
  One untimed warm-up pass precedes the first epoch; only time inside epochs counts. The
  whole list of scenarios runs once per round, so a slow spell of a shared host touches all
  of them alike; a scenario's figure is the **median epoch** over all rounds, with the best
  and worst epochs beside it.
- **Loop measured.** `Worker::poll_once`: the body of `workers::Worker::run`,
  the function `tandemd` runs (clock read, rx burst of up to 64 on each port, the owner
  check when there are several workers, `Router::handle` per frame, per-port tx bursts,
  handoff and neighbour inboxes, the 10 ms timer with expiry, control inbox and counter
  publication), called by the bench until N packets instead of until a stop flag, so
  the worker and its table survive between epochs. `Worker::run, unmodified` is the
  whole loop in one epoch, timed from the main lcore (counter samples every ms): the
  same work without the bench's epochs and latency clock reads. `ring I/O only`: rx
  burst → tx burst, no frame touched — the floor of the ring PMD.
- **Cycles are on-CPU cycles.** The machine may be shared: TSC cycles of each epoch minus
  the time the worker thread waited on a run queue (`/proc/<pid>/task/<tid>/schedstat`),
  so a preempted worker is not charged for someone else's work (cache pollution by those
  others, or a busy sibling hyperthread on the host, still is). *CPU share* is on-CPU /
  wall time; Mpps = 1 / (median cycles per packet) at the TSC rate.
- **Instructions per packet** (when `perf` is available): `perf stat -e
  instructions:u,cycles:u -t <worker tid>` over the `Worker::run` measurement gives the IPC;
  IPC × cycles/packet = instructions/packet, which unlike cycles does not depend on what
  else the host is doing.
- **Checks.** Per epoch: packets received = forwarded = sent, no drop of any reason, and
  with the firewall every packet `accepted_state`; the ring holds exactly one frame per
  flow after every epoch. New connections: `M` created, `M` `accepted_new`, `M` forwarded,
  none dropped, `M` in the sink ring.
- **New connections.** A ring of `M` SYNs of distinct 5-tuples into data0; data1 sends into a
  sink ring that holds them all. Timed from the first rx burst until all `M` were received
  and forwarded; each creates a table entry and a sync event (the main lcore drains the
  event queue meanwhile, standing in for syncd).
- **Firewall + sync.** Two units' `syncd::engine::Engine`s (A sends, B receives; one HA
  link, the pair's PSK, AES-256-GCM) and shards in one process, as `syncd/tests/pair.rs`
  drives them; the HA link is memory: the engine's `out` counts the datagram and copies it
  (as a transmit copies it into an mbuf) for the other engine's `receive`. After the
  handshake and the (empty) bulks: *stream* — events pre-filled in A's two worker event
  queues (16384 each, as `tandemd`; topped up between polls, untimed): inserts of N
  connections (full records of an ESTABLISHED connection as a shard makes them), then
  compact updates of each (sequence edges advancing, so none is stale), then deletes; A
  drains them (`poll`), B takes each datagram (`receive`, then `poll`, which hands the
  records to the workers' inbound queues and acks every 32), B's shards install them
  (`Shard::receive`), A takes the acks; the TSC around each stage, idle steps left out,
  each 16384-record epoch's cycles scaled by its on-CPU share. Checks: every record taken
  and installed/applied/deleted (none stale, unknown or refused), none dropped,
  retransmitted or held back, B's table empty at the end. The events are made on the same
  core just before, so they are in its cache: the cross-core cost is in the worker run.
  *Bulk*: see its table. *Bytes per connection*: see its table. *Worker*: see its table;
  the worker's on-CPU time as in the new-connection run.
- **Ceiling.** `dpdk-testpmd --forward-mode=io` with one forwarding core, same EAL options
  (`--no-huge`; its main lcore on the bench's main CPU, its forwarding lcore on the first
  worker CPU), its forwarding thread's on-CPU time taken the same way; for the scaling
  rows, the same with as many forwarding cores on the same CPUs as the workers had (a
  queue pair per core). On
  `net_null` every packet is an mbuf allocated on rx and freed on tx, which a NIC driver
  also pays and the recirculating rings do not: the ratio is a conservative comparison
  (tandem does its per-packet work here *without* the mbuf life cycle that testpmd pays).
- **Memory.** No hugepages (`--no-huge`): mbufs and the connection table sit on 4 KiB pages,
  so the 1M-flow figures include TLB misses a hugepage-backed unit would mostly avoid.
";
