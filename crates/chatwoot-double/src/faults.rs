//! Fault injection and request recording for the account API:
//! - `down`: a listener wrapper that drops new connections on accept and
//!   makes existing keep-alive connections fail their next read/write, so
//!   clients see a connection-level error, not an HTTP status;
//! - `fail_next(n, status)`: the next n API requests answer that status with
//!   the body Chatwoot (or rack-attack in front of it) would send;
//! - `delay`: every API response is held back (the request is still
//!   carried out when its client goes away meanwhile, as in Chatwoot);
//! - `stalled`: an account's API requests are never answered;
//! - every API request is recorded for [`crate::ChatwootDouble::requests`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::Shared;

/// One API request the double received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without query, e.g. `/api/v1/accounts/1/contacts`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// When it arrived.
    pub at: SystemTime,
}

/// Middleware on the `/api` router: record, then injected failure, then delay.
pub(crate) async fn api_faults(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(RecordedRequest {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().map(str::to_string),
            at: SystemTime::now(),
        });
    let stall = {
        let cfg = shared.config.lock().expect("config lock");
        stalled(&cfg.stalled, req.uri().path())
    };
    if stall {
        return std::future::pending().await;
    }
    let (fail, delay) = {
        let mut cfg = shared.config.lock().expect("config lock");
        let fail = match cfg.fail_next {
            Some((n, status)) if n > 0 => {
                cfg.fail_next = if n > 1 { Some((n - 1, status)) } else { None };
                Some(status)
            }
            _ => None,
        };
        (fail, cfg.delay)
    };
    // Chatwoot finishes a request whose client went away (Rails does not
    // see the closed socket), so the work runs on a task of its own that a
    // dropped connection does not cancel.
    let work = tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(status) = fail {
            return injected_failure(status);
        }
        next.run(req).await
    });
    work.await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether `path` is an account API path of a stalled account.
fn stalled(accounts: &[i64], path: &str) -> bool {
    let account = path
        .strip_prefix("/api/v1/accounts/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse::<i64>().ok());
    account.is_some_and(|id| accounts.contains(&id))
}

/// Bodies for injected failures, as Chatwoot / its usual front ends send them.
fn injected_failure(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match code.as_u16() {
        // rack-attack throttle: plain text; Retry-After added for clients that honour it.
        429 => {
            let mut r = (code, "Retry later\n").into_response();
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("60"));
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/plain"));
            r
        }
        // Reverse proxy in front of a dead/overloaded Puma: HTML page.
        502..=504 => {
            let reason = code.canonical_reason().unwrap_or("");
            let html = format!(
                "<html>\r\n<head><title>{s} {reason}</title></head>\r\n<body>\r\n<center><h1>{s} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                s = code.as_u16()
            );
            let mut r = (code, Body::from(html)).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/html"));
            r
        }
        _ => {
            let reason = code.canonical_reason().unwrap_or("Error");
            (
                code,
                Json(json!({"status": code.as_u16(), "error": reason})),
            )
                .into_response()
        }
    }
}

/// TCP listener that refuses service while `down` is set.
pub(crate) struct FaultyListener {
    pub inner: TcpListener,
    pub down: Arc<AtomicBool>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = FaultyStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.down.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    return (
                        FaultyStream {
                            inner: stream,
                            down: self.down.clone(),
                        },
                        addr,
                    );
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that errors on any I/O while the double is down.
pub(crate) struct FaultyStream {
    inner: TcpStream,
    down: Arc<AtomicBool>,
}

impl FaultyStream {
    fn check(&self) -> io::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "chatwoot double is down",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
