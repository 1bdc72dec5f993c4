//! The registry of browser clients (`[[clients]]` in the configuration) and
//! the redirect matcher that keeps the hosted login page from being an open
//! redirect.
//!
//! A `return_to` is compared after parsing, never as a string: scheme, host
//! and port must equal a registered entry's, and the normalized path must
//! equal it (exact entries) or lie under it (entries ending in `/*`). Input
//! that a browser could read differently from us (backslashes, whitespace,
//! control characters, user information, encoded slashes or dots; under a
//! prefix also path parameters and encoded percent signs) is refused
//! outright. Nothing here may redirect: it only answers where a
//! redirect would be allowed to go.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use url::{Host, Url};

pub use crate::configuration::{ClientSettings, DeliveryKind};
use crate::domain::{Audience, Scope};

/// Longest `return_to` accepted, in bytes.
const MAX_RETURN_TO_BYTES: usize = 2048;

/// How an authorization token is handed to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenDelivery {
    Query {
        param: String,
    },
    Fragment {
        param: String,
    },
    Cookie {
        name: String,
        domain: Option<String>,
    },
}

impl TokenDelivery {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Query { .. } => "query",
            Self::Fragment { .. } => "fragment",
            Self::Cookie { .. } => "cookie",
        }
    }
}

/// A registered client, checked.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub audience: Audience,
    pub scopes: Option<Vec<Scope>>,
    pub redirect_uris: Vec<RedirectUri>,
    pub delivery: TokenDelivery,
}

impl Client {
    /// `raw` as a place this client may be sent back to, or `None`.
    pub fn return_to(&self, raw: &str) -> Option<ReturnTo> {
        let url = parse_target(raw)?;
        self.redirect_uris
            .iter()
            .any(|allowed| allowed.matches(&url))
            .then_some(ReturnTo(url))
    }
}

/// A `return_to` that matched a registered redirect URI, normalized. Only
/// this is ever redirected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(Url);

impl ReturnTo {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// Where to send the browser with `token`: for `query` and `fragment`
    /// the token is added to the URL (replacing any parameter of the same
    /// name, so a crafted `return_to` cannot smuggle in a token of its own);
    /// for `cookie` the URL is unchanged.
    pub fn with_token(&self, delivery: &TokenDelivery, token: &str) -> String {
        let mut url = self.0.clone();
        match delivery {
            TokenDelivery::Query { param } => {
                let kept: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(name, _)| name != param.as_str())
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect();
                url.set_query(None);
                url.query_pairs_mut()
                    .extend_pairs(kept)
                    .append_pair(param, token);
            }
            TokenDelivery::Fragment { param } => {
                url.set_fragment(Some(&format!("{param}={token}")));
            }
            TokenDelivery::Cookie { .. } => {}
        }
        url.into()
    }
}

/// A registered redirect URI: an exact URL or an origin and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectUri {
    Exact(Url),
    /// The path ends with `/`.
    Prefix(Url),
}

impl RedirectUri {
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let (base, prefix) = match entry.strip_suffix('*') {
            Some(base) if base.ends_with('/') => (base, true),
            Some(_) => bail!("{entry:?}: a prefix entry must end in \"/*\""),
            None => (entry, false),
        };
        let url = parse_target(base).with_context(|| {
            format!(
                "{entry:?}: not an absolute http(s) URL without user information, \
                 backslashes, encoded slashes or dots"
            )
        })?;
        if url.query().is_some() {
            bail!("{entry:?}: a redirect URI may not have a query");
        }
        if base.contains('*') {
            bail!("{entry:?}: \"*\" is allowed only at the end, after \"/\"");
        }
        Ok(if prefix {
            Self::Prefix(url)
        } else {
            Self::Exact(url)
        })
    }

    fn url(&self) -> &Url {
        match self {
            Self::Exact(url) | Self::Prefix(url) => url,
        }
    }

    /// Whether the parsed target `url` is this entry or under it.
    fn matches(&self, url: &Url) -> bool {
        let allowed = self.url();
        let same_origin = url.scheme() == allowed.scheme()
            && url.host() == allowed.host()
            && url.port_or_known_default() == allowed.port_or_known_default();
        if !same_origin {
            return false;
        }
        match self {
            Self::Exact(allowed) => url.path() == allowed.path(),
            Self::Prefix(allowed) => {
                let prefix = allowed.path();
                if escapes_prefix(url.path()) {
                    return false;
                }
                // `/app/*` allows `/app` itself, never `/application`.
                url.path().starts_with(prefix) || url.path() == prefix.trim_end_matches('/')
            }
        }
    }

    pub fn host(&self) -> Option<Host<&str>> {
        self.url().host()
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.url().origin().ascii_serialization()
    }
}

