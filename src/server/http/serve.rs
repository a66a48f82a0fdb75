//! The accept loop, in place of `axum::serve`, so that slow clients are cut
//! (security review finding 8):
//!
//! - hyper gets a timer, so its header-read timeout runs: a client that
//!   sends half a header block is disconnected after [`HEADER_READ_TIMEOUT`]
//!   (`axum::serve` gives hyper no timer, and then the timeout never fires);
//! - at most [`MAX_CONNECTIONS`] connections at once; past that, new ones
//!   wait in the kernel's backlog instead of each taking a task and a file
//!   descriptor;
//! - graceful shutdown: idle connections close at once, busy ones finish.
//!
//! Request and body timeouts are layers (see [`timeouts`]). A reverse proxy
//! in front is still expected for TLS and for buffering slow uploads.

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

/// From accepting a connection (or finishing the previous request on it)
/// to the end of the next request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The request body must have arrived within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(15);
/// From the headers to the response's headers. Generous: the pasted
/// transcript path still summarizes inline today.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Open connections at once, each a task and a file descriptor.
pub const MAX_CONNECTIONS: usize = 4096;

/// Serves `router` on `listener` until `signal` resolves, then waits for the
/// open connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(signal);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit?,
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                // What `into_make_service_with_connect_info` did: handlers and
                // the rate limits read the peer from here.
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Whether a path is the live event stream (`/o/{slug}/events`), which is
/// meant to stay open: no whole-request timeout applies to it.
fn is_event_stream(path: &str) -> bool {
    path.strip_prefix("/o/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(slug, tail)| !slug.is_empty() && tail == "events")
}

/// The whole-request timeout, 408 past [`REQUEST_TIMEOUT`], for every route
/// but the event stream (exempt by path here rather than by a per-route
/// layer, so the route can be added anywhere in the router).
pub async fn timeouts(request: Request, next: Next) -> Response {
    if is_event_stream(request.uri().path()) {
        return next.run(request).await;
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?REQUEST_TIMEOUT, "request timed out");
            StatusCode::REQUEST_TIMEOUT.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn only_the_event_stream_is_exempt() {
        assert!(is_event_stream("/o/acme/events"));
        assert!(!is_event_stream("/o/acme/events/x"));
        assert!(!is_event_stream("/o//events"));
        assert!(!is_event_stream("/o/acme/settings"));
        assert!(!is_event_stream("/api/summaries/request"));
        assert!(!is_event_stream("/events"));
    }
}
