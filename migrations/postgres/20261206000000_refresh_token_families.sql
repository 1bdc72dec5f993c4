-- One row per refresh-token family: every token rotated from one code
-- exchange. The row holds the SHA-256 of the family's one current token,
-- and a token names its family (its first 32 characters), so a rotation
-- is one update of one row, changing no indexed column.
create table oauth_refresh_families (
    family_id uuid primary key,
    token_hash text not null,
    client_id text not null,
    session_id uuid not null references sessions (id) on delete cascade,
    scope text not null,
    created_at timestamptz not null,
    rotated_at timestamptz not null,
    revoked_at timestamptz,
    -- The hashes of the tokens the last 16 rotations spent, newest first,
    -- space-separated: one presented again is a token Tessera issued, whose
    -- reuse revokes the family, and not a guess at the family's id.
    spent text not null default ''
-- Every rotation writes a new version of its row: room on the row's page
-- lets it stay there (a heap-only update, with no index entry to add).
) with (fillfactor = 50);
create index oauth_refresh_families_session on oauth_refresh_families (session_id);

-- Tokens of the 43-character form, which name no family, are found by
-- their hash in `oauth_refresh_tokens`: the live one of each family that
-- is neither revoked nor started by a replayed code becomes its current
-- token.
insert into oauth_refresh_families
    (family_id, token_hash, client_id, session_id, scope, created_at, rotated_at, revoked_at)
select distinct on (t.family_id)
       t.family_id, t.token_hash, t.client_id, t.session_id, t.scope, t.created_at,
       t.created_at, null
from oauth_refresh_tokens t
where t.used_at is null and t.revoked_at is null
  and not exists (select 1 from oauth_refresh_tokens r
                  where r.family_id = t.family_id and r.revoked_at is not null)
  and not exists (select 1 from oauth_codes c
                  where c.family_id = t.family_id and c.replayed_at is not null)
order by t.family_id, t.created_at desc;

-- A replayed code names its family on its own row; nothing looks codes up
-- by family.
drop index oauth_codes_family;
-- A code is updated once, when it is exchanged: room on its pages keeps
-- that update heap-only (for pages written from here on).
alter table oauth_codes set (fillfactor = 70);
