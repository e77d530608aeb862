//! A fleet of interop servers of one kind on 127.0.0.1, ephemeral ports: tonic servers on a
//! runtime of their own, or Python grpcio servers as child processes. Everything stops when
//! the fleet drops.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::runtime::Runtime;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::call_events::CallEventsLayer;
use super::echo_metadata::EchoMetadataLayer;
use super::events::Events;
use super::message_flags::MessageFlagsLayer;
use super::pb::test_service_server::TestServiceServer;
use super::python::{self, PythonServer};
use super::service::InteropService;

/// Which implementation serves the interop service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// [`InteropService`] on tonic.
    Tonic,
    /// `testkit/interop/server.py` on Python grpcio.
    Python,
}

/// `n` running interop servers of one kind, sharing one [`Events`] log.
#[derive(Debug)]
pub struct Fleet {
    kind: ServerKind,
    addrs: Vec<SocketAddr>,
    events: Events,
    runtime: Option<Runtime>,
    _children: Vec<PythonServer>,
}

impl Fleet {
    /// Starts `n` servers of `kind`. `Ok(None)` for Python when no interpreter has grpcio
    /// (after a notice; under `CI=true` that panics instead, see [`python::available`]).
    pub fn start(kind: ServerKind, n: usize) -> io::Result<Option<Fleet>> {
        match kind {
            ServerKind::Tonic => Fleet::tonic(n).map(Some),
            ServerKind::Python => match python::available() {
                Some((interpreter, _version)) => Fleet::python(&interpreter, n).map(Some),
                None => Ok(None),
            },
        }
    }

    fn tonic(n: usize) -> io::Result<Fleet> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("interop-tonic")
            .enable_all()
            .build()?;
        let events = Events::default();
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            listener.set_nonblocking(true)?;
            addrs.push(listener.local_addr()?);
            let service = TestServiceServer::new(InteropService)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip);
            let events = events.clone();
            runtime.spawn(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => return eprintln!("interop tonic server: {e}"),
                };
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                let served = Server::builder()
                    .layer(CallEventsLayer::new(events))
                    .layer(EchoMetadataLayer)
                    .layer(MessageFlagsLayer)
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await;
                if let Err(e) = served {
                    eprintln!("interop tonic server: {e}");
                }
            });
        }
        Ok(Fleet {
            kind: ServerKind::Tonic,
            addrs,
            events,
            runtime: Some(runtime),
            _children: Vec::new(),
        })
    }

    fn python(interpreter: &std::path::Path, n: usize) -> io::Result<Fleet> {
        let events = Events::default();
        let children = (0..n)
            .map(|_| PythonServer::start(interpreter, &events))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Fleet {
            kind: ServerKind::Python,
            addrs: children.iter().map(PythonServer::addr).collect(),
            events,
            runtime: None,
            _children: children,
        })
    }

    /// Which implementation serves.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The servers' addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// What the servers saw happen to calls.
    pub fn events(&self) -> &Events {
        &self.events
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Stops the tonic servers and closes their connections, without blocking (a fleet
        // may drop inside a test's runtime).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
