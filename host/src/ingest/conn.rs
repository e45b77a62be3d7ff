//! Connections, before and around requests, the same on both ports (OTLP/HTTP with the API,
//! OTLP/gRPC), each port with a budget of its own ([`Port`]), so that holding connections costs
//! a client a credential and cannot starve the other port:
//! - open connections are capped per port (`max_connections`: a slot is taken before `accept`,
//!   so at the cap new connections wait in the kernel's backlog) and per client address
//!   (`max_connections_per_address`, IPv6 by /64; a trusted proxy's own address is not capped);
//!   past its address's share a new connection is closed at once;
//! - a new connection must send its first bytes within `header_read_timeout_ms` (hyper's
//!   HTTP/1-or-2 detection has no deadline of its own), every HTTP/1 request its headers within
//!   it, and a request on it must authenticate (or, on the HTTP port, be answered without an
//!   error) within the same deadline, else it is closed once no request is in flight;
//! - a connection without a request in flight for `idle_timeout_ms` is closed (HTTP/2: GOAWAY;
//!   hyper's HTTP/2 has no idle limit, and a live client answers the keep-alive pings);
//! - past `max_connection_age_ms` a connection is asked to go (GOAWAY) and closed once its
//!   requests are answered (at most [`GRACE`] later);
//! - HTTP/2: streams per connection, reset streams (the client's and the host's own, the
//!   "MadeYouReset" attack) capped, keep-alive pings to find dead peers.
//!
//! Why each connection was closed is counted in `/metrics` (`antenna_connections_closed`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower_service::Service;

use crate::config::Limits;
use crate::metrics::{ClosedLabels, Metrics, PortLabels};

