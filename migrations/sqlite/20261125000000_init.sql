-- The same schema as Postgres. SQLite has no uuid or timestamptz types:
-- ids are TEXT, hyphenated lower-case UUIDs; timestamps are TEXT in one
-- fixed-width UTC form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so that comparing
-- them as text compares them as times; booleans are INTEGER 0/1.

create table users (
    id text primary key,
    username text not null,
    -- The name folded to lower case (Unicode) by Tessera.
    username_key text not null unique,
    email text,
    password_hash text not null,
    is_active integer not null default 1,
    created_at text not null,
    updated_at text not null
);

create table grants (
    user_id text not null references users (id) on delete cascade,
    audience text not null,
    scope text not null,
    created_at text not null,
    primary key (user_id, audience, scope)
);

create table sessions (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    client_id text not null default '',
    ip text,
    user_agent text,
    kid text not null,
    created_at text not null,
    last_used_at text not null,
    expires_at text,
    revoked_at text
);
create index sessions_user_id_idx on sessions (user_id);
create index sessions_kid_idx on sessions (kid) where revoked_at is null;
