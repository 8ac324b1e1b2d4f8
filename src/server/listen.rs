//! The accept loop: HTTP/1.1 connections served with the limits a public
//! listener needs. A client gets [`Limits::read_timeout`] for its request
//! headers (then it is disconnected) and again for its body (then it is
//! answered 408); at most [`Limits::max_connections`] are open at once, and
//! one more is answered 503 and closed at once, so slow or idle clients
//! cannot take every file descriptor and `/healthz` keeps answering.
//! This module knows nothing of the routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What one client may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For the request headers, and again for the body.
    pub read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// The largest request body.
    pub max_body: usize,
}

/// How long open connections may finish their request after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// The answer to a connection over the cap: written raw, then closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
    retry-after: 1\r\nconnection: close\r\ncontent-length: 47\r\n\r\n\
    {\"error\":\"too many connections; retry shortly\"}";

/// Serves `app` on `listener` until `cancel`, then lets open requests finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, cancel: CancellationToken) {
    let app = app.layer(axum::middleware::from_fn_with_state(limits, read_body));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, _) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // Out of descriptors, most often: wait a little rather than spin.
                tracing::warn!(error = %err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
            tokio::spawn(async move {
                let write = stream.write_all(FULL);
                if tokio::time::timeout(Duration::from_secs(1), write)
                    .await
                    .is_ok()
                {
                    let _ = stream.shutdown().await;
                }
            });
            continue;
        };
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.read_timeout);
        let service = TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open {DRAIN:?} after shutdown began were cut");
    }
}

/// Reads the whole request body within the read timeout: 408 when the
/// client is too slow, 413 over the size limit.
async fn read_body(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, limits.max_body);
    let bytes = match tokio::time::timeout(limits.read_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is over server.max_body",
            );
        }
        Err(_) => {
            metrics::counter!(crate::metrics::SLOW_BODIES).increment(1);
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the body came too slowly (server.read_timeout)",
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
}
