//! A tiny downstream site, as a service behind Tessera would be: it sends
//! visitors without a token to Tessera's login page, takes the token from
//! the query on the way back, verifies it offline with the JWKS
//! (jsonwebtoken), keeps it in a cookie of its own, and asks the revocation
//! feed on every page, so a logout elsewhere reaches it within one poll.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::cookie::Cookie;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

use crate::helpers::verify_with_jwks;

pub struct Downstream {
    /// The client id it is registered under, also its path prefix.
    client_id: String,
    audience: String,
    /// `http://127.0.0.1:PORT/{client_id}`.
    base: String,
    tessera: String,
    issuer: String,
    http: reqwest::Client,
}

impl Downstream {
    /// Serves `/{client_id}/` on `listener` for the Tessera at `tessera`
    /// (its issuer too).
    pub fn serve(listener: TcpListener, client_id: &str, audience: &str, tessera: &str) {
        let port = listener.local_addr().unwrap().port();
        let site = Arc::new(Downstream {
            client_id: client_id.into(),
            audience: audience.into(),
            base: format!("http://127.0.0.1:{port}/{client_id}"),
            tessera: tessera.into(),
            issuer: tessera.into(),
            http: reqwest::Client::new(),
        });
        let prefix = format!("/{client_id}");
        let data = web::Data::from(site);
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).service(
                web::scope(&prefix)
                    .route("/", web::get().to(home))
                    .route("/callback", web::get().to(callback)),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
    }

    fn home(&self) -> String {
        format!("{}/", self.base)
    }

    fn cookie_name(&self) -> String {
        format!("{}_token", self.client_id)
    }

    fn login_url(&self) -> String {
        let mut url = url::Url::parse(&format!("{}/login", self.tessera)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("return_to", &format!("{}/callback", self.base));
        url.into()
    }

    /// The claims of `token` if it verifies and its session is not in the
    /// revocation feed.
    async fn verify(&self, token: &str) -> Option<Value> {
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.tessera))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let claims = verify_with_jwks(token, &jwks, &self.issuer, &self.audience).ok()?;
        let feed: Value = self
            .http
            .get(format!("{}/revocations", self.tessera))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let revoked = feed["entries"].as_array()?.iter().any(|entry| {
            (entry["kind"] == "session_revoked" && entry["id"] == claims["sid"])
                || (entry["kind"] == "user_disabled" && entry["id"] == claims["sub"])
        });
        (!revoked).then_some(claims)
    }
}

fn page(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(format!(
            "<!doctype html><html><head><title>Downstream</title></head><body>{body}</body></html>"
        ))
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Signed in: the user's name and a way out. Otherwise: off to Tessera.
async fn home(req: HttpRequest, site: web::Data<Downstream>) -> HttpResponse {
    let token = req
        .cookie(&site.cookie_name())
        .map(|c| c.value().to_owned());
    let claims = match token {
        Some(token) => site.verify(&token).await,
        None => None,
    };
    match claims {
        Some(claims) => {
            let logout = format!(
                "{}/logout?return_to={}",
                site.tessera,
                url::form_urlencoded::byte_serialize(site.home().as_bytes()).collect::<String>()
            );
            page(format!(
                r#"<h1>{client}</h1><p>Signed in as <strong id="user">{user}</strong></p>
                   <p><a id="logout" href="{logout}">Sign out</a></p>"#,
                client = site.client_id,
                user = claims["username"].as_str().unwrap_or_default(),
            ))
        }
        None => {
            let mut gone = Cookie::new(site.cookie_name(), "");
            gone.set_path("/");
            gone.make_removal();
            let mut response = redirect(&site.login_url());
            let _ = response.add_cookie(&gone);
            response
        }
    }
}

/// Back from Tessera with `?token=…`.
async fn callback(req: HttpRequest, site: web::Data<Downstream>) -> HttpResponse {
    let token = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned());
    match token {
        Some(token) if site.verify(&token).await.is_some() => {
            let mut cookie = Cookie::new(site.cookie_name(), token);
            cookie.set_path("/");
            cookie.set_http_only(true);
            let mut response = redirect(&site.home());
            let _ = response.add_cookie(&cookie);
            response
        }
        _ => HttpResponse::Unauthorized().body("no valid token"),
    }
}
