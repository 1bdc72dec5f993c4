-- As in Postgres: OAuth 2.0 / OpenID Connect clients, lists as JSON arrays,
-- only the SHA-256 of a confidential client's secret.
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
    is_active integer not null,
    created_at text not null,
    updated_at text not null,
    check ((required_grant_audience is null) = (required_grant_scope is null))
);
