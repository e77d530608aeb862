//! An in-process DNS server on 127.0.0.1 (UDP and TCP, one port) for the fault shapes a real
//! server does not give on demand: SERVFAIL, REFUSED, silence, garbage bytes, and UDP answers
//! truncated on purpose while TCP answers in full. It counts the queries it receives.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers from its records (NXDOMAIN for unknown names).
    Answer,
    /// SERVFAIL to everything.
    ServFail,
    /// REFUSED to everything.
    Refused,
    /// No answer at all.
    Silent,
    /// The query's ID followed by bytes that are not a DNS message.
    Garbage,
    /// Over UDP an empty answer with the TC bit; over TCP the full answer.
    TruncateUdp,
    /// SERVFAIL to queries of this type; the others answered from the records.
    ServFailFor(RecordType),
}

#[derive(Debug, Default)]
struct Records {
    records: Vec<Record>,
}

struct State {
    mode: Mutex<Mode>,
    records: Mutex<Records>,
    udp_queries: AtomicUsize,
    tcp_queries: AtomicUsize,
    srv_queries: AtomicUsize,
}

/// The server; stops when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

fn name(s: &str) -> Name {
    Name::from_str(s).expect("a valid test name")
}

impl FaultServer {
    /// Starts on a free port of 127.0.0.1 (inside a tokio runtime).
    pub async fn start() -> FaultServer {
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Answer),
            records: Mutex::default(),
            udp_queries: AtomicUsize::new(0),
            tcp_queries: AtomicUsize::new(0),
            srv_queries: AtomicUsize::new(0),
        });
        // Find a port free for both protocols.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let udp_task = tokio::spawn(serve_udp(udp, state.clone()));
        let tcp_task = tokio::spawn(serve_tcp(tcp, state.clone()));
        FaultServer {
            addr,
            state,
            tasks: vec![udp_task, tcp_task],
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Replaces every record.
    pub fn set_records(&self, records: Vec<Record>) {
        self.state.records.lock().unwrap().records = records;
    }

    /// SRV queries received so far (each resolution of an SRV name sends one, plus one per
    /// retry).
    pub fn srv_queries(&self) -> usize {
        self.state.srv_queries.load(Ordering::SeqCst)
    }

    /// Queries received so far (UDP, TCP).
    pub fn queries(&self) -> (usize, usize) {
        (
            self.state.udp_queries.load(Ordering::SeqCst),
            self.state.tcp_queries.load(Ordering::SeqCst),
        )
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// An SRV record.
pub fn srv(owner: &str, ttl: u32, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::SRV(SRV::new(priority, weight, port, name(target))),
    )
}

/// An A or AAAA record.
pub fn addr(owner: &str, ttl: u32, ip: &str) -> Record {
    let data = match ip.parse().expect("an IP address") {
        std::net::IpAddr::V4(v4) => RData::A(A(v4)),
        std::net::IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name(owner), ttl, data)
}

/// The answer to `query` (bytes), or `None` to stay silent.
fn respond(query: &[u8], state: &State, udp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok();
    let asks_srv = request
        .iter()
        .flat_map(|r| &r.queries)
        .any(|q| q.query_type() == RecordType::SRV);
    if asks_srv {
        state.srv_queries.fetch_add(1, Ordering::SeqCst);
    }
    let mode = *state.mode.lock().unwrap();
    if mode == Mode::Silent {
        return None;
    }
    if mode == Mode::Garbage {
        // The query's ID (so the client reads it as the answer), then a header and body
        // that do not parse.
        let mut garbage = query.get(..2).unwrap_or(&[0, 0]).to_vec();
        garbage.extend_from_slice(b"\x81\x80\x00\x01\x00\x05 this is not DNS at all");
        return Some(garbage);
    }
    let request = request?;
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.authoritative = true;
    response.add_queries(request.queries.iter().cloned());
    let asks = |t: RecordType| request.queries.iter().any(|q| q.query_type() == t);
    let code = match mode {
        Mode::ServFail => Some(ResponseCode::ServFail),
        Mode::ServFailFor(t) if asks(t) => Some(ResponseCode::ServFail),
        Mode::Refused => Some(ResponseCode::Refused),
        _ => None,
    };
    if let Some(code) = code {
        response.metadata.response_code = code;
        return response.to_vec().ok();
    }
    if mode == Mode::TruncateUdp && udp {
        response.metadata.truncation = true;
        return response.to_vec().ok();
    }
    let records = state.records.lock().unwrap();
    let mut known_name = false;
    for q in &request.queries {
        for r in &records.records {
            if r.name == *q.name() {
                known_name = true;
                if r.record_type() == q.query_type() || q.query_type() == RecordType::ANY {
                    response.add_answer(r.clone());
                }
            }
        }
    }
    if !known_name {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    let bytes = response.to_vec().ok()?;
    // Like a real server: an answer too big for the client's UDP buffer goes out truncated.
    let max_udp = request
        .edns
        .as_ref()
        .map_or(512, |edns| usize::from(edns.max_payload()));
    if udp && bytes.len() > max_udp {
        return response.truncate().to_vec().ok();
    }
    Some(bytes)
}

/// Most queries (or connections) one server takes: bounded, like every loop in the tests.
const MAX_QUERIES: usize = 100_000;

async fn serve_udp(socket: UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 4096];
    for _ in 0..MAX_QUERIES {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        state.udp_queries.fetch_add(1, Ordering::SeqCst);
        if let Some(answer) = respond(&buf[..n], &state, true) {
            let _ = socket.send_to(&answer, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, state: Arc<State>) {
    for _ in 0..MAX_QUERIES {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            // Bounded: a connection serves at most this many queries.
            for _ in 0..64 {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                state.tcp_queries.fetch_add(1, Ordering::SeqCst);
                let Some(answer) = respond(&query, &state, false) else {
                    continue;
                };
                let Ok(len) = u16::try_from(answer.len()) else {
                    return;
                };
                if stream.write_all(&len.to_be_bytes()).await.is_err()
                    || stream.write_all(&answer).await.is_err()
                {
                    return;
                }
            }
        });
    }
}
