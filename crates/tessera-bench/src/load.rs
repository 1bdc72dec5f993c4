//! The load generator: many keep-alive HTTP/1.1 connections, each driven by
//! its own task, either closed-loop (send, wait for the answer, send again:
//! the maximum rate) or open-loop (requests at fixed times whatever the
//! answers: latency at a given load, measured from when each request was
//! due, so a slow answer is not hidden by the requests it held back).
//!
//! It talks to 127.0.0.1 only and stops by itself at the end of its phase.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::machine::{CpuSample, CpuUse};

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            // The connection ends when its sender is dropped or the server
            // closes it; either is fine here.
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// Sends `request` and reads the whole answer.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.exchange(request).await?;
        Ok((status, body))
    }

    /// As [`Self::send`], with the answer's headers.
    pub async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, headers, body))
    }
}

/// A request, built anew for every send (a request is consumed by sending).
#[derive(Clone)]
pub struct Template {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    pub fn new(method: Method, address: SocketAddr, path: &str) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::HOST,
            HeaderValue::from_str(&address.to_string())?,
        );
        Ok(Self {
            method,
            uri: path.parse().with_context(|| format!("path {path}"))?,
            headers,
            body: Bytes::new(),
        })
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> anyhow::Result<Self> {
        self.headers.insert(name, HeaderValue::from_str(value)?);
        Ok(self)
    }

    pub fn bearer(self, token: &str) -> anyhow::Result<Self> {
        self.header(hyper::header::AUTHORIZATION, &format!("Bearer {token}"))
    }

    pub fn json(self, body: impl Into<Bytes>) -> anyhow::Result<Self> {
        self.body_of("application/json", body)
    }

    pub fn form(self, body: impl Into<Bytes>) -> anyhow::Result<Self> {
        self.body_of("application/x-www-form-urlencoded", body)
    }

    /// The same request with another body.
    pub fn with_body(&self, body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            ..self.clone()
        }
    }

    fn body_of(mut self, content_type: &str, body: impl Into<Bytes>) -> anyhow::Result<Self> {
        self.body = body.into();
        self.headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type)?,
        );
        Ok(self)
    }

    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Pacing {
    /// Each connection sends its next request when the last is answered.
    Closed,
    /// Requests at `rate` a second in all, spread over the connections.
    Open { rate: f64 },
}

/// Whose CPU time to measure: the server's, and the Postgres backends of
/// its database.
#[derive(Debug, Clone)]
pub struct Sampled {
    pub pid: u32,
    pub database: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub connections: usize,
    pub pacing: Pacing,
    /// Run but not counted: connections warm, caches filled.
    pub warmup: Duration,
    /// Counted.
    pub duration: Duration,
    /// To measure where the CPU time of the counted window went.
    pub sample: Option<Sampled>,
}

/// What a phase measured: answers started in the counted window.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// 2xx answers.
    pub ok: u64,
    /// Other answers by status, and transport failures as status 0.
    pub errors: BTreeMap<u16, u64>,
    /// Latency of the 2xx answers, in microseconds.
    pub latency: Histogram<u64>,
    pub window: Duration,
    /// Where the CPU time of the counted window went.
    pub cpu: Option<CpuUse>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The latency at quantile `q`, in the histogram's unit.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64)
    }

    pub fn percentile_ms(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64 / 1000.0)
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 2 min, three significant digits.
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// What a connection's next request is made from an answer to its last:
/// `None` ends the connection's chain.
pub type Follow = Arc<dyn Fn(&Template, &[u8]) -> Option<Template> + Send + Sync>;

/// Which requests the connections send.
#[derive(Clone)]
pub enum Requests {
    /// Connection `i`'s `k`-th request is `templates[(i + k) % len]`.
    Cycle(Arc<Vec<Template>>),
    /// Each template once, whichever connection is free (a single-use
    /// grant such as an authorization code); a connection stops when they
    /// run out.
    Once(Arc<Vec<Template>>),
    /// Connection `i` starts with `seeds[i]`, and each 2xx answer makes its
    /// next request (a refresh token rotated on every use); a connection
    /// whose request fails stops.
    Chain(Arc<Vec<Template>>, Follow),
}

/// Runs `phase` against `address`; connection `i`'s `k`-th request is
/// `templates[(i + k) % len]`.
pub async fn run(
    address: SocketAddr,
    templates: Arc<Vec<Template>>,
    phase: Phase,
) -> anyhow::Result<Outcome> {
    run_requests(address, Requests::Cycle(templates), phase).await
}

