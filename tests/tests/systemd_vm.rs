//! Issue 19, the rest of item 1: installed with `dpkg -i`, *the units start*, under a real
//! systemd. package.rs installs the packages on this machine and starts each unit's
//! `ExecStart=` with setpriv, because this machine's PID 1 is not systemd; what only
//! systemd does (enabling and starting the units, their sandbox: namespaces, the read-only
//! system, the system call filter; stopping them) is shown here, in a Debian bookworm VM
//! under qemu. Never start systemd on this machine itself, as PID 1 or in a PID namespace:
//! only inside the VM.
//!
//! The VM boots the image `scripts/install-vm-image` builds, through an overlay of the
//! test's own, with the packages, the tansu broker and the script [`GUEST`] on a second
//! disk; the image runs that script as root once it is up, writes what the script leaves
//! in `$OUT` (its output, the units' journal) onto a third disk and powers off. The script
//! installs the packages with `dpkg -i`, sets the broker in /etc/auditty/auditty.toml,
//! has systemd enable and start the shipper and the ingester, records a login through
//! `/usr/sbin/auditty-login` on a PTY, waits until the ingester has stored it and `replay`
//! verifies it, reads the sandbox systemd gave each running service from /proc, runs the
//! compaction service and timer, and stops the services. It reports each finding as a line
//! `RESULT name=value`, which this side compares with [`EXPECTED`].
//!
//! KVM where the host has hardware virtualization, TCG (emulation, slower) otherwise.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditty_tests::broker::tansu_bin;
use auditty_tests::packages::build_packages;
use auditty_tests::show;

/// The script the VM runs as root, from its second disk (`$0`'s directory holds debs/ and
/// tansu). Each check prints `RESULT name=value` and goes on, so that one failure shows
/// with all the others.
const GUEST: &str = r#"#!/bin/bash
set -u
in="$(dirname "$(readlink -f "$0")")"
export HOME=/root LANG=C.UTF-8
config=/etc/auditty/auditty.toml
store=/var/lib/auditty-ingest/store
trust=/var/lib/auditty/trusted-keys
result() { echo "RESULT $1=$2"; }
yes_no() { if "$@"; then echo yes; else echo no; fi; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds; fails after SECONDS.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.5
  done
}
dump() {
  journalctl --no-pager -o short-precise -u auditty-ship.service -u auditty-ingest.service \
    -u auditty-compact.service -u auditty-compact.timer -u tansu.service >"$OUT/journal.txt" 2>&1
  journalctl --no-pager -o short-precise -b >"$OUT/journal-all.txt" 2>&1
}
trap dump EXIT

