//! The statements that read the same in both dialects, each written once.
//! Placeholders are `$1`, `$2`, …, which SQLite reads too; each backend
//! binds ids and timestamps in its own form. A statement the dialects say
//! differently stays in its backend.

use super::rows::{session_columns, session_user_columns, user_columns};

pub(super) const COUNT_USERS: &str = "select count(*) from users";

/// `$1` the name, `$2` its key: the user of exactly that name first.
pub(super) const FIND_USER_BY_NAME: &str = concat!(
    "select ",
    user_columns!(),
    r#"
    from users where username = $1 or username_key = $2
    order by username = $1 desc
    limit 1
    "#
);

pub(super) const LIST_USERS: &str = concat!(
    "select ",
    user_columns!(),
    " from users order by username_key"
);

/// `$1` the offset, `$2` the limit.
pub(super) const LIST_USERS_PAGE: &str = concat!(
    "select ",
    user_columns!(),
    " from users order by username_key limit $2 offset $1"
);

pub(super) const FIND_USER_BY_ID: &str =
    concat!("select ", user_columns!(), " from users where id = $1");

pub(super) const DELETE_USER: &str = "delete from users where id = $1";

/// `$1` the user.
pub(super) const SESSIONS_OF_USER: &str = concat!(
    "select ",
    session_columns!(),
    " from sessions where user_id = $1 order by created_at desc, id"
);

/// `$1` the user.
pub(super) const GRANTS: &str =
    "select audience, scope from grants where user_id = $1 order by audience, scope";

/// `$1` the session.
pub(super) const FIND_SESSION: &str = concat!(
    "select ",
    session_user_columns!(),
    " from sessions s join users u on u.id = s.user_id where s.id = $1"
);

/// `$1` the session, `$2` the audience, `$3` the scope.
pub(super) const SESSION_GRANT: &str = concat!(
    "select ",
    session_user_columns!(),
    r#",
           exists(select 1 from grants g
                  where g.user_id = s.user_id and g.audience = $2 and g.scope = $3)
               as granted
    from sessions s join users u on u.id = s.user_id
    where s.id = $1
    "#
);

pub(super) const LATEST_REVOCATION: &str = "select coalesce(max(seq), 0) from revocations";

/// `$1` after this sequence number, `$2` up to this one, `$3` newer than
/// this time.
pub(super) const REVOCATIONS: &str = r#"
    select seq, kind, subject, at from revocations
    where seq > $1 and seq <= $2 and at > $3
    order by seq
    "#;

/// Counts a failure on counter `$1` at `$2`, starting over when the last
/// failure is before `$3`. A blocked counter is left as it is: no row
/// returns.
pub(super) const COUNT_LOGIN_FAILURE: &str = r#"
    insert into login_throttle as t (key, failures, last_failure_at)
    values ($1, 1, $2)
    on conflict (key) do update set
        failures = case when t.last_failure_at < $3 then 1 else t.failures + 1 end,
        last_failure_at = $2
    where t.blocked_until is null or t.blocked_until <= $2
    returning failures
    "#;

pub(super) const BLOCKED_UNTIL: &str = "select blocked_until from login_throttle where key = $1";

pub(super) const SET_BLOCKED_UNTIL: &str =
    "update login_throttle set blocked_until = $2 where key = $1";

pub(super) const CLEAR_LOGIN_FAILURES: &str = "delete from login_throttle where key = $1";

/// `$1` the first key, `$2` the key after the last.
pub(super) const CLEAR_LOGIN_FAILURES_IN_RANGE: &str =
    "delete from login_throttle where key >= $1 and key < $2";

/// `$1` the limit.
pub(super) const AUDIT_TAIL: &str = r#"
    select at, event, outcome, username, user_id, ip, user_agent, detail
    from audit_log order by id desc limit $1
    "#;

/// `$1` now.
pub(super) const COUNT_LIVE_SESSIONS_BY_KID: &str = r#"
    select kid, count(*) from sessions
    where revoked_at is null and (expires_at is null or expires_at > $1)
    group by kid order by kid
    "#;

/// `$1` the kid, `$2` now.
pub(super) const LIVE_SESSIONS_SIGNED_BY: &str = r#"
    select id from sessions
    where kid = $1 and revoked_at is null and (expires_at is null or expires_at > $2)
    order by created_at, id
    "#;
