//! veth pairs between namespaces, with the offloads that break DPDK turned off.
//!
//! A pair is created directly between two namespaces
//! (`ip -n A link add X type veth peer name Y netns B`), so neither name ever
//! exists in the root namespace and labs using the same names run side by
//! side.
//!
//! Offloads: on veth, the kernel hands packet sockets GSO super-frames (up to
//! 64 KB "packets") and frames whose TCP/UDP checksum is only partially filled
//! in (`CHECKSUM_PARTIAL`), trusting the receiving stack to finish the job.
//! DPDK's `net_af_packet` passes them on as they are, so a DPDK router would
//! forward oversized or broken packets. Turning off tx/rx checksumming,
//! TSO/GSO/GRO (and LRO where it exists) on *both* ends of every pair makes
//! the kernel put only complete, MTU-sized frames on the wire.

use crate::error::Result;
use crate::netns::Netns;

/// Creates a veth pair: `a_if` in `a`, `b_if` in `b`, offloads off on both
/// ends, both up. `a` and `b` may be the same namespace.
pub fn pair(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    disable_offloads(a, a_if)?;
    disable_offloads(b, b_if)?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// Turns off every offload that makes frames differ from what goes on a real
/// wire (see the module docs). Features an interface does not have are
/// skipped.
pub fn disable_offloads(ns: &Netns, ifname: &str) -> Result<()> {
    ns.exec_ok([
        "ethtool", "-K", ifname, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off",
    ])?;
    // Best effort: LRO (fixed off on veth), VLAN tag offloads (which would
    // move tags out of the frame into metadata).
    for feature in ["lro", "rxvlan", "txvlan"] {
        let _ = ns.exec(["ethtool", "-K", ifname, feature, "off"]);
    }
    Ok(())
}
