//! Tracing set-up: human-readable or JSON lines, filtered by `RUST_LOG`;
//! colours only on a terminal, and never with `NO_COLOR`.
//! Nothing here, or anywhere, logs a password, a token or key material.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::configuration::LogFormat;

/// Installs the global subscriber. Logs go to standard error so that
/// standard output stays for what the command line prints.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        ))
        .with_span_events(FmtSpan::NONE);
    // A second call (tests, repeated start-up) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Whether log lines may carry ANSI colours: only when they go to a
/// terminal, and not when `NO_COLOR` is set to anything but the empty
/// string (<https://no-color.org>). A file or a pipe gets plain text.
fn colours(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// `spawn_blocking` that keeps the caller's span, so the blocking work's
/// log lines stay attached to the request that asked for it.
pub fn spawn_blocking_with_tracing<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}

#[cfg(test)]
mod tests {
    use super::colours;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(None, true));
        assert!(colours(Some(OsStr::new("")), true));
        assert!(!colours(Some(OsStr::new("1")), true));
        assert!(!colours(None, false));
        assert!(!colours(Some(OsStr::new("1")), false));
    }
}
