//! The lab's addressing plan and the unit configuration written from it.
//!
//! ```text
//!  ┌─ client ns ──────┐        ┌──────────── unit ns ─────────────┐        ┌─ server ns ───────┐
//!  │ eth0 198.18.1.2  ├─ veth ─┤ data0 (198.18.1.1, VIP .1.254)   │        │                   │
//!  │ default via      │        │          tandemd (DPDK af_packet)│        │ lo   198.19.0.1   │
//!  │   198.18.1.254   │        │ data1 (198.18.2.1, VIP .2.254)   ├─ veth ─┤ eth0 198.18.2.2   │
//!  └──────────────────┘        │ ha0, ha1 (HA links, peers down)  │        │ default via       │
//!                              └──────────────────────────────────┘        │   198.18.2.254    │
//!                                                                           └───────────────────┘
//! ```
//!
//! Addresses come from the benchmarking range 198.18.0.0/15 (RFC 2544) and
//! exist only inside the lab's namespaces. The unit's addresses are owned by
//! `tandemd` (through DPDK): Linux in the unit namespace has none.

/// The client's address (`eth0` in the client namespace).
pub const CLIENT_IP: &str = "198.18.1.2";
/// The server's address (`eth0` in the server namespace).
pub const SERVER_IP: &str = "198.18.2.2";
/// The unit's own address on `data0` (client side).
pub const UNIT_DATA0_IP: &str = "198.18.1.1";
/// The unit's own address on `data1` (server side).
pub const UNIT_DATA1_IP: &str = "198.18.2.1";
/// The virtual IP on `data0`: the client's default gateway.
pub const VIP0: &str = "198.18.1.254";
/// The virtual IP on `data1`: the server's default gateway.
pub const VIP1: &str = "198.18.2.254";
/// The virtual MAC answering for [`VIP0`].
pub const VMAC0: &str = "02:00:5e:10:00:01";
/// The virtual MAC answering for [`VIP1`].
pub const VMAC1: &str = "02:00:5e:10:00:02";
/// Prefix length of both connected networks.
pub const PREFIX_LEN: u8 = 24;
/// The static route the unit is configured with ...
pub const STATIC_PREFIX: &str = "198.19.0.0/16";
/// ... its next hop (the server) ...
pub const STATIC_VIA: &str = SERVER_IP;
/// ... and an address behind it (on the server's `lo`).
pub const STATIC_TARGET: &str = "198.19.0.1";
/// An address in the lab range for which the unit has no route.
pub const UNROUTED_IP: &str = "198.18.200.1";

/// The unit's data ports, as the lab profile names them (the Linux names of
/// the veth ends that `net_af_packet` attaches to).
pub const DATA_PORTS: [&str; 2] = ["data0", "data1"];
/// The unit's main HA link interface.
pub const HA_PORT: &str = "ha0";
/// The unit's backup HA link interface.
pub const HA_BACKUP_PORT: &str = "ha1";
/// Both HA link interfaces, main first, as the lab profiles name them. Each
/// must exist when the unit boots (EAL's `net_af_packet` opens every port of
/// the profile), even in a one-unit lab where nothing is at the other end.
pub const HA_PORTS: [&str; 2] = [HA_PORT, HA_BACKUP_PORT];

/// The two-unit lab ([`crate::pair`]): unit A is the one-unit lab's unit
/// (its data addresses are [`UNIT_DATA0_IP`] and [`UNIT_DATA1_IP`]), unit B
/// has addresses of its own on the same networks; both answer for the same
/// virtual IPs and MACs, as an HA pair does.
///
/// ```text
///  client ─ A data0    A ha0 ─ a-ha0 ═ br-ha0 ═ b-ha0 ─ B ha0    B data0 (dead end)
///  server ─ A data1    A ha1 ─ a-ha1 ═ br-ha1 ═ b-ha1 ─ B ha1    B data1 (dead end)
///                            └──────── hamid namespace ───────┘
/// ```
pub mod pair {
    /// Unit A's serial.
    pub const SERIAL_A: &str = "TNDM-LAB-A";
    /// Unit B's serial.
    pub const SERIAL_B: &str = "TNDM-LAB-B";
    /// Unit B's own address on `data0`.
    pub const UNIT_B_DATA0_IP: &str = "198.18.1.3";
    /// Unit B's own address on `data1`.
    pub const UNIT_B_DATA1_IP: &str = "198.18.2.3";
    /// Prefix length of the HA link subnets.
    pub const HA_PREFIX_LEN: u8 = 30;
    /// Per HA link (main, backup): unit A's address, unit B's address.
    pub const HA_LINKS: [(&str, &str); 2] = [
        ("198.18.254.1", "198.18.254.2"),
        ("198.18.254.5", "198.18.254.6"),
    ];
    /// The sync protocol's UDP port (the configuration's default).
    pub const SYNC_PORT: u16 = 8421;
}

/// The unit configuration (RON) for this plan.
pub fn unit_config() -> String {
    format!(
        r#"(
    interfaces: [
        (port: "data0", address: "{UNIT_DATA0_IP}/{PREFIX_LEN}", virtual_ip: Some("{VIP0}"), virtual_mac: Some("{VMAC0}")),
        (port: "data1", address: "{UNIT_DATA1_IP}/{PREFIX_LEN}", virtual_ip: Some("{VIP1}"), virtual_mac: Some("{VMAC1}")),
    ],
    routes: [
        (prefix: "{STATIC_PREFIX}", via: "{STATIC_VIA}"),
    ],
)
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_the_documented_one() {
        assert_eq!(
            unit_config(),
            r#"(
    interfaces: [
        (port: "data0", address: "198.18.1.1/24", virtual_ip: Some("198.18.1.254"), virtual_mac: Some("02:00:5e:10:00:01")),
        (port: "data1", address: "198.18.2.1/24", virtual_ip: Some("198.18.2.254"), virtual_mac: Some("02:00:5e:10:00:02")),
    ],
    routes: [
        (prefix: "198.19.0.0/16", via: "198.18.2.2"),
    ],
)
"#
        );
    }
}
