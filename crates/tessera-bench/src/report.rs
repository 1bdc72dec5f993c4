//! The results: one row a measurement, each set against its raw limit and
//! its target, printed as a table and written as JSON so runs compare.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::limits::Limits;
use crate::load::Outcome;
use crate::machine::{CpuUse, Machine};
use crate::server::Backend;

/// Targets of issue 7, on a 2-core machine shared with the load generator
/// and Postgres.
pub const AUTHORIZE_SHARE_OF_SIGN: f64 = 0.50;
pub const AUTHORIZE_P99_AT_HALF_MS: f64 = 10.0;
pub const SESSION_SHARE_OF_ARGON2: f64 = 0.80;
pub const AUTHORIZE_P99_UNDER_FLOOD_MS: f64 = 50.0;
/// The token endpoint's grants against the raw RS256 sign rate: a code
/// exchange signs two tokens (access and ID), a refresh and a client
/// credentials grant one.
pub const CODE_EXCHANGE_SHARE_OF_SIGN: f64 = 0.20;
pub const REFRESH_SHARE_OF_SIGN: f64 = 0.35;
pub const CLIENT_CREDENTIALS_SHARE_OF_SIGN: f64 = 0.40;
/// p99 of each grant at half its maximum rate.
pub const TOKEN_P99_AT_HALF_MS: f64 = 25.0;
pub const WELL_KNOWN_RATE: f64 = 20_000.0;
pub const VERIFIER_SHARE_OF_VERIFY: f64 = 0.85;
pub const PEAK_RSS_MIB: f64 = 64.0;
pub const START_TO_READY_MS: f64 = 1_000.0;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `None` for in-process measurements (the verifier).
    pub backend: Option<Backend>,
    pub endpoint: String,
    /// How the load was applied.
    pub load: String,
    pub requests_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub ok: u64,
    pub errors: u64,
    /// Non-2xx answers by status; 0 is a transport failure.
    pub error_statuses: BTreeMap<u16, u64>,
    pub limit: Option<String>,
    pub limit_per_s: Option<f64>,
    pub ratio: Option<f64>,
    pub target: Option<String>,
    pub met: Option<bool>,
    /// The server's peak RSS during this measurement.
    pub peak_rss_mib: Option<f64>,
    pub cpu: Option<CpuUse>,
}

impl Row {
    pub fn from_outcome(
        backend: Option<Backend>,
        endpoint: &str,
        load: String,
        outcome: &Outcome,
    ) -> Self {
        Self {
            backend,
            endpoint: endpoint.to_owned(),
            load,
            requests_per_s: outcome.rate(),
            p50_ms: outcome.percentile_ms(0.50),
            p99_ms: outcome.percentile_ms(0.99),
            p999_ms: outcome.percentile_ms(0.999),
            max_ms: outcome.percentile_ms(1.0),
            ok: outcome.ok,
            errors: outcome.error_count(),
            error_statuses: outcome.errors.clone(),
            limit: None,
            limit_per_s: None,
            ratio: None,
            target: None,
            met: None,
            peak_rss_mib: None,
            cpu: outcome.cpu,
        }
    }

    /// Sets the row against a raw limit: the ratio, and the target share.
    pub fn against(mut self, limit: &str, per_s: f64, share: Option<f64>) -> Self {
        self.limit = Some(format!("{limit} {per_s:.0}/s"));
        self.limit_per_s = Some(per_s);
        let ratio = self.requests_per_s / per_s;
        self.ratio = Some(ratio);
        if let Some(share) = share {
            self.target = Some(format!(">= {:.0} % of limit", share * 100.0));
            self.met = Some(ratio >= share);
        }
        self
    }

    pub fn p99_under(mut self, ms: f64) -> Self {
        self.target = Some(format!("p99 < {ms:.0} ms"));
        self.met = Some(self.p99_ms.is_some_and(|p99| p99 < ms));
        self
    }

    pub fn rate_at_least(mut self, per_s: f64) -> Self {
        self.target = Some(format!(">= {per_s:.0}/s"));
        self.met = Some(self.requests_per_s >= per_s);
        self
    }

