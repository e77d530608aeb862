//! The Python grpcio interop server (`testkit/interop/server.py`) as a child process: finding
//! an interpreter with `grpcio` and `grpcio-tools`, starting the server on a port it picks
//! on 127.0.0.1, reading its port and its events, and killing it.
//!
//! The interpreter is `$TOWER_LB_PYTHON`, else `python3`. Where it lacks grpcio the tests
//! print a notice and pass, except under `CI=true`, where they fail (`.ci/run` installs it).

use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::events::Events;

/// The environment variable naming the Python interpreter to use.
pub const PYTHON_ENV: &str = "TOWER_LB_PYTHON";

/// How long a server may take to say its port (it compiles the proto first).
const START_WITHIN: Duration = Duration::from_secs(30);

/// The server script.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/server.py");

/// The folder the script loads `interop/test.proto` from.
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// The interpreter the tests use: `$TOWER_LB_PYTHON`, else `python3`.
pub fn interpreter() -> PathBuf {
    std::env::var_os(PYTHON_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

/// The interpreter and its grpcio version, when it imports `grpc` and `grpc_tools`; else
/// `None` with a notice, or a panic under `CI=true`. Checked once per test binary.
pub fn available() -> Option<(PathBuf, String)> {
    static FOUND: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();
    match FOUND.get_or_init(probe) {
        Ok(found) => Some(found.clone()),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "{why}: the interop tests need Python with grpcio and grpcio-tools \
             (pip install grpcio grpcio-tools; point {PYTHON_ENV} at the interpreter); .ci/run installs them"
        ),
        Err(why) => {
            eprintln!(
                "NOTICE: {why}; Python interop test skipped (pip install grpcio grpcio-tools, \
                 and set {PYTHON_ENV} to that interpreter, to run it)"
            );
            None
        }
    }
}

fn probe() -> Result<(PathBuf, String), String> {
    let python = interpreter();
    let mut child = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools; print(grpc.__version__)"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{} did not start ({e})", python.display()))?;
    let deadline = Instant::now() + START_WITHIN;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not answer", python.display()));
            }
        }
    };
    if !status.success() {
        return Err(format!(
            "{} cannot import grpc and grpc_tools",
            python.display()
        ));
    }
    let mut version = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut version);
    }
    Ok((python, version.trim().to_owned()))
}

/// A running Python interop server. Killed on drop (it also exits when its standard input
/// closes, should the test process die first).
#[derive(Debug)]
pub struct PythonServer {
    child: Child,
    // Held open: the server exits when it closes.
    _stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl PythonServer {
    /// Starts `server.py` with `python`; waits (bounded) for its port. Its events go to
    /// `events`.
    pub fn start(python: &Path, events: &Events) -> io::Result<Self> {
        let mut child = Command::new(python)
            .arg(SCRIPT)
            .arg(PROTO_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            return Err(io::Error::other("no stdout pipe"));
        };
        let (port_tx, port_rx) = mpsc::channel();
        let events = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("port"), Some(port), None) => {
                        let _ = port_tx.send(port.parse::<u16>().ok());
                    }
                    (Some("event"), Some(what), Some(method)) => events.push(what, method),
                    _ => eprintln!("python interop server: {line}"),
                }
            }
        });
        let mut server = PythonServer {
            child,
            _stdin: stdin,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        };
        match port_rx.recv_timeout(START_WITHIN) {
            Ok(Some(port)) => {
                server.addr.set_port(port);
                Ok(server)
            }
            // Dropping `server` kills the child.
            Ok(None) => Err(io::Error::other("the Python server said a bad port")),
            Err(_) => Err(io::Error::other(
                "the Python server did not say its port (see its stderr above)",
            )),
        }
    }

    /// Where it serves.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