impl std::fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(url) => write!(f, "{url}"),
            Self::Prefix(url) => write!(f, "{url}*"),
        }
    }
}

/// Parses `raw` as an absolute http(s) URL that compares safely, or `None`.
///
/// The WHATWG parser that browsers and the `url` crate share silently drops
/// tabs and newlines and reads `\` as `/`; rather than reason about what such
/// input becomes, it is refused. Percent-encoded `/`, `\` and `.` in the path
/// are refused too: a server that decodes them could resolve `/app/..%2f`
/// outside the prefix that matched.
fn parse_target(raw: &str) -> Option<Url> {
    if raw.len() > MAX_RETURN_TO_BYTES
        || raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    let path = url.path().to_ascii_lowercase();
    if ["%2f", "%5c", "%2e"]
        .iter()
        .any(|encoded| path.contains(encoded))
    {
        return None;
    }
    Some(url)
}

/// Whether a path that lies under a prefix entry could be resolved outside
/// it by the server behind. A `;` starts path parameters (RFC 3986 §3.3),
/// which Tomcat and Spring drop before matching, so `/hub/..;/admin` reaches
/// `/admin`; and any `%25` is an encoded `%` that a server decoding twice
/// turns into the `%2e%2e` or `%2f` refused above.
fn escapes_prefix(path: &str) -> bool {
    path.contains(';') || path.contains("%25")
}

/// Every registered client, by id.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistry {
    clients: BTreeMap<String, Client>,
}

