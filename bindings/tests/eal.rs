//! The safe layer against a real EAL.
//!
//! DPDK can be initialised once per process (also not again after cleanup), so this test
//! binary has exactly one `#[test]`, running the steps below in order on one EAL:
//! lcores, mbuf editing, net_ring loopback byte for byte, net_null with several queues,
//! a ring-backed port, the `Ring` wrapper, vdev hotplug, `net_af_packet` on a veth pair
//! and `net_tap` inside a fresh network namespace (root only), a closure on lcore 1, no
//! mbuf leak, port close, EAL cleanup.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use dpdk_sys::error::errno;
use dpdk_sys::ring_port::eth_from_rings;
use dpdk_sys::{
    eal, lcore, port, Burst, Eal, Mbuf, Mempool, Port, PortConfig, PortId, Ring, RssConfig,
    SocketId,
};

/// IEEE "local experimental" ethertype: nothing else on a veth sends it.
const ETHERTYPE_TEST: [u8; 2] = [0x88, 0xb5];

/// A recognisable frame: broadcast dst, locally administered src, test ethertype, then
/// `seq` and a pattern derived from it.
fn frame(seq: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&ETHERTYPE_TEST);
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push(f.len().to_le_bytes()[0].wrapping_mul(31) ^ seq.to_le_bytes()[0]);
    }
    f
}

fn mbuf_with(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("pool has room");
    m.append(bytes.len())
        .expect("tailroom")
        .copy_from_slice(bytes);
    m
}

