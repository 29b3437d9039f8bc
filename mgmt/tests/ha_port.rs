//! [`HaPort`] against a real EAL: two HA ports back to back, first over a pair
//! of rings (`rte_eth_from_rings`, the second port's rx ring is the first's tx
//! ring and the other way round), then — as root — over a veth pair with
//! `net_af_packet`, promiscuous mode off, inside a fresh network namespace.
//!
//! DPDK initialises once per process, so this binary has exactly one test.

use std::process::Command;
use std::time::{Duration, Instant};

use dataplane::forward::Ipv4Prefix;
use dpdk_sys::ring_port::eth_from_rings;
use dpdk_sys::{eal, Eal, Mempool, Ring, SocketId};
use hw_profiles::{Device, Port as PortSpec, Role};
use mgmt::ha_link::{Addressing, DSCP_CS6};
use mgmt::ha_port::{stand_in_mac, HaPort, SendError};
use std::net::Ipv4Addr;

const SYNC_PORT: u16 = 7250;
const IP_A: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(169, 254, 77, 2);

/// EAL leaves a runtime directory per file prefix behind; removed on the way
/// out, also when the test fails.
struct RuntimeDir(std::path::PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec(name: &str, device: &str, mtu: u16) -> PortSpec {
    PortSpec {
        name: name.into(),
        role: Role::HaLink,
        device: Device::Vdev(device.into()),
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 256,
        tx_desc: 256,
        mtu,
    }
}

fn link(local: Ipv4Addr, peer: Ipv4Addr) -> Addressing {
    Addressing {
        address: Ipv4Prefix::new(local, 29).expect("/29"),
        peer,
        port: SYNC_PORT,
    }
}

struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Polls both ends until `done` or five seconds; returns the payloads each
/// received (`a`'s, `b`'s).
fn pump(
    a: &mut HaPort,
    b: &mut HaPort,
    clock: &Clock,
    mut done: impl FnMut(&HaPort, &HaPort, &[Vec<u8>], &[Vec<u8>]) -> bool,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(a, b, &at_a, &at_b) {
        assert!(Instant::now() < deadline, "timed out: {a:?} {b:?}");
        a.poll(clock.now(), &mut |p| at_a.push(p.to_vec()));
        b.poll(clock.now(), &mut |p| {
            at_b.push(p.to_vec());
            // The receiver may write the payload (decrypt in place).
            p.fill(0);
        });
        std::thread::sleep(Duration::from_micros(200));
    }
    (at_a, at_b)
}

/// Resolution, then payloads both ways, the MTU's limit, counters, close.
fn back_to_back(mut a: HaPort, mut b: HaPort, pool: &Mempool) {
    let clock = Clock(Instant::now());
    assert!(a.link_up() && b.link_up(), "carrier");
    assert_ne!(a.link().local_mac(), b.link().local_mac());
    assert_eq!(a.send(clock.now(), b"early"), Err(SendError::NotResolved));
    assert_eq!(a.link().stats().not_resolved, 1);

    let resolved = |a: &HaPort, b: &HaPort, _: &[Vec<u8>], _: &[Vec<u8>]| {
        a.link().peer_mac().is_some() && b.link().peer_mac().is_some()
    };
    let (none_a, none_b) = pump(&mut a, &mut b, &clock, resolved);
    assert!(none_a.is_empty() && none_b.is_empty());
    assert_eq!(a.link().peer_mac(), Some(b.link().local_mac()));
    assert_eq!(b.link().peer_mac(), Some(a.link().local_mac()));

    let max = a.max_payload();
    let payloads: Vec<Vec<u8>> = [0, 1, 100, 1000, max]
        .into_iter()
        .map(|len| (0..len).map(|i| (i % 253).to_le_bytes()[0]).collect())
        .collect();
    for p in &payloads {
        a.send(clock.now(), p).expect("a sends");
        b.send(clock.now(), p).expect("b sends");
    }
    let n = payloads.len();
    let all = |_: &HaPort, _: &HaPort, at_a: &[Vec<u8>], at_b: &[Vec<u8>]| {
        at_a.len() >= n && at_b.len() >= n
    };
    let (at_a, at_b) = pump(&mut a, &mut b, &clock, all);
    assert_eq!(at_a, payloads, "b → a, in order, byte for byte");
    assert_eq!(at_b, payloads, "a → b, in order, byte for byte");

    let too_long = vec![0u8; max + 1];
    assert_eq!(a.send(clock.now(), &too_long), Err(SendError::TooLong));

    let (s, l) = (a.stats(), a.link().stats());
    assert_eq!((l.tx_payloads, l.rx_payloads), (5, 5));
    assert_eq!((s.too_long, s.tx_full, s.no_mbuf), (1, 0, 0));
    assert!(s.tx_frames >= 6, "5 datagrams and at least one ARP frame");
    assert!(s.rx_frames >= 6);
    let mut out = Vec::new();
    a.counters(&mut out);
    let name = a.name().to_owned();
    let get = |n: &str| {
        let full = format!("ha.{name}.{n}");
        out.iter().find(|(k, _)| *k == full).map(|(_, v)| *v)
    };
    assert_eq!(get("tx_payloads"), Some(5));
    assert_eq!(get("too_long"), Some(1));
    assert_eq!(get("not_resolved"), Some(1));
    assert_eq!(get("bad_ttl"), Some(0));

    a.close().expect("close a");
    b.close().expect("close b");
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}

fn rings(pool: &Mempool) {
    let ab = Ring::new("ha_test_ab", 256, SocketId::ANY).unwrap();
    let ba = Ring::new("ha_test_ba", 256, SocketId::ANY).unwrap();
    // rte_eth_from_rings names the device `net_ring_<name>`.
    let id_a = eth_from_rings(
        "ha_a",
        std::slice::from_ref(&ba),
        std::slice::from_ref(&ab),
        SocketId::ANY,
    )
    .unwrap();
    let id_b = eth_from_rings("ha_b", &[ab], &[ba], SocketId::ANY).unwrap();
    assert_eq!(id_a.name().unwrap(), "net_ring_ha_a");
    assert_eq!(id_b.name().unwrap(), "net_ring_ha_b");
    refusals(pool);
    // A jumbo MTU in the profile: lowered to what one mbuf holds.
    let a = HaPort::start(
        "ha0",
        &spec("ha0", "net_ring_ha_a", 9000),
        &link(IP_A, IP_B),
        pool,
    )
    .expect("start a");
    let b = HaPort::start(
        "ha0",
        &spec("ha0", "net_ring_ha_b", 9000),
        &link(IP_B, IP_A),
        pool,
    )
    .expect("start b");
    // Ring ports have no MAC: stand-ins.
    assert_eq!(a.link().local_mac(), stand_in_mac(id_a));
    assert_eq!(b.link().local_mac(), stand_in_mac(id_b));
    let room = usize::from(Mempool::DEFAULT_DATA_ROOM) - 128 - 14;
    assert_eq!(usize::from(a.mtu()), room);
    assert_eq!(a.max_payload(), room - 28);
    back_to_back(a, b, pool);
}

/// Refusals before the device is touched: the device stays free to start.
fn refusals(pool: &Mempool) {
    let mut data = spec("data0", "net_ring_ha_a", 1500);
    data.role = Role::Data;
    let e = HaPort::start("ha0", &data, &link(IP_A, IP_B), pool).unwrap_err();
    assert!(e.to_string().contains("not an HA link port"), "{e}");
    let e = HaPort::start(
        "ha0",
        &spec("ha0", "nowhere", 1500),
        &link(IP_A, IP_B),
        pool,
    )
    .unwrap_err();
    assert!(e.to_string().contains("find the device"), "{e}");
    let far = Ipv4Addr::new(10, 0, 0, 2);
    let e = HaPort::start(
        "ha0",
        &spec("ha0", "net_ring_ha_a", 1500),
        &link(IP_A, far),
        pool,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "HA link ha0: partner 10.0.0.2 is not a host of the subnet of 169.254.77.1/29"
    );
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace with a veth pair `thA`–`thB`, deleted on drop.
struct Netns(String);

impl Netns {
    fn create(name: String) -> Option<Netns> {
        let ok = ip(&["netns", "add", &name]);
        let ns = Netns(name);
        let n = ns.0.as_str();
        (ok && ip(&[
            "-n", n, "link", "add", "thA", "type", "veth", "peer", "name", "thB",
        ]) && ip(&["-n", n, "link", "set", "thA", "up"])
            && ip(&["-n", n, "link", "set", "thB", "up"]))
        .then_some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.0]);
    }
}

