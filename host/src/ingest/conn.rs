//! Connections, before any request. One cap on open connections for both ports
//! (`Limits::max_connections`): a slot is taken before `accept`, so at the cap the listeners stop
//! accepting and new connections wait in the kernel's backlog. A new connection must send its
//! first bytes within `header_read_timeout_ms` (hyper's HTTP/1-or-2 detection has no deadline of
//! its own), and every HTTP/1 request its headers within it (idle keep-alive time included);
//! beyond, the connection is closed. HTTP/2: streams per connection and pending reset streams
//! capped, keep-alive pings to find dead peers. OTLP/HTTP and the API are served here
//! ([`serve_http`]); OTLP/gRPC is served by tonic from the connections of [`grpc_incoming`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tonic::codegen::Service;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::config::Limits;

/// HTTP/2 keep-alive: a ping after this long without frames; no answer within
/// [`KEEPALIVE_TIMEOUT`] closes the connection.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The open-connection cap shared by both ports.
pub fn connection_slots(limits: &Limits) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(limits.max_connections.max(1)))
}

/// An accepted connection; it holds its place under the cap until it is closed.
pub struct Conn {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
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

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

/// Take a slot under the cap, then accept one connection (errors such as running out of file
/// descriptors are logged and retried after a pause).
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>) -> Option<(Conn, SocketAddr)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return Some((Conn { stream, _slot: slot }, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
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

fn http_builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.max_pending_reset_streams)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .enable_connect_protocol();
    builder
}

/// Serve `router` (OTLP/HTTP and the API) on `listener` until `shutdown`, then stop accepting,
/// let the requests in flight finish and return when every connection is closed.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    slots: Arc<Semaphore>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    // Dropping `stop` tells every connection to finish; each holds an `alive` receiver.
    let (stop, stopping) = watch::channel(());
    let (alive, _) = watch::channel(());
    let first_bytes_within = Duration::from_millis(limits.header_read_timeout_ms);
    let limits = Arc::new(limits);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (conn, peer) = tokio::select! {
            accepted = accept(&listener, &slots) => match accepted {
                Some(accepted) => accepted,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let mut stopping = stopping.clone();
        let alive = alive.subscribe();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let ready = tokio::select! {
                ready = first_bytes(&conn, first_bytes_within) => ready,
                _ = stopping.changed() => false,
            };
            if !ready {
                return;
            }
            let builder = http_builder(&limits);
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(conn), TowerToHyperService::new(service));
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, %peer, "connection ended");
                    }
                    return;
                }
                _ = stopping.changed() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    drop(stop);
    alive.closed().await;
}

/// The connections OTLP/gRPC serves: accepted under the shared cap, passed on once they have
/// sent their HTTP/2 preface (those that send nothing in time are closed). The listener closes
/// when tonic drops the stream.
pub fn grpc_incoming(
    listener: TcpListener,
    slots: Arc<Semaphore>,
    limits: &Limits,
) -> impl futures_util::stream::Stream<Item = Result<Conn, Infallible>> + use<> {
    let first_bytes_within = Duration::from_millis(limits.header_read_timeout_ms);
    let (ready, incoming) = mpsc::channel::<Conn>(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = accept(&listener, &slots) => accepted,
                () = ready.closed() => None,
            };
            let Some((conn, _)) = accepted else { return };
            let ready = ready.clone();
            tokio::spawn(async move {
                if first_bytes(&conn, first_bytes_within).await {
                    let _ = ready.send(conn).await;
                }
            });
        }
    });
    futures_util::stream::unfold(incoming, |mut incoming| async move {
        incoming.recv().await.map(|conn| (Ok(conn), incoming))
    })
}
