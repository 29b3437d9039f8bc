//! The shipped profiles, and the exact messages for broken ones.
//!
//! Negative tests change ONE thing in `lab.ron` and assert the whole message:
//! file, line, column, field and reason.

use hw_profiles::host::HostFacts;
use hw_profiles::{Device, Idle, Profile, ProfileError, Role};
use std::path::{Path, PathBuf};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

fn lab_text() -> String {
    std::fs::read_to_string(profiles_dir().join("lab.ron")).expect("lab.ron")
}

/// `lab.ron` with `from` (which must occur exactly once) replaced by `to`.
fn lab_with(from: &str, to: &str) -> String {
    let text = lab_text();
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once");
    text.replacen(from, to, 1)
}

/// The message for `lab.ron` with one change.
fn error_for(from: &str, to: &str) -> String {
    match Profile::from_str_named(&lab_with(from, to), "lab.ron") {
        Ok(_) => panic!("changing `{from}` to `{to}` was accepted"),
        Err(e) => e.to_string(),
    }
}

// ───────────────────────── shipped profiles ─────────────────────────

#[test]
fn every_shipped_profile_loads() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(profiles_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ron") {
            let p = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            // The model name is the file name: the runtime finds profiles by model.
            assert_eq!(
                Some(p.model.as_str()),
                path.file_stem().and_then(|s| s.to_str())
            );
            // A main and a backup HA link everywhere: the pair's tests and benches
            // can cut one and keep the other.
            let ha: Vec<_> = p.ha_ports().map(|p| p.name.as_str()).collect();
            assert_eq!(ha, ["ha0", "ha1"], "{}", path.display());
            names.push(p.model);
        }
    }
    names.sort();
    assert_eq!(
        names,
        ["bench", "lab", "lab-2w", "lab-pcap", "lab-sync", "t4100"]
    );
}

#[test]
fn lab_profile_contents() {
    let p = Profile::load(profiles_dir().join("lab.ron")).unwrap();
    let data: Vec<_> = p.data_ports().map(|p| p.name.as_str()).collect();
    assert_eq!(data, ["data0", "data1"]);
    let ha: Vec<_> = p.ha_ports().map(|p| p.name.as_str()).collect();
    assert_eq!(ha, ["ha0", "ha1"]);
    assert_eq!(p.management_ports().count(), 0);
    let data0 = p.port("data0").unwrap();
    assert_eq!(data0.dpdk_name(), "net_af_packet0");
    assert_eq!(data0.device.vdev_arg("iface"), Some("data0"));
    assert_eq!(
        (data0.rx_desc, data0.tx_desc, data0.mtu),
        (1024, 1024, 1500)
    );
    assert_eq!(p.port("ha0").unwrap().device.vdev_arg("iface"), Some("ha0"));
    assert_eq!(p.port("ha1").unwrap().device.vdev_arg("iface"), Some("ha1"));
    assert_eq!(p.port("ha1").unwrap().dpdk_name(), "net_af_packet3");
    assert!(p.port("nope").is_none());
    assert_eq!(p.cores.sync, None);
    assert_eq!(p.cores.queue_of(1), Some(0));
    assert_eq!(p.idle, Idle::Adaptive { max_sleep_us: 100 });
    assert!(!p.memory.hugepages);
    assert!(p.disks.is_empty());
    assert!(!p.tpm);
}

#[test]
fn lab_eal_args() {
    let p = Profile::load(profiles_dir().join("lab.ron")).unwrap();
    assert_eq!(
        p.eal_args("lab-a"),
        [
            "-l",
            "0,1",
            "--main-lcore",
            "0",
            "-m",
            "128",
            "--no-huge",
            "--no-shconf",
            "--no-pci",
            "--vdev=net_af_packet0,iface=data0,qpairs=1",
            "--vdev=net_af_packet1,iface=data1,qpairs=1",
            "--vdev=net_af_packet2,iface=ha0,qpairs=1",
            "--vdev=net_af_packet3,iface=ha1,qpairs=1",
            "--file-prefix=lab-a",
        ]
    );
}