/// This thread inside a namespace; back where it was on drop.
struct Inside(std::fs::File);

impl Inside {
    fn enter(ns: &Netns) -> Inside {
        use nix::sched::{setns, CloneFlags};
        let home = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let target = std::fs::File::open(format!("/run/netns/{}", ns.0)).unwrap();
        setns(&target, CloneFlags::CLONE_NEWNET).expect("setns");
        Inside(home)
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = nix::sched::setns(&self.0, nix::sched::CloneFlags::CLONE_NEWNET);
    }
}

/// `net_af_packet` with promiscuous mode off: the kernel's veth MACs are the
/// ports' MACs, and unicast to them plus broadcast ARP is all the link needs.
fn af_packet_veth(pool: &Mempool) {
    let Some(ns) = Netns::create(format!("mgmt-ha-{}", std::process::id())) else {
        eprintln!("SKIPPED net_af_packet: cannot create a network namespace (not root?)");
        return;
    };
    // af_packet resolves its interface, and reads the carrier, in the calling
    // thread's namespace.
    let inside = Inside::enter(&ns);
    eal::hotplug_add("vdev", "net_af_packet_ha_a", "iface=thA").expect("af_packet a");
    eal::hotplug_add("vdev", "net_af_packet_ha_b", "iface=thB").expect("af_packet b");
    let a = HaPort::start(
        "ha0",
        &spec("ha0", "net_af_packet_ha_a,iface=thA", 1500),
        &link(IP_A, IP_B),
        pool,
    )
    .expect("start a");
    let b = HaPort::start(
        "ha0",
        &spec("ha0", "net_af_packet_ha_b,iface=thB", 1500),
        &link(IP_B, IP_A),
        pool,
    )
    .expect("start b");
    assert_eq!(a.max_payload(), 1472);
    back_to_back(a, b, pool);
    for name in ["net_af_packet_ha_a", "net_af_packet_ha_b"] {
        eal::hotplug_remove("vdev", name).unwrap_or_else(|e| panic!("remove {name}: {e}"));
    }
    drop(inside);
    drop(ns);
}

#[test]
fn ha_ports_back_to_back() {
    let prefix_name = format!("mgmt-haport-{}", std::process::id());
    let _runtime = RuntimeDir(std::path::Path::new("/var/run/dpdk").join(&prefix_name));
    let prefix = format!("--file-prefix={prefix_name}");
    let args = [
        "--no-huge",
        "--no-shconf",
        "-m",
        "64",
        "--no-pci",
        "-l",
        "0",
        prefix.as_str(),
    ];
    let eal = Eal::init(&args).expect("EAL init");
    let pool = Mempool::new(
        "ha_test_pool",
        2047,
        32,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .expect("mempool");
    assert_eq!(DSCP_CS6, 48);

    rings(&pool);
    af_packet_veth(&pool);

    assert_eq!(pool.in_use(), 0, "mbuf leak");
    drop(pool);
    eal.cleanup().expect("EAL cleanup");
}
