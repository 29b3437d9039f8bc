//! Hardware profiles: one RON file per appliance model.
//!
//! A profile says what the *hardware* of a model is and how the firmware uses it: which
//! ports DPDK drives (a PCI NIC function or a DPDK virtual device) and what each is for
//! (data, HA link, management); which CPU is the main lcore, which are workers and which
//! is the sync core; how much packet memory to set aside; whether polling cores spin or
//! back off when idle; and which disks and TPM count as health inputs in the election.
//! The per-site configuration (addresses, routes, rules) is a separate file, handled by
//! `mgmt`. Profiles ship in `hw-profiles/profiles/`: `t4100.ron` (appliance), `lab.ron`
//! (veth pairs, no hugepages), `bench.ron` (net_null/net_ring).
//!
//! # Format
//!
//! ```ron
//! (
//!     model: "lab",
//!     description: "Lab unit on veth pairs",
//!     ports: [
//!         // rx_desc, tx_desc (1024) and mtu (1500) have defaults.
//!         (name: "data0", role: Data, device: Vdev("net_af_packet0,iface=data0"),
//!          rx_queues: 1, tx_queues: 1),
//!         (name: "ha0", role: HaLink, device: Vdev("net_af_packet1,iface=ha0"),
//!          rx_queues: 1, tx_queues: 1, mtu: 9000),
//!     ],
//!     // Worker i polls rx queue i of every data port: queues == workers.len().
//!     cores: (main: 0, workers: [1], sync: None),
//!     memory: (mbufs: 8191, mbuf_cache: 256, eal_memory_mb: 64, hugepages: false, connections: 65536),
//!     idle: Adaptive(max_sleep_us: 100),   // or BusyPoll
//!     disks: [],                            // e.g. [(name: "sda", path: "/dev/sda")]
//!     tpm: false,
//! )
//! ```
//!
//! Unknown fields are refused, as is anything that would not work: a core used twice,
//! queues that do not match the workers, two ports on one device, a malformed PCI
//! address, a pool too small for the rings... Every refusal names the file, the line
//! and column, and the field:
//!
//! ```
//! # use hw_profiles::Profile;
//! let text = r#"(
//!     model: "x", description: "", ports: [],
//!     cores: (main: 0, workers: [0]),
//!     memory: (mbufs: 8191, mbuf_cache: 256, eal_memory_mb: 64, connections: 1024),
//!     idle: BusyPoll, disks: [], tpm: false,
//! )"#;
//! let err = Profile::from_str_named(text, "x.ron").unwrap_err();
//! assert_eq!(err.to_string(), "x.ron:3:32: cores.workers[0]: core 0 is already the main core");
//! ```
//!
//! [`Profile::load_for_host`] also checks the profile against the machine it runs on
//! (CPUs online, ports present), see [`host`]: `tandemd` boots with it.
//!
//! The runtime starts EAL with [`Profile::eal_args`] and finds each port's id from
//! [`Port::dpdk_name`] with `rte_eth_dev_get_port_by_name`.
//!
//! [`validate`] holds the checks a profile must pass. [`locate`] and [`diagnostic`] place
//! messages in any RON text and do not depend on the profile types; the unit configuration
//! uses them too.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diagnostic;
mod error;
pub mod host;
pub mod locate;
mod profile;
pub mod validate;

pub use error::ProfileError;
pub use profile::{Cores, Device, Disk, Idle, Memory, Port, Profile, Role, MAX_PROFILE_BYTES};
pub use validate::Invalid;