    pub fn with_peak_rss(mut self, kib: Option<u64>) -> Self {
        self.peak_rss_mib = kib.map(|k| k as f64 / 1024.0);
        self
    }
}

/// Per backend: start-up and memory.
#[derive(Debug, Clone, Serialize)]
pub struct BackendSummary {
    pub backend: Backend,
    /// First start: database migrated, key generated, admin created.
    pub first_start_ms: f64,
    /// Second start, from spawning to `/readyz` answering 200.
    pub start_to_ready_ms: f64,
    pub start_to_ready_met: bool,
    /// The server's peak RSS over every measurement of this backend.
    pub peak_rss_mib: Option<f64>,
    pub peak_rss_met: Option<bool>,
    pub users: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub machine: Machine,
    pub load_average_before: String,
    pub load_average_after: String,
    pub duration_s: f64,
    pub limits: Limits,
    pub backends: Vec<BackendSummary>,
    pub rows: Vec<Row>,
}

fn ms(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

impl Report {
    /// The table, as printed and as pasted into the README (Markdown).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let l = &self.limits;
        let _ = writeln!(
            out,
            "Raw limits (same run, same cores): RS256 sign {:.0}/s on 1 core, {:.0}/s on {} cores; \
             RS256 verify {:.0}/s on 1 core ({:.0}/s building the key from n, e each time), {:.0}/s on {} cores; \
             {} verify {:.1}/s on 1 core, {:.1}/s on {} cores.",
            l.sign_one_core.per_second,
            l.sign_all_cores.per_second,
            l.sign_all_cores.threads,
            l.verify_one_core.per_second,
            l.verify_components_one_core.per_second,
            l.verify_all_cores.per_second,
            l.verify_all_cores.threads,
            l.argon2_params,
            l.argon2_one_core.per_second,
            l.argon2_all_cores.per_second,
            l.argon2_all_cores.threads,
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| backend | endpoint | load | req/s | p50 ms | p99 ms | errors | limit | ratio | target | | peak RSS MiB |"
        );
        let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|---|--:|---|---|--:|");
        for row in &self.rows {
            let errors = if row.errors == 0 {
                "0".to_owned()
            } else {
                let statuses: Vec<String> = row
                    .error_statuses
                    .iter()
                    .map(|(status, n)| {
                        if *status == 0 {
                            format!("{n} failed")
                        } else {
                            format!("{n}×{status}")
                        }
                    })
                    .collect();
                statuses.join(" ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.backend
                    .map_or("in-process".to_owned(), |b| b.to_string()),
                row.endpoint,
                row.load,
                row.requests_per_s,
                ms(row.p50_ms),
                ms(row.p99_ms),
                errors,
                row.limit.as_deref().unwrap_or(""),
                row.ratio
                    .map_or(String::new(), |r| format!("{:.0} %", r * 100.0)),
                row.target.as_deref().unwrap_or(""),
                verdict(row.met),
                row.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
            );
        }
        let _ = writeln!(out);
        for b in &self.backends {
            let _ = writeln!(
                out,
                "{}: start to ready {:.0} ms (second start; target < {:.0} ms: {}), first start {:.0} ms; \
                 server peak RSS {} MiB over the whole run (target < {:.0} MiB: {}).",
                b.backend,
                b.start_to_ready_ms,
                START_TO_READY_MS,
                verdict(Some(b.start_to_ready_met)),
                b.first_start_ms,
                b.peak_rss_mib.map_or("?".into(), |m| format!("{m:.1}")),
                PEAK_RSS_MIB,
                verdict(b.peak_rss_met),
            );
        }
        out
    }

    /// Where each measurement's CPU went, per request.
    pub fn cpu_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| backend | endpoint | machine busy | server µs/req | load generator µs/req | postgres µs/req | other µs/req |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|");
        for row in &self.rows {
            let Some(cpu) = row.cpu else { continue };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} % | {:.0} | {:.0} | {:.0} | {:.0} |",
                row.backend
                    .map_or("in-process".to_owned(), |b| b.to_string()),
                row.endpoint,
                cpu.machine_busy_pct,
                cpu.server_us_per_request,
                cpu.load_generator_us_per_request,
                cpu.postgres_us_per_request,
                cpu.other_us_per_request,
            );
        }
        out
    }
}
