//! A real authoritative DNS server for the tests: Knot DNS (`knotd`, Debian package `knot`)
//! on 127.0.0.1 on a free port, serving a zone file the test rewrites while it runs.
//!
//! Without `knotd` the tests print a notice and pass, unless `CI=true`: then they fail and
//! say to install it (`.ci/run` does).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The zone every test server serves.
pub const ORIGIN: &str = "lb.test.";

/// A second zone on the same server, for SRV targets outside the SRV record's zone (the
/// server sends no additional addresses for them: the client must look them up).
pub const OTHER_ORIGIN: &str = "other.test.";

/// One resource record, owner relative to its zone.
#[derive(Debug, Clone)]
pub struct Rr {
    owner: String,
    ttl: u32,
    data: String,
}

/// The records of the test zones.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// The main zone's name instead of [`ORIGIN`] (fixed when the server starts).
    origin: Option<String>,
    records: Vec<Rr>,
    other: Vec<Rr>,
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the main zone (the records of [`srv`](Self::srv) and [`addr`](Self::addr)) as
    /// `origin` (e.g. `cluster.local.`) instead of [`ORIGIN`]. Read by [`Knot::start`] only.
    #[allow(dead_code)] // used by examples/kubernetes_dns.rs, not by the tests
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// An SRV record at `owner` (e.g. `_grpc._tcp.echo`) in `lb.test.` (or the zone's origin); `target` is taken as
    /// written (end it with a dot for an absolute name).
    pub fn srv(
        mut self,
        owner: &str,
        ttl: u32,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> Self {
        self.records.push(Rr {
            owner: owner.into(),
            ttl,
            data: format!("SRV {priority} {weight} {port} {target}"),
        });
        self
    }

    /// An A or AAAA record (by the address family) in `lb.test.`.
    pub fn addr(mut self, owner: &str, ttl: u32, ip: &str) -> Self {
        self.records.push(address(owner, ttl, ip));
        self
    }

    /// An A or AAAA record in `other.test.`.
    pub fn other_addr(mut self, owner: &str, ttl: u32, ip: &str) -> Self {
        self.other.push(address(owner, ttl, ip));
        self
    }

    fn render(records: &[Rr], origin: &str, serial: u32) -> String {
        let mut text = format!(
            "$ORIGIN {origin}\n$TTL 1\n@ 1 IN SOA ns.{origin} admin.{origin} {serial} 3600 600 86400 1\n@ 1 IN NS ns.{origin}\nns 1 IN A 127.0.0.1\n"
        );
        for r in records {
            let _ = writeln!(text, "{} {} IN {}", r.owner, r.ttl, r.data);
        }
        text
    }
}

fn address(owner: &str, ttl: u32, ip: &str) -> Rr {
    let kind = if ip.contains(':') { "AAAA" } else { "A" };
    Rr {
        owner: owner.into(),
        ttl,
        data: format!("{kind} {ip}"),
    }
}

/// Where `knotd` and `knotc` are, if installed.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    Some((find("knotd")?, find("knotc")?))
}

/// `None` (with a notice) when Knot is not installed and this is not CI.
pub fn available() -> Option<(PathBuf, PathBuf)> {
    match binaries() {
        Some(found) => Some(found),
        None if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "knotd/knotc not found: the DNS tests need Knot DNS (Debian: apt-get install -y knot); .ci/run installs it"
        ),
        None => {
            eprintln!(
                "NOTICE: knotd not found; DNS test skipped (install the Debian package `knot` to run it)"
            );
            None
        }
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP right now.
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

static INSTANCES: AtomicU32 = AtomicU32::new(0);

/// A running `knotd`. Killed (and its directory removed) on drop.
pub struct Knot {
    knotd: PathBuf,
    knotc: PathBuf,
    dir: PathBuf,
    addr: SocketAddr,
    origin: String,
    serial: u32,
    child: Option<Child>,
}

impl Knot {
    /// Starts Knot serving `zone`, or returns `None` when it is not installed (see
    /// [`available`]).
    pub fn start(zone: &Zone) -> Option<Knot> {
        let (knotd, knotc) = available()?;
        let dir = std::env::temp_dir().join(format!(
            "tower-lb-knot-{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the knot directory");
        let mut knot = Knot {
            knotd,
            knotc,
            dir,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            origin: zone.origin.clone().unwrap_or_else(|| ORIGIN.into()),
            serial: 1,
            child: None,
        };
        // Another process may take the port between the probe and knotd's bind: try again.
        for _ in 0..5 {
            knot.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            knot.write_zone(zone);
            if knot.spawn() {
                return Some(knot);
            }
        }
        panic!(
            "knotd did not start; see {}",
            knot.dir.join("knotd.log").display()
        );
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `zone` from now on (the zone file is rewritten with a new serial and reloaded;
    /// returns once Knot has loaded it).
    pub fn set_zone(&mut self, zone: &Zone) {
        self.write_zone(zone);
        let status = Command::new(&self.knotc)
            .arg("-c")
            .arg(self.conf())
            .args(["-b", "-t", "10", "zone-reload"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run knotc");
        assert!(status.success(), "knotc zone-reload failed");
    }

    /// Kills the server: from now on queries get no answer (UDP port closed, TCP refused).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with `zone`.
    pub fn restart(&mut self, zone: &Zone) {
        self.kill();
        self.write_zone(zone);
        assert!(self.spawn(), "knotd did not restart on {}", self.addr);
    }

    /// Restarts the server with a zone file that does not load: Knot then answers every
    /// query for the zone with SERVFAIL.
    pub fn restart_servfail(&mut self) {
        self.kill();
        std::fs::write(self.dir.join("lb.zone"), "this is not a zone file {\n")
            .expect("write the broken zone");
        assert!(self.spawn(), "knotd did not restart on {}", self.addr);
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("knot.conf")
    }

    fn write_zone(&mut self, zone: &Zone) {
        self.serial += 1;
        let write = |file: &str, text: String| {
            std::fs::write(self.dir.join(file), text).expect("write a zone file");
        };
        write(
            "lb.zone",
            Zone::render(&zone.records, &self.origin, self.serial),
        );
        write(
            "other.zone",
            Zone::render(&zone.other, OTHER_ORIGIN, self.serial),
        );
    }

    /// Starts knotd and waits (bounded) until it answers on TCP. `false` if it exited.
    fn spawn(&mut self) -> bool {
        let dir = self.dir.display();
        let conf = format!(
            "server:\n    listen: {ip}@{port}\n    rundir: {dir}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
             database:\n    storage: {dir}\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: {dir}\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n\
             zone:\n  - domain: {origin}\n    file: lb.zone\n  - domain: {OTHER_ORIGIN}\n    file: other.zone\n",
            ip = self.addr.ip(),
            port = self.addr.port(),
            origin = self.origin,
        );
        std::fs::write(self.conf(), conf).expect("write knot.conf");
        let log = std::fs::File::create(self.dir.join("knotd.log")).expect("create knotd.log");
        let mut child = Command::new(&self.knotd)
            .arg("-c")
            .arg(self.conf())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .spawn()
            .expect("spawn knotd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default()
    }

    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
