-- Failed-login counters. `key` is `user:{username}|ip:{ip}`, `ip:{ip}` or
-- `account:{username}`.
create table login_throttle (
    key text primary key,
    failures integer not null,
    last_failure_at text not null,
    blocked_until text
);

-- What happened, for people: logins, authorizations, logouts, changes.
-- Never a password or a token.
create table audit_log (
    id integer primary key autoincrement,
    at text not null,
    event text not null,
    outcome text not null,
    username text,
    user_id text,
    ip text,
    user_agent text,
    detail text not null default ''
);
create index audit_log_at_idx on audit_log (at);
