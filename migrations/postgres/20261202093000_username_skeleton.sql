-- The confusable skeleton (Unicode TR39) of each user name's key: names
-- that render alike share it, and the unique index refuses the second, also
-- when two replicas add them at once. SQL can compute neither the skeleton
-- nor the key's NFKC form, so the column starts empty and Tessera fills it,
-- and brings username_key to today's form, right after migrating and before
-- it serves. A user whose folded name an older user holds keeps null here
-- (a unique index admits many) and the key it had.
alter table users add column username_skeleton text;
create unique index users_username_skeleton_key on users (username_skeleton);

-- Logging in looks for the exact name first, for those users.
create index users_username_idx on users (username);
