-- As in Postgres: authorization codes and refresh tokens, only their
-- SHA-256 kept, bound to a client (no foreign key: deleting a client
-- deletes them) and a Tessera session.
create table oauth_codes (
    code_hash text primary key,
    client_id text not null,
    session_id text not null references sessions (id) on delete cascade,
    redirect_uri text not null,
    scope text not null,
    nonce text,
    code_challenge text,
    created_at text not null,
    expires_at text not null,
    -- Set by the one exchange that may succeed, with the refresh-token
    -- family it started: a replay revokes that family.
    used_at text,
    -- Set when the code is presented again: no refresh token may join
    -- its family after that.
    replayed_at text,
    family_id text
);
create index oauth_codes_expires_at on oauth_codes (expires_at);
create index oauth_codes_family on oauth_codes (family_id);

create table oauth_refresh_tokens (
    token_hash text primary key,
    -- Every token rotated from one code exchange; reuse of a rotated token
    -- revokes all of them.
    family_id text not null,
    client_id text not null,
    session_id text not null references sessions (id) on delete cascade,
    scope text not null,
    created_at text not null,
    used_at text,
    revoked_at text
);
create index oauth_refresh_tokens_family on oauth_refresh_tokens (family_id);
create index oauth_refresh_tokens_session on oauth_refresh_tokens (session_id);
