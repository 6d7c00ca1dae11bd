//! What a host says about itself: the one script `host_status` and the
//! heartbeat run ([`STATUS_SCRIPT`]), and its output read into a
//! [`HostStatusReport`].

use std::collections::BTreeMap;

use serde::Serialize;

/// What `host_status` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStatusReport {
    /// Host name as the machine says.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// Distribution.
    pub os: String,
    /// Uptime in seconds.
    pub uptime_seconds: u64,
    /// 1, 5 and 15 minute load.
    pub load: Vec<f64>,
    /// CPUs.
    pub cpus: u32,
    /// Memory total and available, MiB.
    pub memory_total_mib: u64,
    /// Available memory, MiB.
    pub memory_available_mib: u64,
    /// Filesystems: mount, size, used, use%.
    pub disks: Vec<DiskUsage>,
    /// Failed systemd units, if systemd runs.
    pub failed_units: Vec<String>,
}

/// One filesystem.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    /// Mount point.
    pub mount: String,
    /// Size, MiB.
    pub size_mib: u64,
    /// Used, MiB.
    pub used_mib: u64,
    /// Use, percent.
    pub use_percent: u32,
    /// Inodes used, percent (when known).
    pub inodes_percent: Option<u32>,
}

/// Prints `key=value` lines [`parse_status`] reads.
pub const STATUS_SCRIPT: &str = r#"echo "hostname=$(hostname)"
echo "kernel=$(uname -r)"
. /etc/os-release 2>/dev/null; echo "os=${PRETTY_NAME:-unknown}"
echo "uptime=$(cut -d' ' -f1 /proc/uptime)"
echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
awk '/^MemTotal:/{print "memtotal="$2} /^MemAvailable:/{print "memavail="$2}' /proc/meminfo
df -P -m -x devtmpfs -x overlay -x squashfs 2>/dev/null | awk 'NR>1 && $6 !~ /^\/(dev|run|sys|proc)(\/|$)/{print "disk="$6" "$2" "$3" "$5}'
df -P -i -x devtmpfs -x overlay -x squashfs 2>/dev/null | awk 'NR>1 && $6 !~ /^\/(dev|run|sys|proc)(\/|$)/{print "inode="$6" "$5}'
if command -v systemctl >/dev/null 2>&1; then systemctl list-units --failed --no-legend --plain 2>/dev/null | awk '{print "failed="$1}'; fi
true"#;

/// Reads [`STATUS_SCRIPT`]'s output; unknown or broken lines are skipped.
pub fn parse_status(text: &str) -> HostStatusReport {
    let mut r = HostStatusReport::default();
    let mut inodes: BTreeMap<String, u32> = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let pct = |s: &str| s.trim_end_matches('%').parse::<u32>().ok();
        match k {
            "hostname" => r.hostname = v.into(),
            "kernel" => r.kernel = v.into(),
            "os" => r.os = v.into(),
            "uptime" => r.uptime_seconds = v.parse::<f64>().map_or(0, |f| f as u64),
            "load" => {
                r.load = v
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            }
            "cpus" => r.cpus = v.trim().parse().unwrap_or(0),
            "memtotal" => r.memory_total_mib = v.trim().parse::<u64>().unwrap_or(0) / 1024,
            "memavail" => r.memory_available_mib = v.trim().parse::<u64>().unwrap_or(0) / 1024,
            "disk" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                if let [mount, size, used, p] = f.as_slice() {
                    r.disks.push(DiskUsage {
                        mount: (*mount).into(),
                        size_mib: size.parse().unwrap_or(0),
                        used_mib: used.parse().unwrap_or(0),
                        use_percent: pct(p).unwrap_or(0),
                        inodes_percent: None,
                    });
                }
            }
            "inode" => {
                if let Some((m, p)) = v.split_once(' ') {
                    if let Some(p) = pct(p) {
                        inodes.insert(m.into(), p);
                    }
                }
            }
            "failed" => r.failed_units.push(v.into()),
            _ => {}
        }
    }
    for d in &mut r.disks {
        d.inodes_percent = inodes.get(&d.mount).copied();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_parsing() {
        let r = parse_status(
            "hostname=web-1\nkernel=6.1.0\nos=Debian GNU/Linux 12 (bookworm)\nuptime=3600.5\nload=0.50 0.40 0.30\ncpus=2\nmemtotal=2048000\nmemavail=1024000\ndisk=/ 50000 48000 96%\ninode=/ 12%\nfailed=nginx.service\n",
        );
        assert_eq!(r.hostname, "web-1");
        assert_eq!(r.uptime_seconds, 3600);
        assert_eq!(r.load, vec![0.5, 0.4, 0.3]);
        assert_eq!((r.memory_total_mib, r.memory_available_mib), (2000, 1000));
        assert_eq!(r.disks[0].use_percent, 96);
        assert_eq!(r.disks[0].inodes_percent, Some(12));
        assert_eq!(r.failed_units, vec!["nginx.service"]);
    }
}
