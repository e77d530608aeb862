//! Real etcd members on 127.0.0.1, on free ports, in a temporary data directory, and `etcdctl`
//! to write to them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where `etcd` and `etcdctl` are, if installed.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/local/bin", "/usr/sbin"].map(PathBuf::from));
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    Some((find("etcd")?, find("etcdctl")?))
}

/// `None` (with a notice) when etcd is not installed and this is not CI.
fn available() -> Option<(PathBuf, PathBuf)> {
    match binaries() {
        Some(found) => Some(found),
        None if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "etcd/etcdctl not found: the etcd tests need them (Debian: apt-get install -y etcd-server etcd-client); .ci/run installs them"
        ),
        None => {
            eprintln!(
                "NOTICE: etcd/etcdctl not found; skipping this etcd test (Debian: apt-get install -y etcd-server etcd-client)"
            );
            None
        }
    }
}

/// `n` distinct free ports (all held until every one is chosen, so no two are the same).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

struct Member {
    name: String,
    client: SocketAddr,
    child: Option<Child>,
}

/// One etcd member or a cluster of them; killed (and its data removed) on drop.
pub struct Members {
    members: Vec<Member>,
    data: PathBuf,
    etcdctl: PathBuf,
}

impl Members {
    /// A single member.
    pub fn single() -> Option<Members> {
        Self::cluster(1)
    }

    /// `n` members that form one cluster, each healthy before this returns. A port taken by
    /// another process between choosing it and etcd binding it costs one more try.
    pub fn cluster(n: usize) -> Option<Members> {
        let (etcd, etcdctl) = available()?;
        for _ in 0..2 {
            if let Some(members) = Self::try_cluster(n, &etcd, &etcdctl, false) {
                return Some(members);
            }
        }
        Self::try_cluster(n, &etcd, &etcdctl, true)
    }

    fn try_cluster(n: usize, etcd: &Path, etcdctl: &Path, last: bool) -> Option<Members> {
        let (etcd, etcdctl) = (etcd.to_path_buf(), etcdctl.to_path_buf());
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let data = std::env::temp_dir().join(format!(
            "tower-lb-etcd-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("data dir");
        let free = free_ports(2 * n);
        let ports: Vec<(u16, u16)> = free.chunks(2).map(|p| (p[0], p[1])).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let initial = initial.join(",");
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let log = std::fs::File::create(data.join(format!("{name}.log"))).expect("log file");
            let child = Command::new(&etcd)
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(data.join(&name))
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "tower-lb-test"])
                // Fast elections on loopback: a dead leader is replaced within about a second.
                .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                .args(["--logger", "zap", "--log-outputs", "stderr"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start etcd");
            members.push(Member {
                name,
                client: SocketAddr::from(([127, 0, 0, 1], *client)),
                child: Some(child),
            });
        }
        let mut etcd = Members {
            members,
            data,
            etcdctl,
        };
        for i in 0..n {
            if !etcd.wait_healthy(i, last) {
                return None;
            }
        }
        Some(etcd)
    }

    /// Whether the member became healthy; `false` if it exited (e.g. its port was taken),
    /// unless this is the `last` try, which panics instead.
    fn wait_healthy(&mut self, i: usize, last: bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exited = self.members[i]
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            assert!(
                !(exited && last),
                "etcd member {} exited; see {}",
                self.members[i].name,
                self.data.display()
            );
            if exited {
                return false;
            }
            if TcpStream::connect_timeout(&self.members[i].client, Duration::from_millis(200))
                .is_ok()
                && self.ctl_at(&[i], &["endpoint", "health"], None).is_ok()
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {} never became healthy; see {}",
                self.members[i].name,
                self.data.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client URLs of the members, in order.
    pub fn urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://{}", m.client))
            .collect()
    }

    /// A member's client address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].client
    }

    /// `etcdctl` against the live members; its stdout, or its stderr as the error.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let live: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect();
        self.ctl_at(&live, args, None)
    }

    /// `etcdctl` with `stdin` as its standard input.
    pub fn ctl_stdin(&self, args: &[&str], stdin: &[u8]) -> Result<String, String> {
        let live: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect();
        self.ctl_at(&live, args, Some(stdin))
    }

    /// `etcdctl`, retried for up to 15 s (e.g. through an election).
    pub fn ctl_retry(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.ctl(args) {
                Ok(out) => return out,
                Err(e) => assert!(Instant::now() < deadline, "etcdctl {args:?}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ctl_at(
        &self,
        members: &[usize],
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<String, String> {
        let endpoints: Vec<String> = members
            .iter()
            .map(|&i| format!("http://{}", self.members[i].client))
            .collect();
        let mut child = Command::new(&self.etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .args(["--dial-timeout=1s", "--command-timeout=3s"])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The current revision of the store.
    pub fn revision(&self) -> i64 {
        let out = self.ctl_retry(&["get", "--write-out=json", "no-such-key"]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
        json["header"]["revision"].as_i64().expect("a revision")
    }

    /// The keys under a prefix with their values.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let out = self.ctl_retry(&["get", "--prefix", prefix, "--write-out=json"]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
        let b64 = |v: &serde_json::Value| decode_base64(v.as_str().unwrap_or(""));
        json["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| (b64(&kv["key"]), b64(&kv["value"])))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The index of the current leader among the live members.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for i in 0..self.members.len() {
                if self.members[i].child.is_none() {
                    continue;
                }
                if let Ok(out) =
                    self.ctl_at(&[i], &["endpoint", "status", "--write-out=json"], None)
                    && let Ok(json) = serde_json::from_str::<serde_json::Value>(&out)
                {
                    let status = &json[0]["Status"];
                    if status["leader"].as_u64().is_some()
                        && status["leader"] == status["header"]["member_id"]
                    {
                        return i;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no etcd leader");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills a member (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

/// Standard base64 (etcdctl's JSON encodes keys and values so).
fn decode_base64(s: &str) -> String {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
