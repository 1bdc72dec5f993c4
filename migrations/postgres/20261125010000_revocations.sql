-- The revocation feed: what verifiers must stop accepting before the tokens
-- expire. Written in the same statement as the change it records.
create table revocations (
    seq bigserial primary key,
    -- session_revoked | user_disabled | user_enabled
    kind text not null,
    -- the session id or user id
    subject text not null,
    at timestamptz not null default now()
);
create index revocations_at_idx on revocations (at);