impl ClientRegistry {
    /// Checks the configured clients against the allowed audiences and the
    /// issuer (a token cookie must be one the issuer's host may set).
    pub fn from_settings(
        settings: &[ClientSettings],
        allowed_audiences: &[String],
        issuer: &str,
    ) -> anyhow::Result<Self> {
        let issuer_host = Url::parse(issuer)
            .ok()
            .and_then(|url| url.host().map(|h| h.to_owned()))
            .with_context(|| format!("issuer {issuer:?} has no host"))?;
        let mut clients = BTreeMap::new();
        for entry in settings {
            let client = parse_client(entry, allowed_audiences, &issuer_host)
                .with_context(|| format!("clients: the client {:?}", entry.id))?;
            if clients.insert(client.id.clone(), client).is_some() {
                bail!("clients: the id {:?} is registered twice", entry.id);
            }
        }
        Ok(Self { clients })
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    /// `raw` as a place any client may be sent back to (after logout).
    pub fn return_to(&self, raw: &str) -> Option<ReturnTo> {
        self.iter().find_map(|client| client.return_to(raw))
    }
}

/// `tessera clients list`: the registry as the server would load it.
pub fn print_list(settings: &crate::configuration::Settings) -> anyhow::Result<()> {
    let registry = ClientRegistry::from_settings(
        &settings.clients,
        &settings.tokens.allowed_audiences,
        &settings.issuer(),
    )?;
    println!(
        "{:<20} {:<20} {:<9} {:<24} redirect_uris",
        "id", "audience", "delivery", "scopes"
    );
    for client in registry.iter() {
        let scopes = client.scopes.as_ref().map_or_else(
            || "(all granted)".to_owned(),
            |scopes| {
                scopes
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        );
        let uris: Vec<String> = client
            .redirect_uris
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "{:<20} {:<20} {:<9} {:<24} {}",
            client.id,
            client.audience.as_str(),
            client.delivery.kind(),
            scopes,
            uris.join(" ")
        );
    }
    Ok(())
}

fn parse_client(
    entry: &ClientSettings,
    allowed_audiences: &[String],
    issuer_host: &Host<String>,
) -> anyhow::Result<Client> {
    let id = entry.id.as_str();
    if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("id must be 1 to 200 bytes without whitespace or control characters");
    }
    let audience = Audience::parse(&entry.audience)?;
    if !allowed_audiences.iter().any(|a| a == audience.as_str()) {
        bail!(
            "audience {:?} is not in tokens.allowed_audiences",
            entry.audience
        );
    }
    let scopes = entry
        .scopes
        .as_ref()
        .map(|scopes| scopes.iter().map(|s| Scope::parse(s)).collect())
        .transpose()?;
    if entry.redirect_uris.is_empty() {
        bail!("redirect_uris must name at least one URL");
    }
    let redirect_uris = entry
        .redirect_uris
        .iter()
        .map(|uri| RedirectUri::parse(uri))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let delivery = match entry.token_delivery {
        DeliveryKind::Query | DeliveryKind::Fragment => {
            if entry.cookie_name.is_some() || entry.cookie_domain.is_some() {
                bail!("cookie_name and cookie_domain need token_delivery = \"cookie\"");
            }
            let param = entry.param_name.clone().unwrap_or_else(|| "token".into());
            if !is_name(&param) {
                bail!("param_name must be letters, digits, '-', '_' or '.'");
            }
            if entry.token_delivery == DeliveryKind::Query {
                TokenDelivery::Query { param }
            } else {
                TokenDelivery::Fragment { param }
            }
        }
        DeliveryKind::Cookie => {
            if entry.param_name.is_some() {
                bail!("param_name needs token_delivery = \"query\" or \"fragment\"");
            }
            let name = entry
                .cookie_name
                .clone()
                .context("token_delivery = \"cookie\" needs a cookie_name")?;
            if !is_name(&name) || name.starts_with("__") || name.starts_with("tessera_") {
                bail!(
                    "cookie_name must be letters, digits, '-', '_' or '.', \
                     and not start with \"__\" or \"tessera_\" (Tessera's own cookies)"
                );
            }
            let domain = entry
                .cookie_domain
                .as_deref()
                .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
            // A browser drops a cookie whose domain does not cover the host
            // that sets it, and sends it only to hosts within that domain.
            let covers = |host: Host<String>| match (&domain, host) {
                (Some(domain), Host::Domain(host)) => {
                    host == *domain || host.ends_with(&format!(".{domain}"))
                }
                (Some(domain), ip) => ip.to_string() == *domain,
                (None, host) => host == *issuer_host,
            };
            if !covers(issuer_host.clone()) {
                bail!("cookie_domain must contain the issuer's host ({issuer_host})");
            }
            if let Some(uri) = redirect_uris
                .iter()
                .find(|uri| !uri.host().is_some_and(|h| covers(h.to_owned())))
            {
                bail!("the redirect URI {uri} is outside the token cookie's domain");
            }
            TokenDelivery::Cookie { name, domain }
        }
    };
    Ok(Client {
        id: id.to_owned(),
        audience,
        scopes,
        redirect_uris,
        delivery,
    })
}

