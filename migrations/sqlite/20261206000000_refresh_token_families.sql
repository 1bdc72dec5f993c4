-- As in Postgres: one row per refresh-token family, holding the SHA-256 of
-- its one current token and of those the last 16 rotations spent.
create table oauth_refresh_families (
    family_id text primary key,
    token_hash text not null,
    client_id text not null,
    session_id text not null references sessions (id) on delete cascade,
    scope text not null,
    created_at text not null,
    rotated_at text not null,
    revoked_at text,
    spent text not null default ''
);
create index oauth_refresh_families_session on oauth_refresh_families (session_id);

-- Tokens of the 43-character form: the live one of each family that is
-- neither revoked nor started by a replayed code becomes its current
-- token (the newest, should a family hold two).
insert into oauth_refresh_families
    (family_id, token_hash, client_id, session_id, scope, created_at, rotated_at, revoked_at)
select t.family_id, t.token_hash, t.client_id, t.session_id, t.scope, t.created_at,
       t.created_at, null
from oauth_refresh_tokens t
where t.used_at is null and t.revoked_at is null
  and not exists (select 1 from oauth_refresh_tokens r
                  where r.family_id = t.family_id and r.revoked_at is not null)
  and not exists (select 1 from oauth_codes c
                  where c.family_id = t.family_id and c.replayed_at is not null)
  and not exists (select 1 from oauth_refresh_tokens n
                  where n.family_id = t.family_id and n.used_at is null
                    and n.revoked_at is null
                    and (n.created_at > t.created_at
                         or (n.created_at = t.created_at and n.token_hash > t.token_hash)));

drop index oauth_codes_family;