/// Two workers on a two-CPU machine: lcore 2 shares CPU 1, so EAL gets `--lcores`
/// (an lcore-to-CPU map) where every other profile gets `-l`.
#[test]
fn lab_2w_eal_args() {
    let p = Profile::load(profiles_dir().join("lab-2w.ron")).unwrap();
    assert_eq!(p.cores.workers, [1, 2]);
    assert_eq!(p.cores.cpu(2), 1);
    assert_eq!(p.cores.cpu(1), 1);
    assert_eq!(p.cores.control_cpus(), [0]);
    assert!(p.data_ports().all(|d| d.rx_queues == 2 && d.tx_queues == 2));
    assert_eq!(
        p.eal_args("lab-b"),
        [
            "--lcores=0@0,1@1,2@1",
            "--main-lcore",
            "0",
            "-m",
            "128",
            "--no-huge",
            "--no-shconf",
            "--no-pci",
            "--vdev=net_af_packet0,iface=data0,qpairs=2",
            "--vdev=net_af_packet1,iface=data1,qpairs=2",
            "--vdev=net_af_packet2,iface=ha0,qpairs=1",
            "--vdev=net_af_packet3,iface=ha1,qpairs=1",
            "--file-prefix=lab-b",
        ]
    );
}

#[test]
fn t4100_profile_and_eal_args() {
    let p = Profile::load(profiles_dir().join("t4100.ron")).unwrap();
    assert_eq!(p.data_ports().count(), 4);
    assert_eq!(p.ha_ports().count(), 2);
    assert!(p.data_ports().all(|d| d.rx_queues == 8 && d.tx_queues == 8));
    assert_eq!(p.port("data3").unwrap().dpdk_name(), "0000:03:00.3");
    assert_eq!(
        p.port("ha1").unwrap().device,
        Device::Pci("0000:04:00.1".into())
    );
    assert_eq!(p.port("ha1").unwrap().role, Role::HaLink);
    assert_eq!(p.cores.sync, Some(10));
    assert_eq!(p.cores.control_cpus(), [1]);
    assert_eq!(p.cores.queue_of(9), Some(7));
    assert_eq!(p.disks.len(), 2);
    assert!(p.tpm);
    assert!(p.memory.hugepages);
    let args = p.eal_args("t4100");
    assert_eq!(
        args[..6],
        ["-l", "0,2-10", "--main-lcore", "0", "-m", "4096"]
    );
    assert!(!args
        .iter()
        .any(|a| a.starts_with("--no-") || a.starts_with("--vdev")));
    let allowed: Vec<_> = args
        .windows(2)
        .filter(|w| w[0] == "-a")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(
        allowed,
        [
            "0000:03:00.0",
            "0000:03:00.1",
            "0000:03:00.2",
            "0000:03:00.3",
            "0000:04:00.0",
            "0000:04:00.1"
        ]
    );
    assert_eq!(args.last().unwrap(), "--file-prefix=t4100");
}

#[test]
fn bench_profile_busy_polls_on_null_ports() {
    let p = Profile::load(profiles_dir().join("bench.ron")).unwrap();
    assert_eq!(p.idle, Idle::BusyPoll);
    assert!(p.ports.iter().all(|p| !p.device.is_pci()));
    assert!(p.eal_args("b").contains(&"--vdev=net_null0".to_string()));
    let ha: Vec<_> = p.ha_ports().map(|p| p.dpdk_name()).collect();
    assert_eq!(ha, ["net_ring0", "net_ring1"]);
}

#[test]
fn serialised_profile_reads_back() {
    let p = Profile::load(profiles_dir().join("t4100.ron")).unwrap();
    let text = ron::ser::to_string_pretty(&p, ron::ser::PrettyConfig::default()).unwrap();
    assert_eq!(Profile::from_str_named(&text, "again.ron").unwrap(), p);
}

#[test]
fn missing_file_is_an_io_error() {
    let err = Profile::load("/nonexistent/x.ron").unwrap_err();
    assert!(matches!(err, ProfileError::Io { .. }));
    assert!(err
        .to_string()
        .starts_with("/nonexistent/x.ron: No such file or directory"));
}