result pid1 "$(cat /proc/1/comm)"
dpkg -i "$in"/debs/*.deb >"$OUT/dpkg.log" 2>&1
result dpkg_install $?
# The packages make systemd see their units and enable none: each needs settings first.
for unit in ship ingest; do
  result "${unit}_enabled_after_install" "$(systemctl is-enabled "auditty-$unit.service" 2>&1)"
done
result compact_timer_enabled_after_install "$(systemctl is-enabled auditty-compact.timer 2>&1)"
result compact_timer_active_after_install "$(systemctl is-active auditty-compact.timer 2>&1)"

mkdir -p /var/lib/tansu
systemd-run --quiet --unit=tansu -p WorkingDirectory=/var/lib/tansu "$in/tansu" broker \
  --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
  --storage-engine sqlite://tansu.db
create_topic() {
  "$in/tansu" topic create --broker tcp://127.0.0.1:9092 --partitions 1 auditty.events \
    >>"$OUT/topic.log" 2>&1
}
wait_for 120 create_topic
result broker $?

sed -i \
  -e 's|^# brokers = "kafka1:9092,kafka2:9092"$|brokers = "127.0.0.1:9092"|' \
  -e 's|^# source = "kafka://kafka1:9092/auditty.events"$|source = "kafka://127.0.0.1:9092/auditty.events"|' \
  -e 's|^# group = "auditty-ingest"$|group = "auditty-ingest"\nmax_batch_age_ms = 500|' \
  "$config"
result config_brokers "$(grep -c '^brokers = "127.0.0.1:9092"$' "$config")"
result config_source "$(grep -c '^source = "kafka://127.0.0.1:9092/auditty.events"$' "$config")"
auditty-agent config check ship >"$OUT/config-ship.txt" 2>&1
result config_check_ship $?
auditty-ingest config check run >"$OUT/config-run.txt" 2>&1
result config_check_run $?

systemctl enable --now auditty-ship.service auditty-ingest.service >"$OUT/enable.log" 2>&1
result enable $?
for unit in ship ingest; do
  result "${unit}_enabled" "$(systemctl is-enabled "auditty-$unit.service" 2>&1)"
  result "${unit}_active" "$(systemctl is-active "auditty-$unit.service" 2>&1)"
done

# What systemd made of each unit's sandbox, read off the running program. A Type=simple
# start returns once systemd has forked, before its child has dropped the capabilities
# and exec'd: read once the program runs.
sandbox() {
  local unit=$1 program=$2 writable=$3 pid field
  pid="$(systemctl show -p MainPID --value "auditty-$unit.service")"
  running() { [ "$(readlink "/proc/$pid/exe")" = "$program" ]; }
  wait_for 30 running
  result "${unit}_program" "$(readlink "/proc/$pid/exe")"
  result "${unit}_user" "$(stat -c %U "/proc/$pid" 2>&1)"
  for field in NoNewPrivs:no_new_privs CapBnd:cap_bnd CapEff:cap_eff Seccomp:seccomp; do
    result "${unit}_${field#*:}" "$(awk -v f="${field%%:*}:" '$1 == f { print $2 }' "/proc/$pid/status")"
  done
  # ProtectSystem=strict: everything read-only but ReadWritePaths=.
  result "${unit}_root_mount" "$(awk '$5 == "/" { split($6, o, ","); m = o[1] } END { print m }' "/proc/$pid/mountinfo")"
  result "${unit}_writable_mount" "$(awk -v p="$writable" '$5 == p { split($6, o, ","); m = o[1] } END { print m }' "/proc/$pid/mountinfo")"
  result "${unit}_tmp_private" "$(yes_no awk '$5 == "/tmp" { f = 1 } END { exit !f }' "/proc/$pid/mountinfo")"
}
sandbox ship /usr/bin/auditty-agent /var/spool/auditty
sandbox ingest /usr/bin/auditty-ingest /var/lib/auditty-ingest

# A login recorded as sudo would start the wrapper for the user, typed on a PTY.
useradd --create-home --shell /bin/bash auditty-rec
marker="vm-$RANDOM$RANDOM"
typescript="$OUT/session.txt"
: >"$typescript"
saw() { grep -q -- "$1" "$typescript"; }
typist() {
  wait_for 60 saw '\$ ' || return
  printf 'echo %s-$((6 * 7))\n' "$marker"
  wait_for 60 saw "$marker-42" || return
  printf 'exit\n'
}
typist | SUDO_USER=auditty-rec TERM=xterm timeout 120 script -qec /usr/sbin/auditty-login /dev/null \
  >"$typescript" 2>&1
result session_exit $?
result session_echoed "$(yes_no saw "$marker-42")"

spool_empty() { ! find /var/spool/auditty -name '*.seg' | grep -q .; }
wait_for 120 spool_empty
result spool_shipped $?
# replay as root would create the store's directories (its access log) before the
# ingester could: first the ingester's own objects.
stored() { find "$store/sessions" -type f 2>/dev/null | grep -q .; }
listed() {
  stored && replay --store "file://$store" ls --trust "$trust" >"$OUT/ls.txt" 2>&1 &&
    grep auditty-rec "$OUT/ls.txt" | grep -q complete
}
wait_for 120 listed
result session_listed $?
replay --store "file://$store" ls --json >"$OUT/ls.json" 2>&1
id="$(grep -o '"id": *"[^"]*"' "$OUT/ls.json" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')"
replay --store "file://$store" verify --trust "$trust" "$id" >"$OUT/verify.txt" 2>&1
result verify $?
result verify_complete "$(yes_no grep -q 'complete:' "$OUT/verify.txt")"
replay --store "file://$store" export "$id" --format text >"$OUT/export.txt" 2>&1
result export_has_marker "$(yes_no grep -q -- "$marker-42" "$OUT/export.txt")"
result store_owner "$(find "$store/events" -type f -printf '%u\n' 2>&1 | sort -u | paste -sd,)"
# The shipper started before this first session created the node key: it must find the
# key then and send the node's ledger head, without a restart.
ledger_stored() { find "$store/ledger" -type f 2>/dev/null | grep -q .; }
wait_for 120 ledger_stored
result ledger_head_stored $?
replay --store "file://$store" verify --all --trust "$trust" >"$OUT/verify-all.txt" 2>&1
result verify_all $?

systemctl start auditty-compact.service >"$OUT/compact.log" 2>&1
result compact_start $?
result compact_result "$(systemctl show -p Result --value auditty-compact.service)"
# As the configuration file says to turn the daily run on.
systemctl enable --now auditty-compact.timer >>"$OUT/compact.log" 2>&1
result timer_enable $?
result timer_active "$(systemctl is-active auditty-compact.timer 2>&1)"
systemctl list-timers --no-pager auditty-compact.timer >"$OUT/timers.txt" 2>&1
result timer_listed "$(grep -c auditty-compact.timer "$OUT/timers.txt")"
result timer_next "$(systemctl show -p NextElapseUSecRealtime --value auditty-compact.timer)"

for unit in ship ingest; do
  result "${unit}_restarts" "$(systemctl show -p NRestarts --value "auditty-$unit.service")"
done
systemctl stop auditty-ship.service auditty-ingest.service
result stop $?
for unit in ship ingest; do
  result "${unit}_state" "$(systemctl show -p ActiveState --value "auditty-$unit.service")"
  result "${unit}_result" "$(systemctl show -p Result --value "auditty-$unit.service")"
  code="$(systemctl show -p ExecMainCode --value "auditty-$unit.service")"
  case "$code" in 1) code=exited ;; 2) code=killed ;; 3) code=dumped ;; esac
  result "${unit}_main_exit" "$code $(systemctl show -p ExecMainStatus --value "auditty-$unit.service")"
done
"#;

/// What the guest must report. `timer_next` is checked on its own (it is a date).
const EXPECTED: &[(&str, &str)] = &[
    ("pid1", "systemd"),
    ("dpkg_install", "0"),
    ("ship_enabled_after_install", "disabled"),
    ("ingest_enabled_after_install", "disabled"),
    ("compact_timer_enabled_after_install", "disabled"),
    ("compact_timer_active_after_install", "inactive"),
    ("broker", "0"),
    ("config_brokers", "1"),
    ("config_source", "1"),
    ("config_check_ship", "0"),
    ("config_check_run", "0"),
    ("enable", "0"),
    ("ship_enabled", "enabled"),
    ("ship_active", "active"),
    ("ingest_enabled", "enabled"),
    ("ingest_active", "active"),
    ("ship_program", "/usr/bin/auditty-agent"),
    ("ship_user", "root"),
    ("ship_no_new_privs", "1"),
    ("ship_cap_bnd", "0000000000000000"),
    ("ship_cap_eff", "0000000000000000"),
    ("ship_seccomp", "2"),
    ("ship_root_mount", "ro"),
    ("ship_writable_mount", "rw"),
    ("ship_tmp_private", "yes"),
    ("ingest_program", "/usr/bin/auditty-ingest"),
    ("ingest_user", "auditty"),
    ("ingest_no_new_privs", "1"),
    ("ingest_cap_bnd", "0000000000000000"),
    ("ingest_cap_eff", "0000000000000000"),
    ("ingest_seccomp", "2"),
    ("ingest_root_mount", "ro"),
    ("ingest_writable_mount", "rw"),
    ("ingest_tmp_private", "yes"),
    ("session_exit", "0"),
    ("session_echoed", "yes"),
    ("spool_shipped", "0"),
    ("session_listed", "0"),
    ("verify", "0"),
    ("verify_complete", "yes"),
    ("export_has_marker", "yes"),
    ("store_owner", "auditty"),
    ("ledger_head_stored", "0"),
    ("verify_all", "0"),
    ("compact_start", "0"),
    ("compact_result", "success"),
    ("timer_enable", "0"),
    ("timer_active", "active"),
    ("timer_listed", "1"),
    ("ship_restarts", "0"),
    ("ingest_restarts", "0"),
    ("stop", "0"),
    ("ship_state", "inactive"),
    ("ship_result", "success"),
    ("ship_main_exit", "exited 0"),
    ("ingest_state", "inactive"),
    ("ingest_result", "success"),
    ("ingest_main_exit", "exited 0"),
];

/// The image directory `scripts/install-vm-image` printed (scripts/test exports it).
fn vm_image() -> PathBuf {
    let dir = std::env::var_os("AUDITTY_VM_IMAGE")
        .map(PathBuf::from)
        .expect(
            "AUDITTY_VM_IMAGE is not set: export AUDITTY_VM_IMAGE=\"$(scripts/install-vm-image)\" \
         (scripts/test does)",
        );
    for f in ["vmlinuz", "initrd.img", "root.raw"] {
        assert!(
            dir.join(f).is_file(),
            "{} has no {f}: AUDITTY_VM_IMAGE must be the directory scripts/install-vm-image prints",
            dir.display()
        );
    }
    dir
}

/// KVM that can boot a stock kernel: /dev/kvm opens read-write and is backed by the CPU's
/// virtualization (kvm_intel, kvm_amd). A /dev/kvm of PVM (kvm_pvm, as on some cloud
/// VMs) runs only kernels built for it: Debian's hangs there without a line, so TCG.
fn kvm() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
        && ["kvm_intel", "kvm_amd"]
            .iter()
            .any(|m| Path::new("/sys/module").join(m).exists())
}

fn ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", show(&out));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The last `n` lines of `text`, for messages.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn installed_units_start_and_run_under_systemd_in_a_vm() {
    let image = vm_image();
    for tool in ["qemu-system-x86_64", "qemu-img"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is missing: run scripts/install-test-deps");
    }
    let scratch = tempfile::Builder::new()
        .prefix("auditty-vm-")
        .tempdir()
        .expect("tempdir");
    let dir = scratch.path();

    // The second disk: a tar of the packages, the broker and the script, written raw.
    let input = dir.join("in");
    build_packages(&input.join("debs"));
    let run = input.join("run");
    std::fs::write(&run, GUEST).expect("write the guest script");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tansu = tansu_bin();
    ok(Command::new("tar")
        .arg("-cf")
        .arg(dir.join("data.tar"))
        .arg("-C")
        .arg(&input)
        .args(["run", "debs", "-C"])
        .arg(tansu.parent().expect("tansu's directory"))
        .arg(tansu.file_name().expect("tansu's name")));
    // The guest writes the root disk's changes here, never to the cached image.
    ok(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(image.join("root.raw"))
        .arg(dir.join("overlay.qcow2")));
    // The third disk, which the guest writes its results onto as a tar.
    let out_disk = dir.join("out.raw");
    std::fs::File::create(&out_disk)
        .and_then(|f| f.set_len(128 << 20))
        .expect("the results disk");

    let kvm = kvm();
    let (accel, limit) = if kvm {
        (["-accel", "kvm", "-cpu", "host"], Duration::from_secs(300))
    } else {
        (["-accel", "tcg", "-cpu", "max"], Duration::from_secs(900))
    };
    let console = dir.join("console.log");
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-machine", "q35", "-m", "2048", "-smp", "2"])
        .args(accel)
        .args(["-nographic", "-vga", "none", "-nic", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(image.join("initrd.img"))
        // panic=-1 and -no-reboot: a guest that panics ends qemu instead of hanging.
        .args(["-append", "root=/dev/vda rw console=ttyS0 quiet panic=-1"])
        .arg("-drive")
        .arg(format!(
            "file={},format=qcow2,if=virtio",
            dir.join("overlay.qcow2").display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            dir.join("data.tar").display()
        ))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", out_disk.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&console).expect("console log"))
        .stderr(std::fs::File::create(dir.join("qemu.log")).expect("qemu log"));
    let started = Instant::now();
    let mut child = qemu
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {qemu:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the VM ({}) did not power off within {limit:?}; console:\n{}",
                if kvm { "KVM" } else { "TCG" },
                tail(&read(&console), 200)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "the VM ({}) ran for {:.1?}",
        if kvm { "KVM" } else { "TCG" },
        started.elapsed()
    );
    assert!(
        status.success(),
        "qemu failed with {status}: {}\nconsole:\n{}",
        read(&dir.join("qemu.log")),
        tail(&read(&console), 200)
    );

    let results = dir.join("results");
    std::fs::create_dir_all(&results).expect("results dir");
    ok(Command::new("tar")
        .arg("-xf")
        .arg(&out_disk)
        .arg("-C")
        .arg(&results));
    let log = read(&results.join("run.log"));
    let context = || {
        format!(
            "guest output:\n{log}\njournal of the units:\n{}\nconsole:\n{}",
            read(&results.join("journal.txt")),
            tail(&read(&console), 60)
        )
    };
    assert!(
        !log.is_empty(),
        "the guest wrote no results onto its third disk\n{}",
        context()
    );
    let reported: BTreeMap<&str, &str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once('='))
        .collect();
    for (name, want) in EXPECTED {
        assert_eq!(
            reported.get(name).copied(),
            Some(*want),
            "RESULT {name}\n{}",
            context()
        );
    }
    // Daily after 01:30 UTC (RandomizedDelaySec= up to 15 minutes), as the timer says.
    let next = reported.get("timer_next").copied().unwrap_or_default();
    assert!(
        next.contains(" 01:3") || next.contains(" 01:4"),
        "auditty-compact.timer next runs at {next:?}\n{}",
        context()
    );
    assert_eq!(
        read(&results.join("status")).trim(),
        "0",
        "the guest script failed\n{}",
        context()
    );
}
