//! The service's settings: defaults, then `NOTEBOOKS_*` environment
//! variables (and `TESSERA_ISSUER`), then command-line flags. Everything is
//! checked here, at start-up, never at a request.
//!
//! No new `TESSERA_*` name may appear here: Tessera's own command line warns
//! about `TESSERA_*` variables it does not know, and the two often share an
//! environment.

use std::time::Duration;

pub const USAGE: &str = "\
usage: notebooks [--issuer URL] [--audience NAME] [--bind HOST] [--port N]
                 [--poll-revocations SECONDS] [--jwks-url URL]
                 [--revocations-url URL] [--client-id ID]

Each flag may come from the environment instead:
  TESSERA_ISSUER             the `iss` of the tokens, and where the login page is
                             (default http://127.0.0.1:8080)
  NOTEBOOKS_AUDIENCE         this service's audience (default notebooks)
  NOTEBOOKS_BIND             the address to listen on (default 127.0.0.1)
  NOTEBOOKS_PORT             the port (default 8081)
  NOTEBOOKS_POLL_REVOCATIONS poll the revocation feed every SECONDS (default: off)
  NOTEBOOKS_JWKS_URL         take the keys from this JWKS instead of discovering
                             them at the issuer
  NOTEBOOKS_REVOCATIONS_URL  the revocation feed (default: beside the JWKS URL
                             when one is set, else {issuer}/revocations)
  NOTEBOOKS_CLIENT_ID        the client id registered at Tessera's login page;
                             when set, a browser without a token is sent there
RUST_LOG filters the log (default info).";

/// The path of a JWKS that Tessera serves, under its base URL.
const JWKS_PATH: &str = "/.well-known/jwks.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The `iss` of the tokens: Tessera's public URL, also where a browser
    /// is sent to log in.
    pub issuer: String,
    /// This service's audience, as registered in Tessera's
    /// `tokens.allowed_audiences`.
    pub audience: String,
    /// The address to listen on: loopback unless told (e.g. `0.0.0.0` in a
    /// container).
    pub host: String,
    pub port: u16,
    /// How often to poll the revocation feed; `None`: not at all.
    pub poll_revocations: Option<Duration>,
    /// Where the keys are, when not found through the issuer's discovery
    /// document: for a service that reaches Tessera at another address than
    /// the public one (`http://tessera:8080/.well-known/jwks.json` inside a
    /// container network).
    pub jwks_url: Option<String>,
    /// The revocation feed, when not beside the JWKS URL or the issuer.
    pub revocations_url: Option<String>,
    /// The `client_id` this service is registered under in Tessera's
    /// `[[clients]]`. Without it the service only answers API clients.
    pub client_id: Option<String>,
}

/// Every environment variable the service reads.
pub const ENVIRONMENT: [&str; 8] = [
    "TESSERA_ISSUER",
    "NOTEBOOKS_AUDIENCE",
    "NOTEBOOKS_BIND",
    "NOTEBOOKS_PORT",
    "NOTEBOOKS_POLL_REVOCATIONS",
    "NOTEBOOKS_JWKS_URL",
    "NOTEBOOKS_REVOCATIONS_URL",
    "NOTEBOOKS_CLIENT_ID",
];

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            audience: "notebooks".into(),
            host: "127.0.0.1".into(),
            port: 8081,
            poll_revocations: None,
            jwks_url: None,
            revocations_url: None,
            client_id: None,
        }
    }
}

