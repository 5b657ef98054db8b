//! The results table (Markdown), with the machine, date and commit.

use crate::{Opts, Phase};

#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub backend: &'static str,
    pub zapgate: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    /// `met`, `MISSED` or empty (no target).
    pub verdict: String,
}

impl Row {
    pub fn new(figure: impl Into<String>, backend: &'static str) -> Self {
        Self {
            figure: figure.into(),
            backend,
            zapgate: String::new(),
            baseline: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            verdict: String::new(),
        }
    }
    pub fn zap(mut self, v: impl Into<String>) -> Self {
        self.zapgate = v.into();
        self
    }
    pub fn base(mut self, v: impl Into<String>) -> Self {
        self.baseline = v.into();
        self
    }
    pub fn ratio(mut self, r: f64) -> Self {
        self.ratio = if r.is_finite() {
            format!("{r:.2}")
        } else {
            "-".into()
        };
        self
    }
    pub fn target(mut self, t: impl Into<String>, met: bool) -> Self {
        self.target = t.into();
        self.verdict = if met { "met" } else { "MISSED" }.into();
        self
    }
}

fn machine() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown")
        .to_owned();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]);
    let commit = if dirty.is_empty() || dirty == "unknown" {
        commit
    } else {
        format!("{commit} (with uncommitted changes)")
    };
    vec![
        format!(
            "- Machine: {cores} cores, {model}, {:.1} GiB RAM",
            ram_kb as f64 / 1024.0 / 1024.0
        ),
        format!(
            "- Date: {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        ),
        format!("- Commit: {commit}"),
    ]
}

pub fn render(opts: &Opts, rows: &[Row], notes: &[String]) -> String {
    let mut out = String::from("# zapgate benchmark results\n\n");
    for line in machine() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "- Mode: {} ({} sandbox instances x {} customers, {} s per load step, {} API clients)\n",
        if opts.quick { "quick" } else { "full" },
        opts.instances,
        opts.customers,
        opts.step.as_secs(),
        opts.api_clients,
    ));
    out.push_str("- Command: `bench/run.sh");
    if opts.quick {
        out.push_str(" --quick");
    }
    if opts.only.len() < Phase::ALL.len() {
        let names: Vec<&str> = opts.only.iter().map(|p| p.name()).collect();
        out.push_str(&format!(" --only {}", names.join(",")));
    }
    out.push_str("`\n\n");
    out.push_str("| Figure | Backend | zapgate | baseline | zapgate / baseline | target | |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.figure, r.backend, r.zapgate, r.baseline, r.ratio, r.target, r.verdict
        ));
    }
    if !notes.is_empty() {
        out.push_str("\nNotes:\n\n");
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}
