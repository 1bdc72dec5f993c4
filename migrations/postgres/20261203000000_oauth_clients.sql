-- OAuth 2.0 / OpenID Connect clients, registered by the operator (CLI or
-- admin API) and shared by every replica. Lists are JSON arrays of strings,
-- as in SQLite. A confidential client's secret is 256 random bits; only its
-- SHA-256 is kept. A public client has none.
create table oauth_clients (
    id text primary key,
    secret_hash text,
    redirect_uris text not null,
    post_logout_redirect_uris text not null,
    audience text not null,
    scopes text not null,
    grant_types text not null,
    required_grant_audience text,
    required_grant_scope text,
    is_active boolean not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    check ((required_grant_audience is null) = (required_grant_scope is null))
);
