//! What workers share with each other and with the control plane: neighbour
//! hints, packets handed to the worker that owns their flow, each worker's
//! control inbox, its inbound records from the partner, and the unit's role
//! ([`HaSignals`]). Every queue is a bounded lock-free `ArrayQueue`
//! with one consumer (the worker it belongs to).

use crate::clock::Clock;
use crate::ha::HaSignals;
use crossbeam::queue::ArrayQueue;
use dataplane::conntrack::event::InboundQueue;
use dataplane::conntrack::rss::Toeplitz;
use dataplane::control::WorkerInbox;
use dataplane::firewall::flow_key_of_frame;
use dataplane::forward::router::Learned;
use dataplane::forward::IfIndex;
use dpdk_sys::Mbuf;
use std::sync::Arc;

/// Records from the partner the sync lcore may queue for a worker.
pub const INBOUND_QUEUE_LEN: usize = 16_384;

/// Neighbour sharing between workers: an inbox per worker.
#[derive(Clone)]
pub struct NeighborMesh {
    inboxes: Arc<Vec<ArrayQueue<Learned>>>,
}

impl NeighborMesh {
    /// A mesh for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            inboxes: Arc::new((0..workers).map(|_| ArrayQueue::new(256)).collect()),
        }
    }

    /// Neighbours learnt by the others, for worker `me`.
    pub(crate) fn take(&self, me: usize) -> Option<Learned> {
        self.inboxes[me].pop()
    }

    pub(crate) fn tell_others(&self, me: usize, learned: &[Learned]) {
        for (w, inbox) in self.inboxes.iter().enumerate() {
            if w != me {
                for l in learned {
                    // A full inbox loses a hint, not a packet: that worker
                    // resolves the neighbour with its own ARP request.
                    let _ = inbox.push(*l);
                }
            }
        }
    }
}

/// Packets on their way to the worker that owns their flow: an inbox per
/// worker. Used when a packet arrives on a queue whose worker does not own
/// its flow (a vdev without RSS, or a NIC hashing asymmetrically); it is
/// never processed on the wrong shard.
#[derive(Clone)]
pub struct Handoff {
    inboxes: Arc<Vec<ArrayQueue<(IfIndex, Mbuf)>>>,
    rss: Arc<Toeplitz>,
}

impl Handoff {
    /// Inboxes for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            inboxes: Arc::new((0..workers).map(|_| ArrayQueue::new(4096)).collect()),
            rss: Arc::new(Toeplitz::symmetric()),
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Queues a frame received on `iface` for worker `owner`; gives it back
    /// when that inbox is full.
    pub(crate) fn send(&self, owner: usize, iface: IfIndex, m: Mbuf) -> Result<(), Mbuf> {
        self.inboxes[owner].push((iface, m)).map_err(|(_, m)| m)
    }

    /// A frame other workers handed to worker `me`.
    pub(crate) fn take(&self, me: usize) -> Option<(IfIndex, Mbuf)> {
        self.inboxes[me].pop()
    }

    /// The worker that owns the flow of this frame; frames with no flow
    /// (ARP, anything the router handles alone) stay where they are. A NIC's
    /// symmetric RSS with the default RETA picks the same one.
    pub fn owner(&self, frame: &[u8], me: usize) -> usize {
        match flow_key_of_frame(frame) {
            Some(key) => self.rss.owner_of(&key, self.workers()),
            None => me,
        }
    }
}

/// What the control thread shares with a worker.
#[derive(Clone)]
pub struct WorkerLinks {
    /// Neighbours learnt by the others.
    pub mesh: NeighborMesh,
    /// Packets for flows this worker owns.
    pub handoff: Handoff,
    /// Rules and listings from the control thread.
    pub inbox: Arc<WorkerInbox>,
    /// Records from the partner for this worker's shard, from the sync lcore.
    pub inbound: InboundQueue,
    /// The unit's clock (one origin for every worker and the main lcore).
    pub clock: Clock,
    /// The unit's role, one for every worker: the control plane writes it,
    /// the workers follow.
    pub ha: Arc<HaSignals>,
}

impl WorkerLinks {
    /// The links of `workers` workers, in worker order: one neighbour mesh and
    /// one set of handoff inboxes shared by all, a control inbox and an
    /// inbound queue each, the unit's `clock`, and one [`HaSignals`] (live:
    /// a unit is live until its control plane says otherwise).
    pub fn for_workers(workers: usize, clock: Clock) -> Vec<WorkerLinks> {
        let (mesh, handoff) = (NeighborMesh::new(workers), Handoff::new(workers));
        let ha = Arc::new(HaSignals::default());
        (0..workers)
            .map(|_| WorkerLinks {
                mesh: mesh.clone(),
                handoff: handoff.clone(),
                inbox: Arc::new(WorkerInbox::default()),
                inbound: InboundQueue::new(INBOUND_QUEUE_LEN),
                clock,
                ha: Arc::clone(&ha),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 frame carrying `l4` (checksums do not matter here).
    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        let total = u16::try_from(20 + l4.len()).unwrap();
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[22] = 64;
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f.extend_from_slice(l4);
        f
    }

    fn tcp_ports(s: u16, d: u16) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&s.to_be_bytes());
        t[2..4].copy_from_slice(&d.to_be_bytes());
        t[12] = 0x50;
        t
    }

    #[test]
    fn both_directions_and_their_icmp_errors_have_one_owner() {
        let h = Handoff::new(4);
        let (c, s) = ([198, 18, 1, 2], [198, 19, 0, 2]);
        let mut owners = [0usize; 4];
        for port in 0..2000u16 {
            let out = frame(c, s, 6, &tcp_ports(30000 + port, 80));
            let back = frame(s, c, 6, &tcp_ports(80, 30000 + port));
            let owner = h.owner(&out, usize::MAX);
            assert_eq!(h.owner(&back, usize::MAX), owner, "port {port}");
            // an ICMP error from a router on the way, quoting the client's packet
            let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&out[14..14 + 28]);
            let err = frame([198, 18, 200, 1], c, 1, &icmp);
            assert_eq!(
                h.owner(&err, usize::MAX),
                owner,
                "ICMP error about port {port}"
            );
            owners[owner] += 1;
        }
        assert!(
            owners.iter().all(|&n| n > 300),
            "flows spread over the workers: {owners:?}"
        );
    }

    #[test]
    fn frames_without_a_flow_stay_with_the_receiver() {
        let h = Handoff::new(4);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(h.owner(&arp, 3), 3);
        assert_eq!(h.owner(&[0u8; 5], 2), 2, "runt");
    }
}