/// EAL leaves an (empty, with `--no-shconf`) runtime directory per file prefix behind,
/// even after cleanup; remove ours on the way out, also when the test fails.
struct RuntimeDir(std::path::PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn dpdk_end_to_end() {
    let prefix_name = format!("dpdksys-test-{}", std::process::id());
    let _runtime_dir = RuntimeDir(std::path::Path::new("/var/run/dpdk").join(&prefix_name));
    let prefix = format!("--file-prefix={prefix_name}");
    let args = [
        "--no-huge",
        "--no-shconf",
        "-m",
        "64",
        "--no-pci",
        "-l",
        "0-1",
        &prefix,
        "--vdev=net_null0",
        "--vdev=net_ring0",
    ];
    let eal = Eal::init(&args).expect("EAL init");
    assert!(eal::is_running());
    assert_eq!(
        Eal::init(&args).unwrap_err().errno,
        errno::EALREADY,
        "second init is refused"
    );
    eprintln!(
        "{} (bindings from {})",
        Eal::version(),
        dpdk_sys::DPDK_VERSION
    );

    lcores();
    let pool = Mempool::new(
        "test_pool",
        2047,
        32,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .expect("mempool");
    assert_eq!(pool.available(), 2047);
    assert_eq!(pool.in_use(), 0);

    mbuf_editing(&pool);
    ring_vdev_loopback(&pool);
    null_multi_queue(&pool);
    ring_wrapper_and_ring_port(&pool);
    hotplug(&pool);
    namespace_pmds(&pool);
    launch_on_worker(&pool);

    // Every burst, port and ring is gone: every mbuf must be back.
    assert_eq!(pool.in_use(), 0, "mbuf leak");
    assert_eq!(pool.available(), pool.capacity());
    drop(pool);

    eal.cleanup().expect("EAL cleanup");
    assert!(!eal::is_running());
    assert_eq!(
        Eal::init(&args).unwrap_err().errno,
        errno::EALREADY,
        "no init after cleanup"
    );
}

fn lcores() {
    assert_eq!(lcore::main(), lcore::LcoreId(0));
    assert_eq!(
        lcore::current(),
        Some(lcore::LcoreId(0)),
        "the init thread is the main lcore"
    );
    assert_eq!(lcore::count(), 2);
    assert_eq!(
        lcore::workers().collect::<Vec<_>>(),
        vec![lcore::LcoreId(1)]
    );
    let t = std::thread::spawn(lcore::current).join().unwrap();
    assert_eq!(t, None, "a thread spawned later is not an lcore");
    assert!(lcore::tsc_hz() > 0);
    let t0 = lcore::tsc();
    lcore::pause();
    assert!(lcore::tsc() > t0);
}

fn mbuf_editing(pool: &Mempool) {
    let mut m = pool.alloc().unwrap();
    assert_eq!(pool.in_use(), 1);
    assert!(m.is_empty());
    assert!(m.is_contiguous());
    assert_eq!(m.nb_segs(), 1);
    assert_eq!(m.headroom(), 128);
    assert_eq!(m.tailroom(), 2048);

    m.append(100).unwrap().copy_from_slice(&[0xaa; 100]);
    assert_eq!((m.len(), m.data_len(), m.tailroom()), (100, 100, 1948));
    m.prepend(14).unwrap().copy_from_slice(&[0x11; 14]);
    assert_eq!((m.len(), m.headroom()), (114, 114));
    assert_eq!(&m.data()[..14], &[0x11; 14]);
    assert_eq!(&m.data()[14..], &[0xaa; 100]);

    m.data_mut()[14] = 0x55;
    assert!(m.adj(14), "strip the 'header'");
    assert_eq!(m.data()[0], 0x55);
    assert!(m.trim(50));
    assert_eq!(m.len(), 50);
    assert_eq!(&m.data()[1..], &[0xaa; 49]);

    // Refusals leave the mbuf unchanged.
    assert!(!m.adj(51));
    assert!(!m.trim(51));
    assert!(m.prepend(m.headroom() + 1).is_none());
    assert!(m.append(m.tailroom() + 1).is_none());
    assert!(m.append(70_000).is_none());
    assert_eq!(m.len(), 50);
    assert_eq!(m.rss_hash(), None);

    // Raw round trip.
    let raw = m.into_raw();
    // SAFETY: `raw` came from into_raw just above: a valid, owned, direct mbuf.
    let m = unsafe { Mbuf::from_raw(raw) }.unwrap();
    assert_eq!(m.len(), 50);
    drop(m);
    assert_eq!(pool.in_use(), 0);

    // Bulk alloc and Burst bookkeeping.
    let mut b = Burst::with_limit(32);
    assert!(pool.alloc_bulk(&mut b, 20));
    assert_eq!((b.len(), b.spare()), (20, 12));
    assert!(!pool.alloc_bulk(&mut b, 13), "more than the spare room");
    assert_eq!(b.len(), 20);
    let first = b.pop().unwrap();
    assert_eq!(b.len(), 19);
    b.push(first).unwrap();
    while !b.is_full() {
        b.push(pool.alloc().unwrap()).unwrap();
    }
    let extra = pool.alloc().unwrap();
    let extra = b.push(extra).unwrap_err();
    drop(extra);
    assert_eq!(pool.in_use(), 32);
    for m in b.iter_mut() {
        m.append(1).unwrap()[0] = 7;
    }
    assert!(b.iter().all(|m| m.data() == [7]));
    let taken: Vec<Mbuf> = b.drain().take(5).collect();
    assert!(b.is_empty(), "a dropped Drain frees the rest");
    assert_eq!(pool.in_use(), 5);
    drop(taken);
    assert!(pool.alloc_bulk(&mut b, 3));
    let n = b.into_iter().take(1).count();
    assert_eq!(n, 1);
    assert_eq!(pool.in_use(), 0, "IntoIter frees what it did not yield");
}

fn ring_vdev_loopback(pool: &Mempool) {
    let id = PortId::by_name("net_ring0").expect("net_ring0 from --vdev");
    let info = id.info().unwrap();
    assert_eq!(info.driver_name, "net_ring");
    eprintln!("net_ring0: {info:?}");

    let too_many = PortConfig {
        rx_queues: info.max_rx_queues + 1,
        ..PortConfig::default()
    };
    assert_eq!(
        Port::configure(id, &too_many, pool).unwrap_err().errno,
        errno::EINVAL,
        "never clamped"
    );

    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rss: Some(RssConfig::symmetric()),
        promiscuous: true,
        ..PortConfig::default()
    };
    let port = Port::configure(id, &cfg, pool).expect("configure net_ring0");
    assert_eq!(
        Port::configure(id, &cfg, pool).unwrap_err().errno,
        errno::EBUSY,
        "one owner per port"
    );
    assert_eq!(port.rss_hf(), 0, "net_ring has no RSS");

    let mut rxq = port.rx_queue(1).unwrap();
    let mut txq = port.tx_queue(1).unwrap();
    assert!(port.rx_queue(1).is_none(), "a queue is handed out once");
    assert!(port.rx_queue(2).is_none(), "out of range");

    // Not started: bursts do nothing, packets stay with the caller.
    let mut tx = Burst::new();
    tx.push(mbuf_with(pool, &frame(0, 60))).unwrap();
    assert_eq!(txq.tx_burst(&mut tx), 0);
    assert_eq!(tx.len(), 1);
    tx.clear();

    port.start().unwrap();
    assert!(port.link_up());
    assert_eq!(
        port.stop().unwrap_err().errno,
        errno::EBUSY,
        "queues are out"
    );

    let sent: Vec<Vec<u8>> = (0..40u16)
        .map(|i| frame(i, 60 + usize::from(i) * 10))
        .collect();
    let mut tx = Burst::new();
    for f in &sent {
        tx.push(mbuf_with(pool, f)).unwrap();
    }
    assert_eq!(txq.tx_burst(&mut tx), 40);
    assert!(tx.is_empty());

    // Loopback: tx queue 1 feeds rx queue 1. Read it in two bursts of at most 32.
    let mut rx = Burst::with_limit(32);
    assert_eq!(rxq.rx_burst(&mut rx), 32);
    assert_eq!(rxq.rx_burst(&mut rx), 0, "burst is full");
    let mut got: Vec<Vec<u8>> = rx.drain().map(|m| m.data().to_vec()).collect();
    assert_eq!(rxq.rx_burst(&mut rx), 8);
    for m in rx.iter() {
        assert!(m.is_contiguous());
    }
    got.extend(rx.drain().map(|m| m.data().to_vec()));
    assert_eq!(got, sent, "byte for byte, in order");

    let s = port.stats().unwrap();
    assert_eq!((s.ipackets, s.opackets), (40, 40));
    assert_eq!(pool.in_use(), 0);

    drop((rxq, txq));
    port.stop().unwrap();
    port.close().unwrap();
    assert!(
        PortId::by_name("net_ring0").is_err(),
        "close releases a vdev port"
    );
}

fn null_multi_queue(pool: &Mempool) {
    let id = PortId::by_name("net_null0").unwrap();
    let info = id.info().unwrap();
    eprintln!("net_null0: {info:?}");
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rss: Some(RssConfig::symmetric()),
        ..PortConfig::default()
    };
    let port = Port::configure(id, &cfg, pool).expect("configure net_null0 with 2 queues");
    eprintln!("net_null0 rss_hf = {:#x}", port.rss_hf());
    assert_eq!(
        port.rss_hf(),
        RssConfig::symmetric().hash_functions() & info.flow_type_rss_offloads
    );
    port.start().unwrap();

    let mut queues: Vec<_> = (0..2)
        .map(|q| (port.rx_queue(q).unwrap(), port.tx_queue(q).unwrap()))
        .collect();
    let mut b = Burst::new();
    for (rxq, txq) in &mut queues {
        assert_eq!(rxq.rx_burst(&mut b), 64, "net_null always has packets");
        assert!(b.iter().all(|m| m.len() == 64 && m.port() == id));
        assert_eq!(txq.tx_burst(&mut b), 64, "net_null takes everything");
    }
    assert_eq!(pool.in_use(), 0);
    drop(queues);
    drop(port); // Drop stops and closes.
    assert!(!id.is_valid());
}

