//! Prometheus metrics: request counts and latencies by route and status.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};
use metrics::SharedString;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often recorded latencies are folded into their summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide recorder; installed once, whatever the number of
/// servers built in this process (tests build many).
pub fn install_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours
            // still renders (empty) and the other keeps working.
            let _ = metrics::set_global_recorder(recorder);
            // Histogram samples pile up in memory until upkeep drains them,
            // and nothing else does when nobody scrapes `/metrics`.
            let upkept = handle.clone();
            let upkeep = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkept.run_upkeep();
                    }
                });
            if let Err(err) = upkeep {
                tracing::warn!(error = %err, "no metrics upkeep: latencies are kept until scraped");
            }
            handle
        })
        .clone()
}

pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // The route template, never the raw path: bounded label values.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", SharedString::const_str(method)),
        ("route", route.into()),
        ("status", status.into()),
    ];
    metrics::counter!("zapgate_http_requests_total", &labels).increment(1);
    metrics::histogram!("zapgate_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method's label: a standard method by name, any other as `OTHER`, so
/// a client inventing methods cannot add series without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}
