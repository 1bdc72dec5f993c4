-- Failed-login counters, shared by every replica. `key` is
-- `user:{username}|ip:{ip}`, `ip:{ip}` or `account:{username}`.
create table login_throttle (
    key text primary key,
    failures integer not null,
    last_failure_at timestamptz not null,
    blocked_until timestamptz
);

-- What happened, for people: logins, authorizations, logouts, changes.
-- Never a password or a token.
create table audit_log (
    id bigserial primary key,
    at timestamptz not null default now(),
    event text not null,
    outcome text not null,
    username text,
    user_id uuid,
    ip text,
    user_agent text,
    detail text not null default ''
);
create index audit_log_at_idx on audit_log (at);