fn ring_wrapper_and_ring_port(pool: &Mempool) {
    let r = Ring::new("test_ring", 100, SocketId::ANY).unwrap();
    let mut b = Burst::new();
    assert!(pool.alloc_bulk(&mut b, 64));
    assert_eq!(r.enqueue_burst(&mut b), 64);
    assert!(pool.alloc_bulk(&mut b, 64));
    assert_eq!(r.enqueue_burst(&mut b), 36, "exact size: 100");
    assert_eq!(b.len(), 28);
    assert_eq!(r.count(), 100);
    b.clear();
    assert_eq!(r.dequeue_burst(&mut b), 64);
    b.clear();
    drop(r); // frees the 36 left inside
    assert_eq!(pool.in_use(), 0);

    // A port made of two rings: tx → ring_tx, ring_rx → rx.
    let ring_rx = Ring::new("test_port_rx", 256, SocketId::ANY).unwrap();
    let ring_tx = Ring::new("test_port_tx", 256, SocketId::ANY).unwrap();
    let id = eth_from_rings(
        "test_ringport",
        std::slice::from_ref(&ring_rx),
        std::slice::from_ref(&ring_tx),
        SocketId::ANY,
    )
    .unwrap();
    let port = Port::configure(id, &PortConfig::default(), pool).unwrap();
    port.start().unwrap();
    let (mut rxq, mut txq) = (port.rx_queue(0).unwrap(), port.tx_queue(0).unwrap());

    let mut b = Burst::new();
    b.push(mbuf_with(pool, &frame(7, 64))).unwrap();
    assert_eq!(txq.tx_burst(&mut b), 1);
    assert_eq!(ring_tx.dequeue_burst(&mut b), 1, "tx lands in the tx ring");
    assert_eq!(b.as_slice()[0].data(), frame(7, 64).as_slice());
    assert_eq!(ring_rx.enqueue_burst(&mut b), 1, "inject into the rx ring");
    assert_eq!(rxq.rx_burst(&mut b), 1);
    assert_eq!(b.pop().unwrap().data(), frame(7, 64).as_slice());

    // Leave one packet in the rx ring: closing the port must free it with the rings.
    b.push(mbuf_with(pool, &frame(8, 64))).unwrap();
    assert_eq!(ring_rx.enqueue_burst(&mut b), 1);
    drop((rxq, txq, ring_rx, ring_tx));
    assert_eq!(pool.in_use(), 1);
    port.close().unwrap();
    assert_eq!(pool.in_use(), 0, "rings released with the port");
}

