create table users (
    id uuid primary key,
    username text not null,
    -- The name folded to lower case (Unicode) by Tessera: names are unique
    -- regardless of case, the same way on every backend.
    username_key text not null constraint users_username_key unique,
    email text,
    password_hash text not null,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table grants (
    user_id uuid not null references users (id) on delete cascade,
    audience text not null,
    scope text not null,
    created_at timestamptz not null default now(),
    primary key (user_id, audience, scope)
);

create table sessions (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    client_id text not null default '',
    ip text,
    user_agent text,
    -- The key that signed the session token.
    kid text not null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz not null default now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
create index sessions_user_id_idx on sessions (user_id);
create index sessions_kid_idx on sessions (kid) where revoked_at is null;
