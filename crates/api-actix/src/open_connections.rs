//! The API server's open connections, so a drain can close the idle ones.
//!
//! actix's graceful stop waits for every connection to end, and an idle keep-alive connection
//! only ends when its keep-alive timer fires: one idle client can hold the exit back by that
//! long. A connection in use is left alone: its next answer carries `Connection: close`
//! ([`crate::drain`]) and it ends there, cleanly for its client.
//!
//! Each connection is registered when accepted with a duplicate of its socket (so shutting it
//! down can never reach a descriptor the kernel has reused for something else), and leaves
//! the registry when actix drops the connection. A request marks its connection busy from the
//! first middleware until its response body has been written or dropped, and counts itself.
//! During a drain, [`close_idle`] runs every [`IDLE_AFTER`]: a connection with no request in
//! flight and none started since the previous run is shut down. A client between two requests
//! in that window (it sends its next one within microseconds) is not idle by this rule, so its
//! request is answered, with `Connection: close`, instead of finding the connection cut.

use std::any::Any;
use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::Extensions;
use actix_web::web::Bytes;

static OPEN: LazyLock<Mutex<HashMap<u64, Arc<Connection>>>> = LazyLock::new(Mutex::default);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The low bits of a connection's activity: its requests in flight (a connection has at most a
/// few: HTTP/1.1 answers in order).
const IN_FLIGHT_BITS: u32 = 16;
const IN_FLIGHT: u64 = (1 << IN_FLIGHT_BITS) - 1;
/// One request started and in flight.
const STARTED: u64 = (1 << IN_FLIGHT_BITS) + 1;

/// How long a connection must go without a request before a drain closes it.
pub const IDLE_AFTER: Duration = Duration::from_millis(100);

struct Connection {
    /// A duplicate of the connection's socket: shutting it down ends the connection for actix.
    socket: TcpStream,
    /// Requests in flight (the low [`IN_FLIGHT_BITS`]) and requests started (the rest): one
    /// atomic update at each end of a request.
    activity: AtomicU64,
    /// `activity` as the previous [`close_idle`] saw it (`u64::MAX` before the first).
    seen: AtomicU64,
}

/// Kept in the connection's data: registers it, and unregisters it when actix drops it.
pub struct Registered {
    id: u64,
    connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        OPEN.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// `HttpServer::on_connect` hook: registers a plain TCP connection. One whose socket cannot
/// be duplicated (out of descriptors) is served as before, and only waits for its keep-alive
/// timer at a drain.
pub fn on_connect(io: &dyn Any, data: &mut Extensions) {
    let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    let Ok(socket) = stream.as_fd().try_clone_to_owned() else {
        return;
    };
    let connection = Arc::new(Connection {
        socket: TcpStream::from(socket),
        activity: AtomicU64::new(0),
        seen: AtomicU64::new(u64::MAX),
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    OPEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, connection.clone());
    data.insert(Registered { id, connection });
}

/// Marks the request's connection busy until dropped.
pub struct Busy(Option<Arc<Connection>>);

impl Busy {
    /// Marks `req`'s connection busy (nothing for a connection that is not registered).
    #[must_use]
    pub fn mark(req: &HttpRequest) -> Self {
        let connection = req.conn_data::<Registered>().map(|r| r.connection.clone());
        if let Some(c) = &connection {
            c.activity.fetch_add(STARTED, Ordering::AcqRel);
        }
        Self(connection)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.activity.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Shuts down every registered connection that had no request in flight, and started none,
/// since the previous call; returns how many. The first call only takes note.
pub fn close_idle() -> usize {
    let open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    open.values()
        .filter(|c| {
            let activity = c.activity.load(Ordering::Acquire);
            let unchanged = c.seen.swap(activity, Ordering::AcqRel) == activity;
            unchanged && activity & IN_FLIGHT == 0
        })
        // An error means the peer is gone already: nothing left to close.
        .filter(|c| c.socket.shutdown(Shutdown::Both).is_ok())
        .count()
}

/// Runs [`close_idle`] every [`IDLE_AFTER`], for as long as it is polled (the drain).
pub async fn close_idle_until_stopped() {
    loop {
        let closed = close_idle();
        if closed > 0 {
            tracing::info!(closed, "idle keep-alive connections closed");
        }
        tokio::time::sleep(IDLE_AFTER).await;
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its connection marked busy until written or dropped.
    pub struct BusyUntilSent<B> {
        #[pin]
        body: B,
        busy: Busy,
    }
}

impl<B> BusyUntilSent<B> {
    pub fn new(body: B, busy: Busy) -> Self {
        Self { body, busy }
    }
}

impl<B: MessageBody> MessageBody for BusyUntilSent<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}