/// HTTP/2 keep-alive: a ping after this long without frames; no answer within
/// [`KEEPALIVE_TIMEOUT`] closes the connection.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection asked to go (idle, too old, the host stopping) may take to finish
/// its requests before it is closed.
pub const GRACE: Duration = Duration::from_secs(30);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which port a [`Port`] serves, and what that changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP and the API, HTTP/1 and HTTP/2: a request answered without an error (the UI's
    /// files, `/healthz`) vouches for its connection like an authenticated one.
    Http,
    /// OTLP/gRPC, HTTP/2 only: every answer is HTTP 200, so only authentication vouches.
    Grpc,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

/// One listening port's connection budget: the cap on its open connections and each client
/// address's share of them.
pub struct Port {
    protocol: Protocol,
    slots: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    trusted_proxies: Vec<IpNet>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Port {
    pub fn new(protocol: Protocol, limits: &Limits, trusted_proxies: &[IpNet], metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Port {
            protocol,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_address: Mutex::new(HashMap::new()),
            trusted_proxies: trusted_proxies.to_vec(),
            limits: limits.clone(),
            metrics,
        })
    }

    fn closed(&self, reason: &'static str) {
        self.metrics.connections_closed.get_or_create(&ClosedLabels { port: self.protocol.label(), reason }).inc();
    }

    /// A place for a connection from `peer` within its address's share, if there is one.
    fn share(self: &Arc<Self>, peer: IpAddr) -> Option<Share> {
        let peer = peer.to_canonical();
        if self.trusted_proxies.iter().any(|net| net.contains(&peer)) {
            return Some(Share { port: self.clone(), address: None });
        }
        let address = address_key(peer);
        let mut counts = self.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(address).or_insert(0);
        if *count >= self.limits.max_connections_per_address.max(1) {
            return None;
        }
        *count += 1;
        Some(Share { port: self.clone(), address: Some(address) })
    }

    /// Take a slot under the cap, accept one connection and give it its address's share
    /// (past the share it is closed and the next one accepted). Errors such as running out of
    /// file descriptors are logged and retried after a pause.
    async fn accept(self: &Arc<Self>, listener: &TcpListener) -> Option<(Conn, SocketAddr)> {
        let slot = self.slots.clone().acquire_owned().await.ok()?;
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(share) = self.share(peer.ip()) else {
                        self.closed("per_address");
                        tracing::debug!(%peer, port = self.protocol.label(), "too many connections from one address");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let open = self.metrics.connections_open.get_or_create(&PortLabels { port: self.protocol.label() });
                    open.inc();
                    return Some((Conn { stream, _slot: slot, _share: share }, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn builder(&self) -> Builder<TokioExecutor> {
        let limits = &self.limits;
        let mut builder = Builder::new(TokioExecutor::new());
        if self.protocol == Protocol::Grpc {
            builder = builder.http2_only();
        } else {
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_pending_accept_reset_streams(limits.max_pending_reset_streams)
            .max_local_error_reset_streams(limits.max_local_reset_streams)
            .keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT);
        if self.protocol == Protocol::Http {
            builder.http2().enable_connect_protocol();
        }
        builder
    }
}

/// Connections are counted per address, IPv6 ones per /64 (one host's share).
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

/// A connection's place in its address's share, given back when it closes.
struct Share {
    port: Arc<Port>,
    /// `None`: a trusted proxy, not counted.
    address: Option<IpAddr>,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.port.metrics.connections_open.get_or_create(&PortLabels { port: self.port.protocol.label() }).dec();
        let Some(address) = self.address else { return };
        let mut counts = self.port.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&address);
            }
        }
    }
}

/// An accepted connection; it holds its place under the caps until it is closed.
pub struct Conn {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _share: Share,
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What a request knows of its connection (a request extension on both ports): the peer, and
/// [`ConnHandle::vouch`], which authentication calls so the connection may stay open.
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnState>);

struct ConnState {
    peer: SocketAddr,
    opened: Instant,
    vouched: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended.
    last_active_ms: AtomicU64,
}

impl ConnHandle {
    fn new(peer: SocketAddr) -> Self {
        ConnHandle(Arc::new(ConnState {
            peer,
            opened: Instant::now(),
            vouched: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
        }))
    }

    /// The TCP peer (not the client a trusted proxy forwards).
    pub fn peer(&self) -> SocketAddr {
        self.0.peer
    }

    /// A request on this connection authenticated: it is no longer closed at the deadline for
    /// unauthenticated connections.
    pub fn vouch(&self) {
        self.0.vouched.store(true, Ordering::Relaxed);
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Why the connection must be closed now, if it must. A request in flight is never cut off
    /// (a browser may send one on a connection that so far had only refusals, such as the
    /// sign-in after a 401 "who am I"); an unauthenticated one is closed between requests.
    fn expired(&self, limits: &Limits) -> Option<Close> {
        let age = self.elapsed_ms();
        let idle_now = self.0.in_flight.load(Ordering::Relaxed) == 0;
        if idle_now && !self.0.vouched.load(Ordering::Relaxed) && age > limits.header_read_timeout_ms {
            return Some(Close::Unauthenticated);
        }
        if age > limits.max_connection_age_ms {
            return Some(Close::MaxAge);
        }
        let idle = age.saturating_sub(self.0.last_active_ms.load(Ordering::Relaxed));
        if idle_now && idle > limits.idle_timeout_ms {
            return Some(Close::Idle);
        }
        None
    }
}

/// Why the host closes a connection it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// No request authenticated within the first-bytes deadline, none in flight: closed at once.
    Unauthenticated,
    /// No request in flight for `idle_timeout_ms`: asked to go.
    Idle,
    /// Older than `max_connection_age_ms`: asked to go.
    MaxAge,
    /// The host is stopping: asked to go.
    Shutdown,
}

impl Close {
    fn label(self) -> &'static str {
        match self {
            Close::Unauthenticated => "unauthenticated",
            Close::Idle => "idle",
            Close::MaxAge => "max_age",
            Close::Shutdown => "shutdown",
        }
    }
}

/// Vouch for the connection a request came on (see [`ConnHandle::vouch`]), if it has one.
pub fn vouch(extensions: &axum::http::Extensions) {
    if let Some(conn) = extensions.get::<ConnHandle>() {
        conn.vouch();
    }
}