fn hotplug(pool: &Mempool) {
    eal::hotplug_add("vdev", "net_null_hp0", "size=128").expect("hotplug net_null");
    let id = PortId::by_name("net_null_hp0").unwrap();
    let port = Port::configure(id, &PortConfig::default(), pool).unwrap();
    assert_eq!(
        eal::hotplug_remove("vdev", "net_null_hp0")
            .unwrap_err()
            .errno,
        errno::EBUSY
    );
    port.start().unwrap();
    let mut q = port.rx_queue(0).unwrap();
    let mut b = Burst::with_limit(4);
    assert_eq!(q.rx_burst(&mut b), 4);
    assert!(
        b.iter().all(|m| m.len() == 128),
        "devargs reached the driver"
    );
    drop((b, q));
    port.close().unwrap();
    eal::hotplug_remove("vdev", "net_null_hp0").expect("hotplug remove");
    assert!(PortId::by_name("net_null_hp0").is_err());
}

/// A network namespace with a veth pair, deleted on drop (also when the test fails).
struct Netns {
    name: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    fn create(name: String) -> Option<Netns> {
        let ns = Netns { name };
        let n = ns.name.as_str();
        (ip(&["netns", "add", n])
            && ip(&[
                "-n", n, "link", "add", "tdA", "type", "veth", "peer", "name", "tdB",
            ])
            && ip(&["-n", n, "link", "set", "tdA", "up"])
            && ip(&["-n", n, "link", "set", "tdB", "up"]))
        .then_some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.name]);
    }
}

extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}
const CLONE_NEWNET: i32 = 0x4000_0000;

/// Moves the calling thread into a network namespace; back to the original on drop.
struct InNetns {
    home: std::fs::File,
}

