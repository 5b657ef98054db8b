//! Prometheus metrics: request counts and latencies by route and status.

use std::{
    collections::HashMap,
    sync::{LazyLock, OnceLock, RwLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};
use metrics::{Counter, Histogram, SharedString};
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
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let series = Series {
        method,
        route,
        status: response.status().as_u16(),
    };
    series.record(started.elapsed());
    response
}

/// One request's series: its labels.
struct Series<'a> {
    method: &'static str,
    route: &'a str,
    status: u16,
}

/// Each series' counter and histogram, by route template, then method and
/// status. Building a series' key (its labels) and finding it in the
/// registry was most of what metrics cost a request; a request whose series
/// was seen before pays neither. Bounded as the labels are. The handles
/// come from the global recorder, which `install_recorder` sets before any
/// router exists (`AppState` holds its handle).
type Handles = HashMap<String, Vec<(&'static str, u16, Counter, Histogram)>>;

static HANDLES: LazyLock<RwLock<Handles>> = LazyLock::new(Default::default);

impl Series<'_> {
    fn record(&self, took: Duration) {
        let record = |(_, _, requests, duration): &(_, _, Counter, Histogram)| {
            requests.increment(1);
            duration.record(took.as_secs_f64());
        };
        let mine = |(method, status, ..): &&(&str, u16, _, _)| {
            *method == self.method && *status == self.status
        };
        let handles = HANDLES.read().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = handles.get(self.route).and_then(|s| s.iter().find(mine)) {
            return record(found);
        }
        drop(handles);
        let mut handles = HANDLES.write().unwrap_or_else(|p| p.into_inner());
        let series = handles.entry(self.route.to_owned()).or_default();
        // Another request may have added it meanwhile.
        if let Some(found) = series.iter().find(mine) {
            return record(found);
        }
        let labels = [
            ("method", SharedString::const_str(self.method)),
            ("route", self.route.to_owned().into()),
            ("status", self.status.to_string().into()),
        ];
        let added = (
            self.method,
            self.status,
            metrics::counter!("zapgate_http_requests_total", &labels),
            metrics::histogram!("zapgate_http_request_duration_seconds", &labels),
        );
        record(&added);
        series.push(added);
    }
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