/// Counts a request in flight on its connection while it lives.
struct InFlight(ConnHandle);

impl InFlight {
    fn enter(conn: &ConnHandle) -> Self {
        conn.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.0.last_active_ms.store(conn.elapsed_ms(), Ordering::Relaxed);
        conn.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's service: hands each request its [`ConnHandle`] and counts it in flight.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    conn: ConnHandle,
    protocol: Protocol,
}

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.conn.clone());
        request.extensions_mut().insert(axum::extract::ConnectInfo(self.conn.peer()));
        let in_flight = InFlight::enter(&self.conn);
        let answered = self.inner.call(request);
        let vouch_on_answer = self.protocol == Protocol::Http;
        Box::pin(async move {
            let response = answered.await;
            if vouch_on_answer && response.as_ref().is_ok_and(|r| r.status().as_u16() < 400) {
                in_flight.0.vouch();
            }
            drop(in_flight);
            response
        })
    }
}

/// Whether a new connection sends, within `within`, enough to tell HTTP/1 from HTTP/2 (the whole
/// HTTP/2 preface, or a first byte that differs from it). Only peeks: nothing is consumed.
async fn first_bytes(conn: &Conn, within: Duration) -> bool {
    let wait = async {
        let mut buf = [0u8; H2_PREFACE.len()];
        loop {
            match conn.stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] => return true,
                // A part of the HTTP/2 preface: the rest is on its way.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(within, wait).await.unwrap_or(false)
}

/// Serve the service `make` builds for each peer on `listener` under `port`'s rules until
/// `shutdown`, then stop accepting, let the requests in flight finish and return when every
/// connection is closed.
pub async fn serve<M, S, B>(port: Arc<Port>, listener: TcpListener, mut make: M, shutdown: impl Future<Output = ()>)
where
    M: FnMut(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Dropping `stop` tells every connection to finish; each holds an `alive` receiver.
    let (stop, stopping) = watch::channel(());
    let (alive, _) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (conn, peer) = tokio::select! {
            accepted = port.accept(&listener) => match accepted {
                Some(accepted) => accepted,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let service = make(peer);
        let stopping = stopping.clone();
        let alive = alive.subscribe();
        let port = port.clone();
        tokio::spawn(async move {
            let _alive = alive;
            drive(&port, conn, peer, service, stopping).await;
        });
    }
    drop(listener);
    drop(stop);
    alive.closed().await;
}

/// One connection from its first bytes to its close.
async fn drive<S, B>(port: &Port, conn: Conn, peer: SocketAddr, service: S, mut stopping: watch::Receiver<()>)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = &port.limits;
    let ready = tokio::select! {
        ready = first_bytes(&conn, Duration::from_millis(limits.header_read_timeout_ms)) => ready,
        _ = stopping.changed() => return,
    };
    if !ready {
        port.closed("no_first_bytes");
        return;
    }
    let handle = ConnHandle::new(peer);
    let service = Tracked { inner: service, conn: handle.clone(), protocol: port.protocol };
    let builder = port.builder();
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(conn), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    // Often enough to hold each deadline within a quarter of the shortest.
    let shortest = limits.header_read_timeout_ms.min(limits.idle_timeout_ms).min(limits.max_connection_age_ms);
    let mut checks = tokio::time::interval(Duration::from_millis((shortest / 4).clamp(20, 1_000)));
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let close = loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, %peer, "connection ended");
                }
                return;
            }
            _ = stopping.changed() => break Close::Shutdown,
            _ = checks.tick() => {
                if let Some(close) = handle.expired(limits) {
                    break close;
                }
            }
        }
    };
    port.closed(close.label());
    if close == Close::Unauthenticated {
        tracing::debug!(%peer, port = port.protocol.label(), "closing a connection that did not authenticate in time");
        return;
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(GRACE, connection).await;
}
