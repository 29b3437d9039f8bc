//! Routed forwarding: the unit as an IPv4 router between its data interfaces.
//!
//! Each data interface has its own address and, optionally, a virtual IP and
//! virtual MAC that belong to the cluster (the active unit of the pair owns
//! them). The router answers ARP for its addresses, resolves next hops with
//! ARP, decrements TTL with an incremental checksum update, answers ICMP echo
//! to its own addresses, sends ICMP time-exceeded and unreachable where a
//! router should (RFC 1812), fragments datagrams over the egress MTU that do
//! not set DF (RFC 791 §3.2; with DF, ICMP fragmentation needed), and forwards
//! by longest-prefix match over the connected and static routes.
//!
//! * [`router`]: what happens to one received frame.
//! * [`route`]: the routing table (longest-prefix match, a DIR-16-8-8 trie).
//! * [`neighbor`]: the ARP cache and the frames held while a next hop resolves.
//! * [`prefix`]: IPv4 prefixes as configured (`198.18.1.0/24`).
//! * [`token_bucket`]: the rate limit of the ICMP errors the router sends.

mod addr_hash;
mod fragment;
pub mod neighbor;
pub mod prefix;
pub mod route;
pub mod router;
pub mod token_bucket;

pub use prefix::Ipv4Prefix;
pub use route::{IfIndex, Route, RouteTable};
pub use router::{BufPool, PacketBuf, ReconfigureError, Router};

use crate::wire::EthernetAddress;
use std::net::Ipv4Addr;

/// One data interface as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// The profile's port name (`data0`).
    pub port: String,
    /// The interface's own address and subnet (`198.18.1.1/24`).
    pub address: Ipv4Prefix,
    /// The cluster's virtual IP on this subnet, answered with `virtual_mac`.
    pub virtual_ip: Option<Ipv4Addr>,
    /// The cluster's virtual MAC; forwarded frames leave from it, so the
    /// switches' tables follow it to whichever unit is active.
    pub virtual_mac: Option<EthernetAddress>,
}

/// A static route: `prefix` is reached through the neighbour `via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination prefix.
    pub prefix: Ipv4Prefix,
    /// Gateway, on one of the connected subnets.
    pub via: Ipv4Addr,
}

/// What the router is told at boot (validated by the config loader); a
/// running router takes a new one's shared part with `Router::reconfigure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterConfig {
    /// Data interfaces, in port order.
    pub interfaces: Vec<InterfaceConfig>,
    /// Static routes.
    pub routes: Vec<StaticRoute>,
}

impl RouterConfig {
    /// The routing table: a connected route per interface, then the static
    /// routes, each through the interface whose subnet holds its gateway.
    /// Returns the index of the first static route whose gateway is on no
    /// connected subnet as the error.
    pub fn route_table(&self) -> Result<RouteTable, usize> {
        let connected = self.interfaces.iter().enumerate().map(|(iface, ifc)| {
            let route = Route {
                iface,
                gateway: None,
            };
            Ok((ifc.address, route))
        });
        let routes = self.routes.iter().enumerate().map(|(i, r)| {
            let iface = self
                .interfaces
                .iter()
                .position(|ifc| ifc.address.contains(r.via))
                .ok_or(i)?;
            let route = Route {
                iface,
                gateway: Some(r.via),
            };
            Ok((r.prefix, route))
        });
        let all: Result<Vec<_>, usize> = connected.chain(routes).collect();
        Ok(RouteTable::from_routes(all?))
    }
}

#[cfg(test)]
mod router_tests;
