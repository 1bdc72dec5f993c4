-- Authorization codes and refresh tokens of the OpenID Connect flows. Only
-- the SHA-256 of a code or token is kept. Both are bound to a client and a
-- Tessera session: ending either ends them. The client is no foreign key:
-- every insert would share-lock the client's one row, which concurrent
-- grants of a busy client then queue on; deleting a client deletes its
-- codes and tokens itself.
create table oauth_codes (
    code_hash text primary key,
    client_id text not null,
    session_id uuid not null references sessions (id) on delete cascade,
    redirect_uri text not null,
    scope text not null,
    nonce text,
    code_challenge text,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    -- Set by the one exchange that may succeed, with the refresh-token
    -- family it started: a replay revokes that family.
    used_at timestamptz,
    -- Set when the code is presented again: no refresh token may join
    -- its family after that.
    replayed_at timestamptz,
    family_id uuid
);
create index oauth_codes_expires_at on oauth_codes (expires_at);
create index oauth_codes_family on oauth_codes (family_id);

create table oauth_refresh_tokens (
    token_hash text primary key,
    -- Every token rotated from one code exchange; reuse of a rotated token
    -- revokes all of them.
    family_id uuid not null,
    client_id text not null,
    session_id uuid not null references sessions (id) on delete cascade,
    scope text not null,
    created_at timestamptz not null,
    used_at timestamptz,
    revoked_at timestamptz
);
create index oauth_refresh_tokens_family on oauth_refresh_tokens (family_id);
create index oauth_refresh_tokens_session on oauth_refresh_tokens (session_id);