impl Settings {
    /// The settings from `env` (a variable's value by name) and the
    /// command-line `args` (without the program name).
    pub fn parse(
        env: impl Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let mut settings = Self::default();
        let mut set = |name: &str, value: String| -> Result<(), String> {
            let parse_seconds = |value: &str| {
                value
                    .parse()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{name}: {value:?} is not a number of seconds"))
            };
            match name {
                "TESSERA_ISSUER" | "--issuer" => settings.issuer = value,
                "NOTEBOOKS_AUDIENCE" | "--audience" => settings.audience = value,
                "NOTEBOOKS_BIND" | "--bind" => settings.host = value,
                "NOTEBOOKS_PORT" | "--port" => {
                    settings.port = value
                        .parse()
                        .map_err(|_| format!("{name}: {value:?} is not a port"))?;
                }
                "NOTEBOOKS_POLL_REVOCATIONS" | "--poll-revocations" => {
                    settings.poll_revocations = Some(parse_seconds(&value)?);
                }
                "NOTEBOOKS_JWKS_URL" | "--jwks-url" => settings.jwks_url = Some(value),
                "NOTEBOOKS_REVOCATIONS_URL" | "--revocations-url" => {
                    settings.revocations_url = Some(value);
                }
                "NOTEBOOKS_CLIENT_ID" | "--client-id" => settings.client_id = Some(value),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
            Ok(())
        };
        for name in ENVIRONMENT {
            // An empty variable is an unset one, as compose files write them.
            if let Some(value) = env(name).filter(|value| !value.is_empty()) {
                set(name, value)?;
            }
        }
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if !flag.starts_with("--") {
                return Err(format!("unknown argument {flag:?}\n\n{USAGE}"));
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            set(&flag, value)?;
        }
        // Fails now rather than at the first poll.
        settings.feed_url()?;
        Ok(settings)
    }

    /// The revocation feed to poll, when polling is on and the feed is not
    /// the verifier's default, `{issuer}/revocations`: the explicit URL, or
    /// the one beside the JWKS URL (Tessera serves both under one base).
    pub fn feed_url(&self) -> Result<Option<String>, String> {
        if self.poll_revocations.is_none() {
            return Ok(None);
        }
        if let Some(url) = &self.revocations_url {
            return Ok(Some(url.clone()));
        }
        let Some(jwks) = &self.jwks_url else {
            return Ok(None);
        };
        match jwks.strip_suffix(JWKS_PATH) {
            Some(base) => Ok(Some(format!("{base}/revocations"))),
            None => Err(format!(
                "the JWKS URL {jwks:?} does not end in {JWKS_PATH}, so the revocation feed \
                 cannot be found beside it: set NOTEBOOKS_REVOCATIONS_URL"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Settings, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Settings::parse(
            |name| env.get(name).cloned(),
            args.iter().map(|arg| (*arg).to_owned()),
        )
    }

    #[test]
    fn without_any_setting_the_defaults_serve_a_local_tessera() {
        assert_eq!(parse(&[], &[]).unwrap(), Settings::default());
    }

    #[test]
    fn flags_override_the_environment() {
        let settings = parse(
            &[
                ("TESSERA_ISSUER", "http://localhost:8080"),
                ("NOTEBOOKS_PORT", "9000"),
                ("NOTEBOOKS_CLIENT_ID", "notebooks"),
                ("NOTEBOOKS_POLL_REVOCATIONS", "5"),
            ],
            &["--port", "9001", "--audience", "papers"],
        )
        .unwrap();
        assert_eq!(settings.issuer, "http://localhost:8080");
        assert_eq!(settings.port, 9001);
        assert_eq!(settings.audience, "papers");
        assert_eq!(settings.client_id.as_deref(), Some("notebooks"));
        assert_eq!(settings.poll_revocations, Some(Duration::from_secs(5)));
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let settings = parse(&[("NOTEBOOKS_CLIENT_ID", ""), ("NOTEBOOKS_PORT", "")], &[]).unwrap();
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn bad_values_and_unknown_flags_fail_at_start_up() {
        for (env, args) in [
            (&[("NOTEBOOKS_PORT", "http")][..], &[][..]),
            (&[("NOTEBOOKS_POLL_REVOCATIONS", "5s")][..], &[][..]),
            (&[][..], &["--port"][..]),
            (&[][..], &["--colour", "blue"][..]),
            (&[][..], &["notebooks"][..]),
        ] {
            assert!(parse(env, args).is_err(), "{env:?} {args:?}");
        }
    }

    #[test]
    fn the_revocation_feed_follows_the_jwks_url_unless_named() {
        let jwks = (
            "NOTEBOOKS_JWKS_URL",
            "http://tessera:8080/.well-known/jwks.json",
        );
        let polling = ("NOTEBOOKS_POLL_REVOCATIONS", "5");
        let feed = |env: &[(&str, &str)]| parse(env, &[]).unwrap().feed_url().unwrap();

        assert_eq!(feed(&[polling]), None, "the verifier's default");
        assert_eq!(
            feed(&[polling, jwks]).as_deref(),
            Some("http://tessera:8080/revocations")
        );
        assert_eq!(
            feed(&[
                polling,
                jwks,
                ("NOTEBOOKS_REVOCATIONS_URL", "http://feed:8080/revocations")
            ])
            .as_deref(),
            Some("http://feed:8080/revocations")
        );
        assert_eq!(feed(&[jwks]), None, "not polling");
    }

    #[test]
    fn a_jwks_url_without_a_feed_beside_it_needs_the_feed_named() {
        let env = [
            ("NOTEBOOKS_JWKS_URL", "http://keys.internal/jwks"),
            ("NOTEBOOKS_POLL_REVOCATIONS", "5"),
        ];
        let error = parse(&env, &[]).unwrap_err();
        assert!(error.contains("NOTEBOOKS_REVOCATIONS_URL"), "{error}");
        let named = [
            env[0],
            env[1],
            (
                "NOTEBOOKS_REVOCATIONS_URL",
                "http://tessera:8080/revocations",
            ),
        ];
        assert!(parse(&named, &[]).is_ok());
    }
}
