-- As in Postgres: one row per refresh-token family, holding the SHA-256 of
-- its one current token.
create table oauth_refresh_families (
    family_id text primary key,
    token_hash text not null,
    client_id text not null,
    session_id text not null references sessions (id) on delete cascade,
    scope text not null,
    created_at text not null,
    rotated_at text not null,
    revoked_at text
);
create index oauth_refresh_families_session on oauth_refresh_families (session_id);

-- The live token of each family issued before, which names no family.
insert or ignore into oauth_refresh_families
    (family_id, token_hash, client_id, session_id, scope, created_at, rotated_at, revoked_at)
select t.family_id, t.token_hash, t.client_id, t.session_id, t.scope, t.created_at,
       t.created_at, null
from oauth_refresh_tokens t
where t.used_at is null and t.revoked_at is null
  and not exists (select 1 from oauth_refresh_tokens r
                  where r.family_id = t.family_id and r.revoked_at is not null)
order by t.created_at desc;

-- A replayed code is found by its hash now, not by the family it started.
drop index oauth_codes_family;