/// Runs `phase` against `address` with `requests`.
pub async fn run_requests(
    address: SocketAddr,
    requests: Requests,
    phase: Phase,
) -> anyhow::Result<Outcome> {
    let templates = match &requests {
        Requests::Cycle(t) | Requests::Once(t) | Requests::Chain(t, _) => t.clone(),
    };
    anyhow::ensure!(!templates.is_empty(), "no request to send");
    if let Requests::Chain(seeds, _) = &requests {
        anyhow::ensure!(
            seeds.len() >= phase.connections,
            "a chain needs a seed for every connection"
        );
    }
    let taken = Arc::new(AtomicUsize::new(0));
    let mut connections = Vec::with_capacity(phase.connections);
    for _ in 0..phase.connections {
        connections.push(Connection::open(address).await?);
    }
    let begin = Instant::now() + Duration::from_millis(20);
    let counted_from = begin + phase.warmup;
    let end = counted_from + phase.duration;
    let workers = phase.connections;
    let sampler = phase.sample.clone().map(|sampled| {
        tokio::spawn(async move {
            let database = sampled.database.as_deref();
            tokio::time::sleep_until(counted_from.into()).await;
            let first = CpuSample::take(sampled.pid, database);
            tokio::time::sleep_until(end.into()).await;
            (first, CpuSample::take(sampled.pid, database))
        })
    });
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(index, connection)| {
            let worker = Worker {
                address,
                index,
                workers,
                requests: requests.clone(),
                taken: taken.clone(),
                begin,
                counted_from,
                end,
            };
            tokio::spawn(worker.run(connection, phase.pacing))
        })
        .collect();
    let mut outcome = Outcome {
        ok: 0,
        errors: BTreeMap::new(),
        latency: histogram(),
        window: phase.duration,
        cpu: None,
    };
    for task in tasks {
        let part = task.await.context("a load task panicked")?;
        outcome.ok += part.ok;
        for (status, count) in part.errors {
            *outcome.errors.entry(status).or_default() += count;
        }
        outcome
            .latency
            .add(&part.latency)
            .context("merging histograms")?;
    }
    if let Some(sampler) = sampler {
        let (first, last) = sampler.await.context("the CPU sampler panicked")?;
        outcome.cpu = Some(first.until(&last, outcome.ok));
    }
    Ok(outcome)
}

struct Worker {
    address: SocketAddr,
    index: usize,
    workers: usize,
    requests: Requests,
    /// How many of a `Once` list are taken.
    taken: Arc<AtomicUsize>,
    begin: Instant,
    counted_from: Instant,
    end: Instant,
}

impl Worker {
    async fn run(self, connection: Connection, pacing: Pacing) -> Outcome {
        let mut outcome = Outcome {
            ok: 0,
            errors: BTreeMap::new(),
            latency: histogram(),
            window: self.end - self.counted_from,
            cpu: None,
        };
        let mut connection = Some(connection);
        let mut chained = match &self.requests {
            Requests::Chain(seeds, _) => seeds.get(self.index).cloned(),
            _ => None,
        };
        let mut free_since = self.begin;
        tokio::time::sleep_until(self.begin.into()).await;
        for k in 0usize.. {
            // When this request starts counting: when it was sent, or, in
            // an open loop, when it was due if it had to wait for this
            // connection to be free (that wait is latency the client sees).
            let started = match pacing {
                Pacing::Closed => Instant::now(),
                Pacing::Open { rate } => {
                    let slot = (self.index + k * self.workers) as f64 / rate;
                    let due = self.begin + Duration::from_secs_f64(slot);
                    if due >= self.end {
                        break;
                    }
                    if free_since <= due {
                        // Free in time: the timer's wake-up slack is ours,
                        // not the server's.
                        tokio::time::sleep_until(due.into()).await;
                        Instant::now()
                    } else {
                        due
                    }
                }
            };
            if started >= self.end {
                break;
            }
            let counted = started >= self.counted_from;
            let template = match &self.requests {
                Requests::Cycle(templates) => &templates[(self.index + k) % templates.len()],
                Requests::Once(templates) => {
                    match templates.get(self.taken.fetch_add(1, Ordering::Relaxed)) {
                        Some(template) => template,
                        None => break,
                    }
                }
                Requests::Chain(..) => match &chained {
                    Some(template) => template,
                    None => break,
                },
            };
            let conn = match connection.as_mut() {
                Some(conn) => conn,
                None => match Connection::open(self.address).await {
                    Ok(conn) => connection.insert(conn),
                    Err(_) => {
                        if counted {
                            *outcome.errors.entry(0).or_default() += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        free_since = Instant::now();
                        continue;
                    }
                },
            };
            let answer = conn.send(template.request()).await;
            free_since = Instant::now();
            let (status, body) = match answer {
                Ok((status, body)) => (status.as_u16(), body),
                Err(_) => {
                    connection = None;
                    (0, Bytes::new())
                }
            };
            if let Requests::Chain(_, follow) = &self.requests {
                chained = if (200..300).contains(&status) {
                    follow(template, &body)
                } else {
                    None
                };
            }
            if !counted {
                continue;
            }
            if (200..300).contains(&status) {
                outcome.ok += 1;
                let micros = u64::try_from(free_since.duration_since(started).as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                outcome.latency.saturating_record(micros);
            } else {
                *outcome.errors.entry(status).or_default() += 1;
            }
        }
        outcome
    }
}