#[test]
fn load_names_the_file_as_given() {
    let dir = std::env::temp_dir().join(format!("hw-profiles-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.ron");
    std::fs::write(&path, lab_text().replace("tpm: false", "tpm: 1")).unwrap();
    let err = Profile::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}:32:10: tpm: expected `true` or `false`", path.display())
    );
    std::fs::write(&path, b"(model: \"\xff\")").unwrap();
    let err = Profile::load(&path).unwrap_err().to_string();
    assert_eq!(err, format!("{}:1:10: not valid UTF-8", path.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ───────────────────────── parse errors ─────────────────────────

#[test]
fn unknown_field() {
    assert_eq!(
        error_for("sync: None", "synk: None"),
        "lab.ron:17:9: cores.synk: unknown field `synk`, expected `main`, `workers`, `sync`, `control` or `cpu_of`"
    );
}

#[test]
fn unknown_field_in_a_list_element() {
    assert_eq!(
        error_for("(name: \"data0\", ", "(name: \"data0\", speed: 10, "),
        "lab.ron:8:25: ports[0].speed: unknown field `speed`, expected `name`, `role`, `device`, \
         `rx_queues`, `tx_queues`, `rx_desc`, `tx_desc` or `mtu`"
    );
}

#[test]
fn unknown_field_in_an_enum_variant() {
    assert_eq!(
        error_for("max_sleep_us: 100", "max_sleep: 100"),
        "lab.ron:30:20: idle.max_sleep: unknown field `max_sleep`, expected `max_sleep_us`"
    );
}

#[test]
fn duplicate_field() {
    assert_eq!(
        error_for("main: 0,", "main: 0, main: 2,"),
        "lab.ron:14:18: cores.main: field `main` given twice"
    );
}

#[test]
fn missing_comma() {
    assert_eq!(
        error_for("main: 0,", "main: 0"),
        "lab.ron:15:9: cores.workers: expected a comma before this"
    );
}

#[test]
fn unclosed_list() {
    assert_eq!(
        error_for("workers: [1],", "workers: [1,"),
        // RON reads on into the next field as if it were the next worker.
        "lab.ron:17:9: cores.workers[1]: expected an integer"
    );
}

#[test]
fn truncated_file() {
    let text = lab_text();
    let cut = &text[..text.find("    idle:").unwrap()];
    assert_eq!(
        Profile::from_str_named(cut, "lab.ron")
            .unwrap_err()
            .to_string(),
        "lab.ron:30:1: unexpected end of file (unclosed bracket?)"
    );
}

#[test]
fn unterminated_string() {
    assert_eq!(
        error_for("model: \"lab\",", "model: \"lab,"),
        // The string goes on to the next quote, on the next line.
        "lab.ron:6:19: model: expected a comma before this"
    );
}

#[test]
fn missing_field() {
    assert_eq!(
        error_for("    tpm: false,\n", ""),
        "lab.ron:4:1: tpm: missing (this field is required)"
    );
}

#[test]
fn missing_field_in_a_list_element() {
    assert_eq!(
        error_for(
            "qpairs=1\"), rx_queues: 1, tx_queues: 1),\n        (name: \"data1\"",
            "qpairs=1\"), rx_queues: 1),\n        (name: \"data1\""
        ),
        "lab.ron:8:9: ports[0].tx_queues: missing (this field is required)"
    );
}

#[test]
fn wrong_type() {
    assert_eq!(
        error_for("main: 0,", "main: \"0\","),
        "lab.ron:14:15: cores.main: expected an integer"
    );
}

#[test]
fn number_out_of_range() {
    assert_eq!(
        error_for("mbufs: 16383", "mbufs: 16383000000000"),
        "lab.ron:22:16: memory.mbufs: number out of range for this field"
    );
}

#[test]
fn unknown_unit_variant() {
    assert_eq!(
        error_for(
            "role: HaLink, device: Vdev(\"net_af_packet2",
            "role: Halink, device: Vdev(\"net_af_packet2"
        ),
        "lab.ron:10:29: ports[2].role: unknown variant `Halink`, expected `Data`, `HaLink` or `Management`"
    );
}

#[test]
fn unknown_variant_with_payload() {
    assert_eq!(
        error_for("Vdev(\"net_af_packet2", "Vdevice(\"net_af_packet2"),
        "lab.ron:10:45: ports[2].device: unknown variant `Vdevice`, expected `Pci` or `Vdev`"
    );
}

#[test]
fn sync_core_not_an_option() {
    assert_eq!(
        error_for("sync: None", "sync: 3"),
        "lab.ron:17:15: cores.sync: expected `Some(...)` or `None`"
    );
}

#[test]
fn trailing_text() {
    let text = format!("{})", lab_text());
    assert_eq!(
        Profile::from_str_named(&text, "lab.ron")
            .unwrap_err()
            .to_string(),
        "lab.ron:34:1: unexpected text after the end of the document"
    );
}

// ───────────────────────── semantic errors ─────────────────────────

#[test]
fn core_used_twice() {
    assert_eq!(
        error_for("workers: [1]", "workers: [1, 1]"),
        "lab.ron:15:22: cores.workers[1]: core 1 is listed twice (also cores.workers[0])"
    );
}

#[test]
fn worker_is_the_main_core() {
    assert_eq!(
        error_for("workers: [1]", "workers: [1, 0]"),
        "lab.ron:15:22: cores.workers[1]: core 0 is already the main core"
    );
}

#[test]
fn sync_core_is_a_worker() {
    assert_eq!(
        error_for("sync: None", "sync: Some(1)"),
        "lab.ron:17:15: cores.sync: core 1 is already a worker (cores.workers[0])"
    );
}

#[test]
fn sync_core_is_the_main_core() {
    assert_eq!(
        error_for("sync: None", "sync: Some(0)"),
        "lab.ron:17:15: cores.sync: core 0 is already the main core"
    );
}

#[test]
fn control_core_on_a_worker() {
    assert_eq!(
        error_for("sync: None,", "sync: None, control: [1],"),
        "lab.ron:17:31: cores.control[0]: core 1 is a worker (cores.workers[0]): heartbeats \
         would wait behind its poll loop"
    );
}

#[test]
fn cpu_of_an_lcore_that_does_not_exist() {
    assert_eq!(
        error_for("sync: None,", "sync: None, cpu_of: [(3, 1)],"),
        "lab.ron:17:30: cores.cpu_of[0]: lcore 3 is not the main, a worker or the sync core"
    );
}

#[test]
fn cpu_of_an_lcore_listed_twice() {
    assert_eq!(
        error_for("sync: None,", "sync: None, cpu_of: [(1, 0), (1, 1)],"),
        "lab.ron:17:38: cores.cpu_of[1]: lcore 1 is listed twice (also cores.cpu_of[0])"
    );
}

#[test]
fn cpu_of_beyond_dpdk_limit() {
    assert_eq!(
        error_for("sync: None,", "sync: None, cpu_of: [(1, 128)],"),
        "lab.ron:17:30: cores.cpu_of[0]: CPU 128 is beyond DPDK's limit (RTE_MAX_LCORE = 128, ids 0..=127)"
    );
}

#[test]
fn lcore_beyond_dpdk_limit() {
    assert_eq!(
        error_for("main: 0,", "main: 128,"),
        "lab.ron:14:15: cores.main: core 128 is beyond DPDK's limit (RTE_MAX_LCORE = 128, ids 0..=127)"
    );
}

#[test]
fn no_workers() {
    assert_eq!(
        error_for("workers: [1]", "workers: []"),
        "lab.ron:15:18: cores.workers: at least one worker core is needed"
    );
}

#[test]
fn zero_rx_queues() {
    assert_eq!(
        error_for(
            "data0,qpairs=1\"), rx_queues: 1",
            "data0,qpairs=1\"), rx_queues: 0"
        ),
        "lab.ron:8:101: ports[0].rx_queues: must be at least 1"
    );
}

#[test]
fn queues_do_not_match_workers() {
    assert_eq!(
        error_for(
            "data1,qpairs=1\"), rx_queues: 1, tx_queues: 1",
            "data1,qpairs=1\"), rx_queues: 1, tx_queues: 2"
        ),
        "lab.ron:9:115: ports[1].tx_queues: 2 queues but 1 worker: a data port needs one queue \
         per worker (worker i polls queue i)"
    );
}

#[test]
fn more_queues_than_af_packet_qpairs() {
    assert_eq!(
        error_for(
            "ha0,qpairs=1\"), rx_queues: 1",
            "ha0,qpairs=1\"), rx_queues: 2"
        ),
        "lab.ron:10:99: ports[2].rx_queues: 2 queues but the net_af_packet device has qpairs=1"
    );
}

#[test]
fn duplicate_port_name() {
    assert_eq!(
        error_for("(name: \"data1\"", "(name: \"data0\""),
        "lab.ron:9:16: ports[1].name: duplicate port name `data0` (also ports[0])"
    );
}

#[test]
fn two_ports_on_one_device() {
    assert_eq!(
        error_for("net_af_packet1,iface=data1", "net_af_packet0,iface=data1"),
        "lab.ron:9:45: ports[1].device: device `net_af_packet0` is already port `data0` (ports[0])"
    );
}

#[test]
fn bad_pci_address() {
    assert_eq!(
        error_for(
            "Vdev(\"net_af_packet2,iface=ha0,qpairs=1\")",
            "Pci(\"0000:04:00\")"
        ),
        "lab.ron:10:45: ports[2].device: `0000:04:00` is not a PCI address as DPDK writes them: \
         domain:bus:device.function in lower-case hex, e.g. 0000:03:00.0"
    );
}

#[test]
fn pci_port_without_hugepages() {
    assert_eq!(
        error_for(
            "Vdev(\"net_af_packet2,iface=ha0,qpairs=1\")",
            "Pci(\"0000:04:00.0\")"
        ),
        "lab.ron:17:15: cores.sync: a hardware profile (ports[2] is a PCI device) needs a \
         dedicated sync core; only lab profiles may leave it out"
    );
    let text = lab_with(
        "Vdev(\"net_af_packet2,iface=ha0,qpairs=1\")",
        "Pci(\"0000:04:00.0\")",
    )
    .replacen("sync: None", "sync: Some(2)", 1);
    assert_eq!(
        Profile::from_str_named(&text, "lab.ron")
            .unwrap_err()
            .to_string(),
        "lab.ron:25:20: memory.hugepages: ports[2] is a PCI device, which needs hugepages \
         (pinned DMA memory); only vdev profiles may run without"
    );
}

#[test]
fn vdev_with_empty_driver_name() {
    assert_eq!(
        error_for("net_af_packet0,iface=data0", ",iface=data0"),
        "lab.ron:8:45: ports[0].device: `,iface=data0,qpairs=1` has an empty driver name \
         (nothing before the first comma)"
    );
}

#[test]
fn relative_disk_path() {
    assert_eq!(
        error_for("disks: [],", "disks: [(name: \"sda\", path: \"dev/sda\")],"),
        "lab.ron:31:33: disks[0].path: `dev/sda` is not an absolute path"
    );
}

#[test]
fn mtu_out_of_range() {
    assert_eq!(
        error_for(
            "data0,qpairs=1\"), rx_queues: 1, tx_queues: 1)",
            "data0,qpairs=1\"), rx_queues: 1, tx_queues: 1, mtu: 20)"
        ),
        "lab.ron:8:123: ports[0].mtu: mtu 20 is out of range 68..=9600"
    );
}

#[test]
fn zero_mbufs() {
    assert_eq!(
        error_for("mbufs: 16383", "mbufs: 0"),
        "lab.ron:22:16: memory.mbufs: zero mbufs: no packet could be received"
    );
}

#[test]
fn pool_too_small_for_the_rings() {
    assert_eq!(
        error_for("mbufs: 16383", "mbufs: 8191"),
        "lab.ron:22:16: memory.mbufs: 8191 mbufs cannot fill every rx/tx descriptor and lcore \
         cache: at least 8960 needed"
    );
}

#[test]
fn too_little_eal_memory() {
    assert_eq!(
        error_for("eal_memory_mb: 128", "eal_memory_mb: 64"),
        "lab.ron:24:24: memory.eal_memory_mb: 64 MiB is too little for 16383 mbufs: at least 100 MiB"
    );
}

#[test]
fn no_data_port() {
    let text = lab_text();
    let start = text.find("    ports: [").unwrap();
    let end = text.find("    cores:").unwrap();
    let text = format!("{}    ports: [],\n{}", &text[..start], &text[end..]);
    assert_eq!(
        Profile::from_str_named(&text, "lab.ron")
            .unwrap_err()
            .to_string(),
        "lab.ron:7:12: ports: no data port: at least one port needs role `Data`"
    );
}

#[test]
fn adaptive_sleep_out_of_range() {
    assert_eq!(
        error_for("max_sleep_us: 100", "max_sleep_us: 0"),
        "lab.ron:30:34: idle.max_sleep_us: 0 µs is out of range 1..=1000 (longer sleeps delay \
         the first packet of every burst that much)"
    );
}

#[test]
fn field_left_to_default_points_at_its_parent() {
    // rx_desc is not written in lab.ron; the message points at the port.
    let mut p = Profile::from_str_named(&lab_text(), "lab.ron").unwrap();
    p.ports[0].rx_desc = 1000;
    let invalid = p.check().unwrap_err();
    assert_eq!(invalid.field, "ports[0].rx_desc");
    let d = hw_profiles::diagnostic::at_path(&lab_text(), &invalid.field, invalid.reason);
    assert_eq!((d.line, d.column), (8, 9));
    assert_eq!(
        d.reason,
        "1000 descriptors: must be a power of two from 64 to 32768"
    );
}

// ───────────────────────── odd bytes and comments ─────────────────────────

#[test]
fn nul_in_a_field_name_is_named_as_written() {
    assert_eq!(
        error_for("model:", "mod\0el:"),
        "lab.ron:5:5: [\"mod\\0el\"]: field name `mod\\0el` holds `\\0`, which a name cannot hold \
         (letters, digits and `_`)"
    );
    // The same in a nested struct, and for other odd characters.
    assert_eq!(
        error_for("mbufs: 16383", "mb\0ufs: 16383"),
        "lab.ron:22:9: memory[\"mb\\0ufs\"]: field name `mb\\0ufs` holds `\\0`, which a name \
         cannot hold (letters, digits and `_`)"
    );
    assert_eq!(
        error_for("tpm:", "t\u{1}pm:"),
        "lab.ron:32:5: [\"t\\u{1}pm\"]: field name `t\\u{1}pm` holds `\\u{1}`, which a name \
         cannot hold (letters, digits and `_`)"
    );
    assert_eq!(
        error_for("tpm:", "t\"pm:"),
        "lab.ron:32:5: [\"t\\\"pm\"]: field name `t\\\"pm` holds `\\\"`, which a name cannot \
         hold (letters, digits and `_`)"
    );
    // After a whole name, the character itself is what is wrong.
    assert_eq!(
        error_for("tpm:", "tpm\0:"),
        "lab.ron:32:8: [\"tpm\\0\"]: unexpected character `\\0`"
    );
}

#[test]
fn unclosed_comment_is_placed_where_it_opens() {
    assert_eq!(
        error_for("disks: [],", "disks: [/*],"),
        "lab.ron:31:13: unclosed /* comment: it runs to the end of the file"
    );
}

#[test]
fn byte_order_mark_is_named() {
    let text = format!("\u{feff}{}", lab_text());
    assert_eq!(
        Profile::from_str_named(&text, "lab.ron")
            .unwrap_err()
            .to_string(),
        "lab.ron:1:1: unexpected character `\\u{feff}`"
    );
}

#[test]
fn a_file_past_the_size_limit_is_refused_unread() {
    let dir = std::env::temp_dir().join(format!("hw-profiles-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.ron");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(hw_profiles::MAX_PROFILE_BYTES + 1).unwrap();
    let err = Profile::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:1:1: the file is 1048577 bytes, over the limit of 1048576 bytes",
            path.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ───────────────────────── this machine ─────────────────────────

/// A two-CPU machine with the lab's interfaces and one NIC.
fn two_cpus() -> HostFacts {
    HostFacts {
        online_cpus: Some(vec![0, 1]),
        allowed_cpus: Some(vec![0, 1]),
        pci_devices: Some(["0000:03:00.0".to_string()].into()),
        interfaces: Some(
            ["lo", "data0", "data1", "ha0", "ha1"]
                .map(String::from)
                .into(),
        ),
    }
}

/// The message for `lab.ron` with one change, on `host`.
fn host_error_for(from: &str, to: &str, host: &HostFacts) -> String {
    match Profile::from_str_for_host(&lab_with(from, to), "lab.ron", host) {
        Ok(_) => panic!("changing `{from}` to `{to}` was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn lab_profile_fits_a_two_cpu_machine() {
    Profile::from_str_for_host(&lab_text(), "lab.ron", &two_cpus()).unwrap();
    // What cannot be read is not checked.
    Profile::from_str_for_host(&lab_text(), "lab.ron", &HostFacts::default()).unwrap();
}

#[test]
fn worker_99_on_a_two_cpu_machine() {
    assert_eq!(
        host_error_for("workers: [1]", "workers: [99]", &two_cpus()),
        "lab.ron:15:19: cores.workers[0]: CPU 99 is not online on this machine (online: 0,1)"
    );
}

#[test]
fn every_cpu_the_profile_names_must_be_online_and_allowed() {
    let host = two_cpus();
    assert_eq!(
        host_error_for("main: 0", "main: 2", &host),
        "lab.ron:14:15: cores.main: CPU 2 is not online on this machine (online: 0,1)"
    );
    assert_eq!(
        host_error_for("sync: None", "sync: Some(5)", &host),
        "lab.ron:17:15: cores.sync: CPU 5 is not online on this machine (online: 0,1)"
    );
    assert_eq!(
        host_error_for("sync: None", "sync: None, control: [0, 7]", &host),
        "lab.ron:17:34: cores.control[1]: CPU 7 is not online on this machine (online: 0,1)"
    );
    // An lcore moved onto another CPU: that CPU is what must be online. lab-2w folds
    // lcore 2 onto CPU 1, which fits two CPUs.
    let lab_2w = std::fs::read_to_string(profiles_dir().join("lab-2w.ron")).unwrap();
    Profile::from_str_for_host(&lab_2w, "lab-2w.ron", &host).unwrap();
    assert_eq!(
        Profile::from_str_for_host(&lab_2w.replace("(2, 1)", "(2, 3)"), "lab-2w.ron", &host)
            .unwrap_err()
            .to_string(),
        "lab-2w.ron:21:22: cores.cpu_of[0][1]: CPU 3 is not online on this machine (online: 0,1)"
    );
    let pinned = HostFacts {
        allowed_cpus: Some(vec![0]),
        ..two_cpus()
    };
    assert_eq!(
        host_error_for("workers: [1]", "workers: [1]", &pinned),
        "lab.ron:15:19: cores.workers[0]: CPU 1 is online but this process may not run on it \
         (allowed: 0)"
    );
}

#[test]
fn every_port_the_profile_names_must_be_present() {
    let host = two_cpus();
    assert_eq!(
        host_error_for("iface=data1", "iface=data9", &host),
        "lab.ron:9:45: ports[1].device: iface=data9: no interface `data9` in this network \
         namespace (/sys/class/net)"
    );
    let no_ha0 = HostFacts {
        interfaces: Some(["lo", "data0", "data1", "ha1"].map(String::from).into()),
        ..two_cpus()
    };
    assert_eq!(
        Profile::from_str_for_host(&lab_text(), "lab.ron", &no_ha0)
            .unwrap_err()
            .to_string(),
        "lab.ron:10:45: ports[2].device: iface=ha0: no interface `ha0` in this network \
         namespace (/sys/class/net)"
    );
    assert_eq!(
        host_error_for(
            "Vdev(\"net_af_packet2,iface=ha0,qpairs=1\")",
            "Vdev(\"net_pcap0,rx_iface=ha0,tx_iface=ha9\")",
            &host
        ),
        "lab.ron:10:45: ports[2].device: tx_iface=ha9: no interface `ha9` in this network \
         namespace (/sys/class/net)"
    );
    // Devices that open no kernel interface are not looked for.
    Profile::from_str_for_host(
        &lab_with(
            "Vdev(\"net_af_packet2,iface=ha0,qpairs=1\")",
            "Vdev(\"net_null0\")",
        ),
        "lab.ron",
        &no_ha0,
    )
    .unwrap();
    let t4100 = std::fs::read_to_string(profiles_dir().join("t4100.ron")).unwrap();
    let twelve = HostFacts {
        online_cpus: Some((0..12).collect()),
        allowed_cpus: Some((0..12).collect()),
        ..two_cpus()
    };
    assert_eq!(
        Profile::from_str_for_host(&t4100, "t4100.ron", &twelve)
            .unwrap_err()
            .to_string(),
        "t4100.ron:10:45: ports[1].device: PCI device 0000:03:00.1 is not on this machine \
         (/sys/bus/pci/devices)"
    );
}

/// The one test that reads the machine it runs on: a profile on its first CPU and its
/// loopback interface loads; one on a CPU it does not have is refused.
#[test]
fn this_machine_is_checked_at_load() {
    let online = hw_profiles::host::online_cpus().expect("/sys/devices/system/cpu/online");
    let host = HostFacts::read();
    let allowed = host.allowed_cpus.clone().unwrap_or(online.clone());
    let cpu = *online.iter().find(|c| allowed.contains(c)).unwrap();
    let text = format!(
        r#"(
    model: "here", description: "", tpm: false, disks: [], idle: BusyPoll,
    ports: [(name: "d", role: Data, device: Vdev("net_af_packet0,iface=lo"), rx_queues: 1, tx_queues: 1)],
    cores: (main: {cpu}, workers: [{cpu}]),
    memory: (mbufs: 8191, mbuf_cache: 256, eal_memory_mb: 64, hugepages: false, connections: 1024),
)"#
    );
    let dir = std::env::temp_dir().join(format!("hw-profiles-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("here.ron");
    // main and workers must differ: move the worker to lcore 100, on the same CPU.
    let text = text.replace(
        &format!("workers: [{cpu}])"),
        &format!("workers: [100], cpu_of: [(100, {cpu})])"),
    );
    std::fs::write(&path, &text).unwrap();
    Profile::load_for_host(&path).unwrap();
    if let Some(missing) = (0..hw_profiles::validate::MAX_LCORE).find(|c| !online.contains(c)) {
        std::fs::write(
            &path,
            text.replace(&format!("(100, {cpu})"), &format!("(100, {missing})")),
        )
        .unwrap();
        let err = Profile::load_for_host(&path).unwrap_err().to_string();
        // `main: {cpu}` comes first on the line: the column moves with its digits.
        let column = 52 + cpu.to_string().len();
        assert!(
            err.starts_with(&format!(
                "{}:4:{column}: cores.cpu_of[0][1]: CPU {missing} is not online on this machine",
                path.display()
            )),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ───────────────────────── never a panic ─────────────────────────

/// Every error must carry a place inside the text.
fn assert_placed(err: &ProfileError, text: &str) {
    match err {
        ProfileError::Invalid { line, column, .. } => {
            assert!(*line >= 1 && *column >= 1, "{err}");
            assert!(*line <= text.lines().count() + 1, "{err}");
        }
        ProfileError::Io { .. } => panic!("no I/O here: {err}"),
    }
}

#[test]
fn every_truncated_prefix_is_refused() {
    let text = lab_text();
    let body_end = text.rfind(')').unwrap();
    for (i, _) in text.char_indices().filter(|&(i, _)| i <= body_end) {
        let prefix = &text[..i];
        let err = Profile::from_str_named(prefix, "lab.ron")
            .expect_err(&format!("prefix of {i} bytes was accepted"));
        assert_placed(&err, prefix);
    }
}

#[test]
fn single_character_changes_never_panic() {
    let text = lab_text();
    let chars: Vec<char> = text.chars().collect();
    let replacements = ['(', ')', '[', ']', ',', ':', '"', '/', '0', 'x', '\n', 'é'];
    let mut refused = 0;
    for i in 0..chars.len() {
        let mut variants = vec![];
        // Deletion.
        variants.push(chars[..i].iter().chain(&chars[i + 1..]).collect::<String>());
        // Two replacements per position, rotating through the list.
        for k in 0..2 {
            let r = &replacements[(i * 2 + k) % replacements.len()];
            let mut c = chars.clone();
            c[i] = *r;
            variants.push(c.into_iter().collect());
        }
        for v in variants {
            if let Err(e) = Profile::from_str_named(&v, "lab.ron") {
                assert_placed(&e, &v);
                refused += 1;
            }
        }
    }
    assert!(refused > chars.len(), "most changes must be refused");
}