/// A client id: 1 to 64 letters, digits, `-`, `_` or `.`.
pub(crate) fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(redirect_uris: &[&str]) -> Client {
        let settings = ClientSettings {
            id: "app".into(),
            audience: "notebooks".into(),
            redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
            scopes: None,
            token_delivery: DeliveryKind::Query,
            param_name: None,
            cookie_name: None,
            cookie_domain: None,
        };
        ClientRegistry::from_settings(
            &[settings],
            &["notebooks".into()],
            "https://sso.example.com",
        )
        .unwrap()
        .get("app")
        .unwrap()
        .clone()
    }

    #[test]
    fn the_matcher_allows_only_registered_places() {
        let client = client(&[
            "https://allowed.example/app/*",
            "https://allowed.example/exact/login",
            "http://localhost:8000/*",
        ]);
        let cases: &[(&str, bool)] = &[
            // Allowed.
            ("https://allowed.example/app", true),
            ("https://allowed.example/app/", true),
            ("https://allowed.example/app/notebooks?next=%2Fhome", true),
            ("https://allowed.example:443/app/x", true),
            ("https://ALLOWED.EXAMPLE/app/x", true),
            ("https://allowed.example/exact/login", true),
            ("https://allowed.example/exact/login?next=/hub", true),
            ("https://allowed.example/app/./x", true),
            ("http://localhost:8000/anything", true),
            // Other origins and look-alikes.
            ("//evil.example", false),
            ("//allowed.example/app/", false),
            ("/app/", false),
            ("evil.example", false),
            ("https://evil.example/app/", false),
            ("https://allowed.example.evil.example/app/", false),
            ("https://allowed.example@evil.example/app/", false),
            ("https://user:pass@allowed.example/app/", false),
            ("https://evil.example?https://allowed.example/app/", false),
            ("https://evil.example#https://allowed.example/app/", false),
            ("https://allowed.example./app/", false),
            // Scheme and port.
            ("http://allowed.example/app/", false),
            ("https://allowed.example:8443/app/", false),
            ("http://localhost:8001/", false),
            ("https://localhost:8000/", false),
            ("javascript:alert(1)", false),
            ("JavaScript://allowed.example/app/%0aalert(1)", false),
            ("data:text/html,<script>alert(1)</script>", false),
            ("ftp://allowed.example/app/", false),
            // Backslashes and encodings.
            ("https://allowed.example\\@evil.example/app/", false),
            ("https:\\\\evil.example/app/", false),
            ("/\\evil.example", false),
            ("https://allowed.example/app/%2f%2fevil.example", false),
            ("https://allowed.example/app/..%2fadmin", false),
            ("https://allowed.example/app/%2e%2e/admin", false),
            ("https://allowed.example/app%2F..%2Fadmin", false),
            ("https://allowed.example/app/%5c..%5cadmin", false),
            ("%2f%2fevil.example", false),
            // Path parameters and double encoding under a prefix.
            ("https://allowed.example/app/..;/admin", false),
            ("https://allowed.example/app;x=1/notebooks", false),
            ("https://allowed.example/app/x;jsessionid=1", false),
            ("https://allowed.example/app/%252e%252e/admin", false),
            ("https://allowed.example/app/%252E%252E/admin", false),
            ("https://allowed.example/app/%252f..", false),
            ("https://allowed.example/app/100%25", false),
            ("https://allowed.example/app/x?next=a;b%25c", true),
            ("https%3a%2f%2fevil.example", false),
            // Tab and newline injection.
            ("https://allowed.example/app/\t", false),
            ("https://evil.example\n.allowed.example/app/", false),
            ("java\tscript:alert(1)", false),
            ("https://allowed.example/app/\r\nSet-Cookie:x=y", false),
            (" https://allowed.example/app/", false),
            // Path prefixes.
            ("https://allowed.example/application", false),
            ("https://allowed.example/app../", false),
            ("https://allowed.example/app/../admin", false),
            ("https://allowed.example/admin/../app/x", true),
            ("https://allowed.example/exact/login/more", false),
            ("https://allowed.example/exact/log", false),
            ("https://allowed.example/exact", false),
            ("https://allowed.example/APP/", false),
            // A fragment is Tessera's to set.
            ("https://allowed.example/app/#x", false),
            ("", false),
        ];
        for (raw, allowed) in cases {
            assert_eq!(
                client.return_to(raw).is_some(),
                *allowed,
                "return_to = {raw:?}"
            );
        }
    }

    #[test]
    fn a_matched_return_to_is_redirected_to_in_its_normalized_form() {
        let client = client(&["https://allowed.example/app/*"]);
        let target = client
            .return_to("https://ALLOWED.example:443/app/./x")
            .unwrap();
        assert_eq!(target.as_str(), "https://allowed.example/app/x");
    }

    #[test]
    fn a_query_token_replaces_any_token_already_in_the_url() {
        let client = client(&["https://allowed.example/app/*"]);
        let target = client
            .return_to("https://allowed.example/app/?token=planted&next=/x")
            .unwrap();
        let delivery = TokenDelivery::Query {
            param: "token".into(),
        };
        assert_eq!(
            target.with_token(&delivery, "a.b.c"),
            "https://allowed.example/app/?next=%2Fx&token=a.b.c"
        );
        let fragment = TokenDelivery::Fragment {
            param: "jwt".into(),
        };
        assert_eq!(
            target.with_token(&fragment, "a.b.c"),
            "https://allowed.example/app/?token=planted&next=/x#jwt=a.b.c"
        );
    }

    #[test]
    fn redirect_uris_are_checked_when_registered() {
        for bad in [
            "allowed.example/app",
            "https://allowed.example/app*",
            "https://allowed.example/*/x",
            "https://allowed.example/app?x=1",
            "https://allowed.example/app#x",
            "https://user@allowed.example/",
            "javascript:alert(1)",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RedirectUri::parse("https://allowed.example/*").is_ok());
    }

    fn settings(delivery: DeliveryKind) -> ClientSettings {
        ClientSettings {
            id: "hub".into(),
            audience: "notebooks".into(),
            redirect_uris: vec!["https://hub.example.com/hub/*".into()],
            scopes: None,
            token_delivery: delivery,
            param_name: None,
            cookie_name: None,
            cookie_domain: None,
        }
    }

    fn register(entry: ClientSettings) -> anyhow::Result<ClientRegistry> {
        ClientRegistry::from_settings(&[entry], &["notebooks".into()], "https://sso.example.com")
    }

    #[test]
    fn a_client_audience_must_be_allowed() {
        let mut entry = settings(DeliveryKind::Query);
        entry.audience = "billing".into();
        assert!(register(entry).is_err());
    }

    #[test]
    fn client_ids_are_unique() {
        let entry = settings(DeliveryKind::Query);
        assert!(
            ClientRegistry::from_settings(
                &[entry.clone(), entry],
                &["notebooks".into()],
                "https://sso.example.com"
            )
            .is_err()
        );
    }

    #[test]
    fn a_token_cookie_must_cover_the_issuer_and_every_redirect_uri() {
        let mut entry = settings(DeliveryKind::Cookie);
        assert!(register(entry.clone()).is_err(), "cookie_name is required");
        entry.cookie_name = Some("hub_token".into());
        assert!(
            register(entry.clone()).is_err(),
            "a host-only cookie on sso.example.com never reaches hub.example.com"
        );
        entry.cookie_domain = Some("example.com".into());
        let registry = register(entry.clone()).unwrap();
        assert_eq!(
            registry.get("hub").unwrap().delivery,
            TokenDelivery::Cookie {
                name: "hub_token".into(),
                domain: Some("example.com".into())
            }
        );
        entry.cookie_domain = Some("hub.example.com".into());
        assert!(register(entry.clone()).is_err(), "the issuer cannot set it");
        entry.cookie_domain = Some("example.com".into());
        entry.cookie_name = Some("tessera_session".into());
        assert!(register(entry).is_err(), "Tessera's own cookie");
    }

    #[test]
    fn delivery_options_must_fit_the_delivery() {
        let mut entry = settings(DeliveryKind::Query);
        entry.cookie_name = Some("x".into());
        assert!(register(entry).is_err());
        let mut entry = settings(DeliveryKind::Fragment);
        entry.param_name = Some("bad name".into());
        assert!(register(entry).is_err());
        let mut entry = settings(DeliveryKind::Query);
        entry.param_name = Some("auth_token".into());
        assert_eq!(
            register(entry).unwrap().get("hub").unwrap().delivery,
            TokenDelivery::Query {
                param: "auth_token".into()
            }
        );
    }
}