impl InNetns {
    fn enter(ns: &Netns) -> InNetns {
        let home = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let target = std::fs::File::open(format!("/run/netns/{}", ns.name)).unwrap();
        // SAFETY: setns with a valid namespace fd only changes this thread's namespace.
        let r = unsafe { setns(target.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(r, 0, "setns into {}", ns.name);
        InNetns { home }
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // SAFETY: as above, back to the namespace we came from.
        unsafe { setns(self.home.as_raw_fd(), CLONE_NEWNET) };
    }
}

/// `net_af_packet` on a veth pair and `net_tap`, inside a fresh namespace: proves these
/// PMDs are found at run time and move real frames through the kernel.
fn namespace_pmds(pool: &Mempool) {
    let Some(ns) = Netns::create(format!("dpdksys-{}", std::process::id())) else {
        eprintln!("SKIPPED af_packet/tap: cannot create a network namespace (not root?)");
        return;
    };
    // af_packet and tap resolve interface names (at probe, and in ioctl-based control
    // calls such as promiscuous mode) in the calling thread's namespace: stay inside.
    let _inside = InNetns::enter(&ns);
    eal::hotplug_add("vdev", "net_af_packet_a", "iface=tdA").expect("net_af_packet is loadable");
    eal::hotplug_add("vdev", "net_af_packet_b", "iface=tdB").expect("second af_packet");
    eal::hotplug_add("vdev", "net_tap_t", "iface=tdtap0").expect("net_tap is loadable");
    assert!(
        ip(&["-n", &ns.name, "link", "show", "tdtap0"]),
        "tap interface created inside the namespace"
    );

    let a = Port::configure(
        PortId::by_name("net_af_packet_a").unwrap(),
        &PortConfig::default(),
        pool,
    )
    .unwrap();
    let b = Port::configure(
        PortId::by_name("net_af_packet_b").unwrap(),
        &PortConfig {
            promiscuous: true,
            ..PortConfig::default()
        },
        pool,
    )
    .unwrap();
    assert_eq!(a.info().driver_name, "net_af_packet");
    a.start().unwrap();
    b.start().unwrap();
    let mut txq = a.tx_queue(0).unwrap();
    let mut rxq = b.rx_queue(0).unwrap();

    let sent: Vec<Vec<u8>> = (0..16u16)
        .map(|i| frame(i, 60 + usize::from(i) * 50))
        .collect();
    let mut tx = Burst::new();
    for f in &sent {
        tx.push(mbuf_with(pool, f)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tx.is_empty() && Instant::now() < deadline {
        txq.tx_burst(&mut tx);
    }
    assert!(tx.is_empty(), "af_packet took the frames");

    let mut got = Vec::new();
    let mut rx = Burst::new();
    while got.len() < sent.len() && Instant::now() < deadline {
        rxq.rx_burst(&mut rx);
        // Skip whatever else the kernel sends on a fresh veth (IPv6 DAD/RS, ...).
        got.extend(
            rx.drain()
                .filter(|m| m.data().get(12..14) == Some(&ETHERTYPE_TEST[..]))
                .map(|m| m.data().to_vec()),
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, sent, "frames crossed the veth byte for byte");
    assert!(b.stats().unwrap().ipackets >= 16);

    drop((txq, rxq, rx, tx));
    a.close().unwrap();
    b.close().unwrap();
    for name in ["net_af_packet_a", "net_af_packet_b", "net_tap_t"] {
        eal::hotplug_remove("vdev", name).unwrap_or_else(|e| panic!("remove {name}: {e}"));
    }
    assert_eq!(port::count(), 0);
    drop(_inside);
    drop(ns);
}

fn launch_on_worker(pool: &Mempool) {
    let worker = lcore::workers().next().unwrap();
    let p = pool.clone();
    let h = lcore::launch(worker, move || {
        if lcore::current() != Some(lcore::LcoreId(1)) {
            return -1;
        }
        // Allocate and free on the worker (its own mempool cache).
        let mut b = Burst::new();
        if !p.alloc_bulk(&mut b, 48) {
            return -2;
        }
        for m in b.iter_mut() {
            m.append(64).unwrap().fill(0xee);
        }
        b.clear();
        42
    })
    .unwrap();
    assert_eq!(h.lcore(), worker);
    assert_eq!(h.wait(), 42);
    assert_eq!(
        lcore::launch(lcore::main(), || 0).unwrap_err().errno,
        errno::EINVAL,
        "not on the main lcore"
    );

    // A busy worker refuses a second closure; a panicking one reports PANICKED and the
    // lcore stays usable.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = lcore::launch(worker, move || {
        rx.recv().unwrap();
        1
    })
    .unwrap();
    assert!(h.is_running());
    assert_eq!(lcore::launch(worker, || 2).unwrap_err().errno, errno::EBUSY);
    tx.send(()).unwrap();
    assert_eq!(h.wait(), 1);
    let h = lcore::launch(worker, || {
        panic!("deliberate panic on a worker lcore (test)")
    })
    .unwrap();
    assert_eq!(h.wait(), lcore::PANICKED);
    lcore::wait_all();
    assert_eq!(lcore::wait(worker), lcore::PANICKED);
}
