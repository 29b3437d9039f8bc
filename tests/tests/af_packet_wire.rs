//! The lab's wires as DPDK sees them, checked without `tandemd`: the unit is
//! played by `dpdk-testpmd` in io mode (a plain wire between `net_af_packet`
//! ports on `data0` and `data1`), started through the harness's `tandemd`
//! path. TCP must cross byte-exact. This is what the offload settings of
//! [`tandem_tests::veth`] are for: with checksum/segmentation offloads left
//! on, the kernel hands af_packet frames with unfilled TCP checksums and
//! not even a TCP handshake gets through.
//!
//! Needs `dpdk-testpmd` (Debian package `dpdk`).

use std::time::Duration;

use tandem_tests::{blob, plan, services, Lab, Netns};

/// Stand-in for `tandemd`: the same arguments, `tandemd ready` once forwarding,
/// exit 0 on SIGTERM.
const TESTPMD_UNIT: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do
    case "$1" in
        --file-prefix) prefix="$2"; shift ;;
        --counters-file) counters="$2"; shift ;;
    esac
    shift
done
log="$counters.testpmd"
# testpmd dies with this script, however the script ends (the harness may SIGKILL it).
setpriv --pdeathsig KILL dpdk-testpmd --no-huge --no-shconf -m 128 --no-pci -l 0-1 --file-prefix="$prefix" \
    --vdev=net_af_packet0,iface=data0 --vdev=net_af_packet1,iface=data1 -- \
    --forward-mode=io --auto-start --stats-period 1 --total-num-mbufs=8192 \
    </dev/null >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid; wait $pid; exit 0' TERM
i=0
until grep -q "io packet forwarding" "$log"; do
    kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
    i=$((i + 1)); [ $i -lt 300 ] || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
echo "tandemd ready (testpmd as the wire)" >&2
wait $pid
"#;

fn mac(ns: &Netns) -> String {
    let out = ns
        .exec_ok(["cat", "/sys/class/net/eth0/address"])
        .expect("reading eth0's MAC");
    out.stdout.trim().to_string()
}

#[test]
fn tcp_crosses_a_dpdk_af_packet_wire_intact() {
    use std::os::unix::fs::PermissionsExt;
    let which = std::process::Command::new("sh")
        .args(["-c", "command -v dpdk-testpmd"])
        .output()
        .expect("running sh");
    assert!(
        which.status.success(),
        "dpdk-testpmd not found: install the Debian package `dpdk`"
    );
    let tools = tempfile::tempdir().unwrap();
    let script = tools.path().join("testpmd-unit");
    std::fs::write(&script, TESTPMD_UNIT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let profile = tools.path().join("unused-profile.ron");
    std::fs::write(&profile, "()\n").unwrap();

    let lab = Lab::builder()
        .tandemd(&script)
        .profile(&profile)
        .build()
        .expect("lab with testpmd as the unit");
    // io mode leaves frames untouched: each side addresses the other's MAC
    // directly, through its gateway's neighbour entry.
    let (client_mac, server_mac) = (mac(lab.client()), mac(lab.server()));
    for (ns, gw, lladdr) in [
        (lab.client(), plan::VIP0, &server_mac),
        (lab.server(), plan::VIP1, &client_mac),
    ] {
        ns.ip(&[
            "neigh",
            "replace",
            gw,
            "lladdr",
            lladdr,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])
        .unwrap();
    }

    let out = lab
        .client()
        .exec(["ping", "-n", "-c", "3", "-W", "2", plan::SERVER_IP])
        .unwrap();
    assert!(out.success(), "{out}\n{}", lab.unit_logs());

    let www = lab.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let sent = www.join("blob");
    blob::write_random(&sent, 8 * 1024 * 1024).unwrap();
    let _http = services::http_server(
        lab.server(),
        &www,
        plan::SERVER_IP,
        8080,
        &lab.dir().join("http"),
    )
    .unwrap();
    let got = lab.dir().join("got");
    let out = lab
        .client()
        .exec_timeout(
            [
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-o",
                got.to_str().unwrap(),
                &format!("http://{}:8080/blob", plan::SERVER_IP),
            ],
            Duration::from_secs(90),
        )
        .unwrap();
    assert!(out.success(), "{out}\n{}", lab.unit_logs());
    assert_eq!(blob::compare(&sent, &got), Ok(8 * 1024 * 1024));
}
