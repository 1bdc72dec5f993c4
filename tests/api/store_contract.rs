//! The storage contract: the same cases against every backend, straight on
//! the `Store` trait.

use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use sqlx::{Connection, PgConnection, SqliteConnection};
use uuid::Uuid;

use tessera::store::{
    CodeExchange, NewAuthorizationCode, NewSession, NewUser, OAuthClient, Redemption,
    RefreshRotation, Reservation, Rotation, Store, StoreError, ThrottleCounter, ThrottleKeys, User,
};

use crate::helpers::{Backend, TestDatabase};

async fn user(store: &dyn Store, name: &str) -> User {
    store
        .create_user(
            NewUser {
                username: name,
                email: Some("someone@example.com"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            },
            Utc::now(),
        )
        .await
        .unwrap()
}

fn new_session(user_id: Uuid) -> NewSession<'static> {
    NewSession {
        id: Uuid::new_v4(),
        user_id,
        client_id: "portal",
        ip: Some("192.0.2.1"),
        user_agent: Some("curl/8"),
        kid: "tessera-test",
        expires_at: None,
        token_id: "first-token",
    }
}

async fn users_are_unique_regardless_of_case(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "Ålice").await;

    let duplicate = store
        .create_user(
            NewUser {
                username: "åLICE",
                email: None,
                password_hash: "x",
            },
            Utc::now(),
        )
        .await;

    assert!(matches!(duplicate, Err(StoreError::UsernameTaken)));
    let found = store.find_user_by_name("ÅLICE").await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(found.username, "Ålice");
    assert!(store.find_user_by_name("bob").await.unwrap().is_none());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn users_can_be_listed_changed_disabled_and_enabled(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let bob = user(store.as_ref(), "bob").await;
    user(store.as_ref(), "alice").await;

    store
        .set_password_hash(bob.id, "new-hash", None, Utc::now())
        .await
        .unwrap();
    store.set_active(bob.id, false, Utc::now()).await.unwrap();

    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let bob = store.find_user_by_name("bob").await.unwrap().unwrap();
    assert_eq!(bob.password_hash, "new-hash");
    assert!(!bob.is_active);
    assert!(bob.updated_at >= bob.created_at);
    store.set_active(bob.id, true, Utc::now()).await.unwrap();
    assert!(
        store
            .find_user_by_name("bob")
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    let missing = store.set_active(Uuid::new_v4(), true, Utc::now()).await;
    assert!(matches!(missing, Err(StoreError::UserNotFound)));
    let missing = store
        .set_password_hash(Uuid::new_v4(), "x", None, Utc::now())
        .await;
    assert!(matches!(missing, Err(StoreError::UserNotFound)));
}

async fn grants_are_added_once_and_removed_by_audience(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    store
        .add_grants(
            alice.id,
            "notebooks",
            &scopes(&["write", "read"]),
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .add_grants(alice.id, "notebooks", &scopes(&["read"]), Utc::now())
        .await
        .unwrap();
    store
        .add_grants(alice.id, "billing", &scopes(&["read"]), Utc::now())
        .await
        .unwrap();
    let removed = store
        .remove_grants(alice.id, "notebooks", &scopes(&["write", "absent"]))
        .await
        .unwrap();

    assert_eq!(removed, 1);
    let grants: Vec<(String, String)> = store
        .grants(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.audience, g.scope))
        .collect();
    assert_eq!(
        grants,
        [
            ("billing".into(), "read".into()),
            ("notebooks".into(), "read".into())
        ]
    );
}

async fn a_session_is_created_found_and_revoked_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let expires = Utc::now() + Duration::hours(1);

    let session = store
        .create_session(
            NewSession {
                expires_at: Some(expires),
                ..new_session(alice.id)
            },
            Utc::now(),
        )
        .await
        .unwrap();

    let (found, owner) = store.find_session(session.id).await.unwrap().unwrap();
    assert_eq!(found, session);
    assert_eq!(owner.id, alice.id);
    assert_eq!(found.client_id, "portal");
    assert_eq!(found.ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(found.kid, "tessera-test");
    assert_eq!(
        found.expires_at.unwrap().timestamp_micros(),
        expires.timestamp_micros()
    );
    assert!(found.is_live(Utc::now()));
    assert!(store.revoke_session(session.id, Utc::now()).await.unwrap());
    assert!(!store.revoke_session(session.id, Utc::now()).await.unwrap());
    let (revoked, _) = store.find_session(session.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(!revoked.is_live(Utc::now()));
    assert!(store.find_session(Uuid::new_v4()).await.unwrap().is_none());
    assert!(
        !store
            .revoke_session(Uuid::new_v4(), Utc::now())
            .await
            .unwrap()
    );
}

async fn the_authorization_context_holds_the_scopes_of_one_audience(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let scopes = ["b:write".to_owned(), "a:read".to_owned()];
    store
        .add_grants(alice.id, "notebooks", &scopes, Utc::now())
        .await
        .unwrap();
    store
        .add_grants(alice.id, "billing", &["pay".to_owned()], Utc::now())
        .await
        .unwrap();
    let session = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();

    let context = store
        .authorization_context(session.id, "notebooks", Utc::now())
        .await
        .unwrap()
        .unwrap();
    let none = store
        .authorization_context(session.id, "elsewhere", Utc::now())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(context.scopes, ["a:read", "b:write"]);
    assert_eq!(context.user.id, alice.id);
    assert_eq!(context.session.id, session.id);
    assert!(none.scopes.is_empty());
    assert!(
        store
            .authorization_context(Uuid::new_v4(), "notebooks", Utc::now())
            .await
            .unwrap()
            .is_none()
    );
}

async fn two_logins_for_one_user_at_once_make_two_sessions(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .create_session(new_session(alice.id), Utc::now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }

    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    for id in ids {
        assert!(store.find_session(id).await.unwrap().is_some());
    }
}

async fn a_revocation_while_authorizing_is_seen_by_every_later_authorization(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let session = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();

    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut live = 0;
            for _ in 0..50 {
                let context = store
                    .authorization_context(session.id, "tessera", Utc::now())
                    .await
                    .unwrap()
                    .unwrap();
                if context.session.is_live(Utc::now()) {
                    live += 1;
                }
            }
            live
        })
    };
    let revoked = store.revoke_session(session.id, Utc::now()).await.unwrap();
    reader.await.unwrap();

    assert!(revoked);
    let after = store
        .authorization_context(session.id, "tessera", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(!after.session.is_live(Utc::now()));
}

async fn an_export_imports_into_the_other_backend_unchanged(backend: Backend) {
    let source_db = TestDatabase::create(backend).await;
    let source = source_db.store().await;
    let alice = user(source.as_ref(), "alice").await;
    source
        .add_grants(alice.id, "notebooks", &["read".to_owned()], Utc::now())
        .await
        .unwrap();
    let live = source
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    let ended = source
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    source.revoke_session(ended.id, Utc::now()).await.unwrap();
    let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.5Z")
        .unwrap()
        .with_timezone(&Utc);
    source
        .create_oauth_client(&oauth_client("hub", now))
        .await
        .unwrap();
    let other = match backend {
        Backend::Postgres => Backend::Sqlite,
        Backend::Sqlite => Backend::Postgres,
    };
    let target_db = TestDatabase::create(other).await;
    let target = target_db.store().await;

    let mut lines = Vec::new();
    tessera::transfer::export(source.as_ref(), &mut lines)
        .await
        .unwrap();
    let counts = tessera::transfer::import(target.as_ref(), &mut lines.as_slice())
        .await
        .unwrap();

    assert_eq!(
        (counts.users, counts.grants, counts.sessions, counts.clients),
        (1, 1, 2, 1)
    );
    assert_eq!(
        target.export().await.unwrap(),
        source.export().await.unwrap()
    );
    let (session, _) = target.find_session(live.id).await.unwrap().unwrap();
    assert!(session.is_live(Utc::now()));
    // A second import would duplicate users: refused, nothing changed.
    let again = tessera::transfer::import(target.as_ref(), &mut lines.as_slice()).await;
    assert!(again.is_err());
    assert_eq!(target.count_users().await.unwrap(), 1);
}

async fn a_session_token_is_replaced_once_and_the_session_moves_to_the_new_key(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let session = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    let first = session.token_id.clone().unwrap();
    assert_eq!(first, "first-token");

    let replaced = store
        .replace_session_token(session.id, &first, "second", "tessera-next", Utc::now())
        .await
        .unwrap();
    // The replaced token cannot refresh again: of two refreshes, one wins.
    let again = store
        .replace_session_token(session.id, &first, "third", "tessera-next", Utc::now())
        .await
        .unwrap();

    assert!(replaced);
    assert!(!again);
    let (found, _) = store.find_session(session.id).await.unwrap().unwrap();
    assert_eq!(found.token_id.as_deref(), Some("second"));
    assert_eq!(found.kid, "tessera-next");
    let context = store
        .authorization_context(session.id, "tessera", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(context.session.token_id.as_deref(), Some("second"));
    store.revoke_session(session.id, Utc::now()).await.unwrap();
    let ended = store
        .replace_session_token(session.id, "second", "fourth", "tessera-next", Utc::now())
        .await
        .unwrap();
    assert!(!ended);
    let unknown = store
        .replace_session_token(
            Uuid::new_v4(),
            "second",
            "fourth",
            "tessera-next",
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(!unknown);
}

async fn live_sessions_are_counted_listed_and_revoked_by_the_key_that_signed_them(
    backend: Backend,
) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let mut live = Vec::new();
    for _ in 0..2 {
        live.push(
            store
                .create_session(new_session(alice.id), Utc::now())
                .await
                .unwrap()
                .id,
        );
    }
    store
        .create_session(
            NewSession {
                kid: "tessera-other",
                ..new_session(alice.id)
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let revoked = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    store.revoke_session(revoked.id, Utc::now()).await.unwrap();
    let expired = store
        .create_session(
            NewSession {
                expires_at: Some(Utc::now() - Duration::seconds(1)),
                ..new_session(alice.id)
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let now = Utc::now();

    let counts = store.count_live_sessions_by_kid(now).await.unwrap();
    let mut signed = store
        .live_sessions_signed_by("tessera-test", now)
        .await
        .unwrap();
    let revoked_now = store
        .revoke_sessions_signed_by("tessera-test", Utc::now())
        .await
        .unwrap();

    assert_eq!(
        counts,
        [
            ("tessera-other".to_owned(), 1),
            ("tessera-test".to_owned(), 2)
        ]
    );
    signed.sort();
    live.sort();
    assert_eq!(signed, live);
    assert_eq!(revoked_now, 2);
    // Verifiers learn of them from the revocation feed.
    let (feed, _) = store
        .revocations(0, Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    let mut fed: Vec<Uuid> = feed
        .iter()
        .filter(|entry| entry.kind == "session_revoked" && entry.subject != revoked.id.to_string())
        .map(|entry| Uuid::parse_str(&entry.subject).unwrap())
        .collect();
    fed.sort();
    assert_eq!(fed, live);
    let (still_expired, _) = store.find_session(expired.id).await.unwrap().unwrap();
    assert!(still_expired.revoked_at.is_none());
    assert_eq!(
        store.count_live_sessions_by_kid(Utc::now()).await.unwrap(),
        [("tessera-other".to_owned(), 1)]
    );
    assert!(
        store
            .live_sessions_signed_by("tessera-test", Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn users_are_paged_found_by_id_and_deleted_with_their_sessions(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    for name in ["carol", "alice", "dave", "bob"] {
        user(store.as_ref(), name).await;
    }
    let bob = store.find_user_by_name("bob").await.unwrap().unwrap();
    store
        .add_grants(bob.id, "notebooks", &["read".to_owned()], Utc::now())
        .await
        .unwrap();
    let session = store
        .create_session(new_session(bob.id), Utc::now())
        .await
        .unwrap();

    let page: Vec<String> = store
        .list_users_page(1, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(page, ["bob", "carol"]);
    assert_eq!(
        store.find_user_by_id(bob.id).await.unwrap(),
        Some(bob.clone())
    );
    assert!(store.delete_user(bob.id, Utc::now()).await.unwrap());
    assert!(!store.delete_user(bob.id, Utc::now()).await.unwrap());

    assert!(store.find_user_by_id(bob.id).await.unwrap().is_none());
    assert!(store.find_session(session.id).await.unwrap().is_none());
    assert!(store.grants(bob.id).await.unwrap().is_empty());
    let (feed, _) = store
        .revocations(0, Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    assert!(
        feed.iter()
            .any(|e| e.kind == "user_disabled" && e.subject == bob.id.to_string())
    );
}

async fn logging_out_everywhere_revokes_every_live_session_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let other = user(store.as_ref(), "bob").await;
    let first = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    let second = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    let ended = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    store.revoke_session(ended.id, Utc::now()).await.unwrap();
    let bobs = store
        .create_session(new_session(other.id), Utc::now())
        .await
        .unwrap();

    let mut revoked = store
        .revoke_user_sessions(alice.id, Utc::now())
        .await
        .unwrap();

    revoked.sort();
    let mut expected = vec![first.id, second.id];
    expected.sort();
    assert_eq!(revoked, expected);
    assert!(
        store
            .revoke_user_sessions(alice.id, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.sessions_of_user(alice.id).await.unwrap().len(), 3);
    assert!(
        store
            .sessions_of_user(alice.id)
            .await
            .unwrap()
            .iter()
            .all(|s| s.revoked_at.is_some())
    );
    let (bob_session, _) = store.find_session(bobs.id).await.unwrap().unwrap();
    assert!(bob_session.is_live(Utc::now()));
    let (feed, _) = store
        .revocations(0, Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    let revoked_in_feed = feed.iter().filter(|e| e.kind == "session_revoked").count();
    assert_eq!(revoked_in_feed, 3);
}

async fn throttle_counters_block_and_clear_one_user_name_only(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let now = Utc::now();
    let alice = ThrottleKeys {
        user_from: "user:alice|",
        user_until: "user:alice}",
        account: "account:alice",
    };
    let window_start = now - Duration::minutes(15);
    let counter = |key| ThrottleCounter { key, window_start };
    let never = |_: usize, _: i64| None;
    // Counts one attempt on `key`, returning what `block` was asked.
    let count = |key: &'static str| {
        let store = store.clone();
        async move {
            let seen = std::sync::Mutex::new(None);
            let record = |_: usize, failures: i64| {
                *seen.lock().unwrap() = Some(failures);
                None
            };
            let reserved = store
                .reserve_login_attempt(&[counter(key)], now, &record)
                .await
                .unwrap();
            assert_eq!(reserved, Reservation::Reserved, "{key}");
            seen.into_inner().unwrap().expect("block consulted")
        }
    };
    for key in [
        "user:alice|ip:192.0.2.1",
        "user:alice|ip:198.51.100.7",
        "user:alice2|ip:192.0.2.1",
        "user:alicf|ip:192.0.2.1",
        "account:alice",
        "account:alice2",
        "ip:192.0.2.1",
    ] {
        assert_eq!(count(key).await, 1);
    }
    assert_eq!(count("ip:192.0.2.1").await, 2, "counted on from one");

    // A block stops the next reservation before it counts anything.
    let blocked = now + Duration::seconds(30);
    let block_ip = |index: usize, _: i64| (index == 1).then_some(blocked);
    let both = [counter("user:alice|ip:192.0.2.1"), counter("ip:192.0.2.1")];
    assert_eq!(
        store
            .reserve_login_attempt(&both, now, &block_ip)
            .await
            .unwrap(),
        Reservation::Reserved
    );
    let refused = store
        .reserve_login_attempt(&both, now, &never)
        .await
        .unwrap();
    let Reservation::Blocked { index, until } = refused else {
        panic!("not blocked: {refused:?}");
    };
    assert_eq!(index, 1);
    assert!((until - blocked).num_milliseconds().abs() < 1, "{until}");
    // The refused attempt was not counted, on either counter.
    assert_eq!(count("user:alice|ip:192.0.2.1").await, 3);
    // Past the block, attempts count again.
    let later = store
        .reserve_login_attempt(&both, blocked + Duration::seconds(1), &never)
        .await
        .unwrap();
    assert_eq!(later, Reservation::Reserved);

    // Releasing takes one attempt back, never below zero.
    for key in ["account:alice2", "account:alice2", "nothing"] {
        store.release_login_attempt(key, false).await.unwrap();
    }
    assert_eq!(count("account:alice2").await, 1);
    // A release that unblocks lifts the block its attempt set.
    let always = |_: usize, _: i64| Some(now + Duration::hours(1));
    let lone = [counter("ip:203.0.113.9")];
    let first = store.reserve_login_attempt(&lone, now, &always).await;
    assert_eq!(first.unwrap(), Reservation::Reserved);
    let second = store.reserve_login_attempt(&lone, now, &never).await;
    assert!(matches!(second.unwrap(), Reservation::Blocked { .. }));
    store
        .release_login_attempt("ip:203.0.113.9", true)
        .await
        .unwrap();
    assert_eq!(count("ip:203.0.113.9").await, 1, "counted on from zero");

    store.clear_login_failures(&alice).await.unwrap();
    for key in [
        "user:alice|ip:192.0.2.1",
        "user:alice|ip:198.51.100.7",
        "account:alice",
    ] {
        assert_eq!(count(key).await, 1, "{key} starts over");
    }
    // The address's counter stays, blocked; other user names' counters
    // stay too.
    let address = store
        .reserve_login_attempt(&[counter("ip:192.0.2.1")], now, &never)
        .await
        .unwrap();
    assert!(
        matches!(address, Reservation::Blocked { .. }),
        "{address:?}"
    );
    for (key, expected) in [
        ("user:alice2|ip:192.0.2.1", 2),
        ("user:alicf|ip:192.0.2.1", 2),
        ("account:alice2", 2),
    ] {
        assert_eq!(count(key).await, expected, "{key}");
    }
}

async fn concurrent_reservations_of_one_counter_see_each_other(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let now = Utc::now();
    let window_start = now - Duration::minutes(15);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let store = store.clone();
        attempts.spawn(async move {
            // Each attempt from the third on blocks the counter for a minute.
            let block =
                |_: usize, failures: i64| (failures >= 3).then(|| now + Duration::minutes(1));
            let counters = [ThrottleCounter {
                key: "user:bob|ip:192.0.2.1",
                window_start,
            }];
            store
                .reserve_login_attempt(&counters, now, &block)
                .await
                .unwrap()
        });
    }
    let outcomes = attempts.join_all().await;
    let reserved = outcomes
        .iter()
        .filter(|o| **o == Reservation::Reserved)
        .count();
    assert_eq!(reserved, 3, "{outcomes:?}");
}

async fn last_use_is_recorded_at_most_once_a_minute(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let alice = user(store.as_ref(), "alice").await;
    let session = store
        .create_session(new_session(alice.id), Utc::now())
        .await
        .unwrap();
    let last_use = |store: Arc<dyn Store>| async move {
        store
            .authorization_context(session.id, "notebooks", Utc::now())
            .await
            .unwrap()
            .unwrap()
            .session
            .last_used_at
    };

    // Within a minute of the last use, authorizing writes nothing.
    last_use(store.clone()).await;
    assert_eq!(last_use(store.clone()).await, session.last_used_at);

    // After a minute, the next authorization records its use.
    let aged = Utc::now() - Duration::minutes(2);
    set_last_use(&db, session.id, aged).await;
    assert!(
        (last_use(store.clone()).await - aged)
            .num_milliseconds()
            .abs()
            < 1
    );
    let recorded = last_use(store.clone()).await;
    assert!(recorded > aged + Duration::minutes(1), "{recorded}");
    assert_eq!(last_use(store).await, recorded);
}

async fn set_last_use(db: &TestDatabase, id: Uuid, at: DateTime<Utc>) {
    let statement = "update sessions set last_used_at = $2 where id = $1";
    match db {
        TestDatabase::Postgres { .. } => {
            let mut conn = PgConnection::connect(&db.url()).await.unwrap();
            sqlx::query(statement)
                .bind(id)
                .bind(at)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        TestDatabase::Sqlite { .. } => {
            let mut conn = SqliteConnection::connect(&db.url()).await.unwrap();
            sqlx::query(statement)
                .bind(id.to_string())
                .bind(at.to_rfc3339_opts(SecondsFormat::Micros, true))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

async fn a_password_change_revokes_every_session_but_the_one_kept(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let bob = user(store.as_ref(), "bob").await;
    let kept = store
        .create_session(new_session(bob.id), Utc::now())
        .await
        .unwrap();
    let other = store
        .create_session(new_session(bob.id), Utc::now())
        .await
        .unwrap();
    let (_, cursor) = store
        .revocations(0, Utc::now() - Duration::hours(1))
        .await
        .unwrap();

    let revoked = store
        .set_password_hash(bob.id, "new-hash", Some(kept.id), Utc::now())
        .await
        .unwrap();

    assert_eq!(revoked, [other.id]);
    let (feed, _) = store
        .revocations(cursor, Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    let feed: Vec<(String, String)> = feed.into_iter().map(|r| (r.kind, r.subject)).collect();
    assert_eq!(feed, [("session_revoked".to_owned(), other.id.to_string())]);
    let (kept, _) = store.find_session(kept.id).await.unwrap().unwrap();
    assert!(kept.revoked_at.is_none());
    // Without a session to keep, every one goes.
    assert_eq!(
        store
            .set_password_hash(bob.id, "newer", None, Utc::now())
            .await
            .unwrap(),
        [kept.id]
    );
}

async fn a_hash_upgrade_keeps_sessions_and_never_undoes_a_password_change(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let bob = user(store.as_ref(), "bob").await;
    let session = store
        .create_session(new_session(bob.id), Utc::now())
        .await
        .unwrap();

    assert!(
        store
            .upgrade_password_hash(bob.id, &bob.password_hash, "upgraded", Utc::now())
            .await
            .unwrap()
    );
    let (session, _) = store.find_session(session.id).await.unwrap().unwrap();
    assert!(session.revoked_at.is_none());
    store
        .set_password_hash(bob.id, "changed", None, Utc::now())
        .await
        .unwrap();
    // A login that verified "upgraded" before the change comes late.
    assert!(
        !store
            .upgrade_password_hash(bob.id, "upgraded", "stale", Utc::now())
            .await
            .unwrap()
    );
    let bob = store.find_user_by_id(bob.id).await.unwrap().unwrap();
    assert_eq!(bob.password_hash, "changed");
}

async fn disabling_revokes_every_session_and_enabling_revives_none(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let bob = user(store.as_ref(), "bob").await;
    let session = store
        .create_session(new_session(bob.id), Utc::now())
        .await
        .unwrap();

    assert_eq!(
        store.set_active(bob.id, false, Utc::now()).await.unwrap(),
        [session.id]
    );
    assert!(
        store
            .set_active(bob.id, true, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );

    let (session, user) = store.find_session(session.id).await.unwrap().unwrap();
    assert!(user.is_active);
    assert!(!session.is_live(Utc::now()));
    let (feed, _) = store
        .revocations(0, Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    let kinds: Vec<&str> = feed.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["session_revoked", "user_disabled", "user_enabled"]);
}

async fn grants_and_sessions_for_a_deleted_user_are_user_not_found(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let bob = user(store.as_ref(), "bob").await;
    assert!(store.delete_user(bob.id, Utc::now()).await.unwrap());

    let grant = store
        .add_grants(bob.id, "notebooks", &["read".to_owned()], Utc::now())
        .await;
    let session = store.create_session(new_session(bob.id), Utc::now()).await;
    let password = store.set_password_hash(bob.id, "x", None, Utc::now()).await;

    assert!(matches!(grant, Err(StoreError::UserNotFound)), "{grant:?}");
    assert!(
        matches!(session, Err(StoreError::UserNotFound)),
        "{session:?}"
    );
    assert!(matches!(password, Err(StoreError::UserNotFound)));
}

async fn the_session_grant_says_whether_the_user_holds_one_scope_now(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let bob = user(store.as_ref(), "bob").await;
    let session = store
        .create_session(new_session(bob.id), Utc::now())
        .await
        .unwrap();
    store
        .add_grants(bob.id, "tessera", &["tessera:admin".to_owned()], Utc::now())
        .await
        .unwrap();

    let held = store
        .session_grant(session.id, "tessera", "tessera:admin")
        .await
        .unwrap()
        .unwrap();
    assert!(held.granted);
    assert_eq!(held.user.id, bob.id);
    assert_eq!(held.session.id, session.id);
    let elsewhere = store
        .session_grant(session.id, "notebooks", "tessera:admin")
        .await
        .unwrap()
        .unwrap();
    assert!(!elsewhere.granted);
    store
        .remove_grants(bob.id, "tessera", &["tessera:admin".to_owned()])
        .await
        .unwrap();
    let removed = store
        .session_grant(session.id, "tessera", "tessera:admin")
        .await
        .unwrap()
        .unwrap();
    assert!(!removed.granted);
    assert!(
        store
            .session_grant(Uuid::new_v4(), "tessera", "tessera:admin")
            .await
            .unwrap()
            .is_none()
    );
}

/// A confidential client as stored: every field round-trips.
fn oauth_client(id: &str, now: DateTime<Utc>) -> OAuthClient {
    OAuthClient {
        id: id.to_owned(),
        secret_hash: Some("ab".repeat(32)),
        redirect_uris: vec![
            "https://hub.example.com/hub/oauth_callback".into(),
            "http://127.0.0.1:8000/hub/oauth_callback".into(),
        ],
        post_logout_redirect_uris: vec!["https://hub.example.com/hub/".into()],
        audience: "notebooks".into(),
        scopes: vec!["openid".into(), "access".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        required_grant: Some(("notebooks".into(), "access".into())),
        is_active: true,
        created_at: now,
        updated_at: now,
    }
}

async fn oauth_clients_round_trip_and_change_one_field_at_a_time(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    // Whole microseconds: what both backends keep of a time.
    let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc);
    let hub = oauth_client("hub", now);
    let public = OAuthClient {
        secret_hash: None,
        required_grant: None,
        post_logout_redirect_uris: Vec::new(),
        ..oauth_client("cli", now)
    };
    store.create_oauth_client(&hub).await.unwrap();
    store.create_oauth_client(&public).await.unwrap();

    assert!(matches!(
        store.create_oauth_client(&hub).await,
        Err(StoreError::ClientIdTaken)
    ));
    assert_eq!(
        store.find_oauth_client("hub").await.unwrap(),
        Some(hub.clone())
    );
    assert_eq!(
        store.oauth_clients().await.unwrap(),
        vec![public.clone(), hub.clone()],
        "by id"
    );
    assert_eq!(store.find_oauth_client("nobody").await.unwrap(), None);

    let later = now + Duration::seconds(5);
    assert!(
        store
            .set_oauth_client_secret("hub", &"cd".repeat(32), later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_oauth_client_secret("cli", &"cd".repeat(32), later)
            .await
            .unwrap(),
        "a public client gets no secret"
    );
    assert!(
        store
            .set_oauth_client_active("hub", false, later)
            .await
            .unwrap()
    );
    let changed = store.find_oauth_client("hub").await.unwrap().unwrap();
    assert_eq!(changed.secret_hash, Some("cd".repeat(32)));
    assert!(!changed.is_active);
    assert_eq!((changed.created_at, changed.updated_at), (now, later));
    assert_eq!(store.find_oauth_client("cli").await.unwrap(), Some(public));

    assert!(store.delete_oauth_client("hub").await.unwrap());
    assert!(!store.delete_oauth_client("hub").await.unwrap());
    assert!(
        !store
            .set_oauth_client_active("hub", true, later)
            .await
            .unwrap()
    );
    assert_eq!(store.find_oauth_client("hub").await.unwrap(), None);
}

/// A code is redeemed once, starting its refresh-token family in the same
/// step; a replay marks it. A family rotates once per current token: a
/// stale token, another client or a revoked family rotates nothing.
/// The rotation of `family` from the token hashed `presented` to `new`,
/// by `client`, with the scopes at `audience`.
async fn rotated(
    store: Arc<dyn Store>,
    family: Uuid,
    presented: String,
    new: String,
    client: &'static str,
    audience: &'static str,
    now: DateTime<Utc>,
) -> Rotation {
    let rotation = RefreshRotation {
        family_id: family,
        presented_hash: &presented,
        new_hash: &new,
        client_id: client,
        audience,
    };
    store.rotate_refresh_token(rotation, now).await.unwrap()
}

async fn codes_redeem_once_and_refresh_families_rotate_once_per_token(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let now = Utc::now();
    let alice = user(store.as_ref(), "alice").await;
    store
        .add_grants(alice.id, "tessera", &["tessera:read".to_owned()], now)
        .await
        .unwrap();
    let session = store
        .create_session(new_session(alice.id), now)
        .await
        .unwrap();
    store
        .create_oauth_client(&oauth_client("hub", now))
        .await
        .unwrap();
    let code = |hash: &'static str| NewAuthorizationCode {
        code_hash: hash,
        client_id: "hub",
        session_id: session.id,
        redirect_uri: "https://hub.example.com/cb",
        scope: "openid",
        nonce: Some("n"),
        code_challenge: None,
        expires_at: now + Duration::seconds(60),
    };
    let exchange = |family, token: Option<&'static str>| CodeExchange {
        family_id: family,
        refresh_token_hash: token,
    };
    let rotate = |family, presented: &str, new: &str, client: &'static str| {
        rotated(
            store.clone(),
            family,
            presented.into(),
            new.into(),
            client,
            "tessera",
            now,
        )
    };
    store
        .create_authorization_code(code("c1"), now)
        .await
        .unwrap();
    let family = Uuid::new_v4();
    let Redemption::First {
        code: first,
        context,
    } = store
        .redeem_authorization_code("c1", exchange(family, None), "tessera", now)
        .await
        .unwrap()
    else {
        panic!("the first use redeems");
    };
    assert_eq!(first.nonce.as_deref(), Some("n"));
    assert_eq!(first.family_id, Some(family));
    assert_eq!(context.session.id, session.id);
    assert_eq!(context.scopes, ["tessera:read"]);
    let Redemption::Replayed(again) = store
        .redeem_authorization_code("c1", exchange(Uuid::new_v4(), Some("r0")), "tessera", now)
        .await
        .unwrap()
    else {
        panic!("the second use is a replay");
    };
    assert_eq!(again.family_id, Some(family), "the first use's family");
    assert!(matches!(
        store
            .redeem_authorization_code("nope", exchange(family, Some("r0")), "tessera", now)
            .await
            .unwrap(),
        Redemption::Unknown
    ));
    assert!(
        store.find_refresh_family(family).await.unwrap().is_none(),
        "a client that may not refresh starts no family, and a replay none"
    );

    // Rotation: once per current token, with the session's context.
    let other = Uuid::new_v4();
    store
        .create_authorization_code(code("c2"), now)
        .await
        .unwrap();
    assert!(matches!(
        store
            .redeem_authorization_code("c2", exchange(other, Some("r3")), "tessera", now)
            .await
            .unwrap(),
        Redemption::First { .. }
    ));
    let started = store.find_refresh_family(other).await.unwrap().unwrap();
    assert_eq!(
        started.token_hash, "r3",
        "the redemption started the family"
    );
    assert_eq!(
        (started.client_id.as_str(), started.session_id),
        ("hub", session.id)
    );
    assert!(
        matches!(
            rotate(other, "r3", "r4", "other-client").await,
            Rotation::Stale(_)
        ),
        "another client's token is not rotated"
    );
    let Rotation::Rotated {
        family: rotated,
        context,
    } = rotate(other, "r3", "r4", "hub").await
    else {
        panic!("the current token rotates");
    };
    assert_eq!(rotated.token_hash, "r4");
    assert_eq!(rotated.scope, "openid");
    assert_eq!(context.session.id, session.id);
    assert_eq!(context.user.id, alice.id);
    assert_eq!(context.scopes, ["tessera:read"]);
    let Rotation::Stale(stale) = rotate(other, "r3", "r5", "hub").await else {
        panic!("a rotated token is stale");
    };
    assert_eq!(stale.token_hash, "r4", "the stale use changed nothing");
    assert_eq!(
        stale.spent,
        ["r3"],
        "the rotation remembers the spent token"
    );
    assert!(matches!(
        rotate(Uuid::new_v4(), "r4", "r5", "hub").await,
        Rotation::Unknown
    ));
    // A family remembers the tokens of its last 16 rotations, newest first.
    let hashes: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("{i:064x}").into_boxed_str()))
        .collect();
    let mut current = "r4";
    for hash in &hashes {
        assert!(matches!(
            rotate(other, current, hash, "hub").await,
            Rotation::Rotated { .. }
        ));
        current = hash;
    }
    let remembered = store.find_refresh_family(other).await.unwrap().unwrap();
    assert_eq!(remembered.spent.len(), 16);
    assert_eq!(remembered.spent[0], hashes[18]);
    assert_eq!(remembered.spent[15], hashes[3]);
    assert!(store.revoke_refresh_family(other, now).await.unwrap());
    assert!(!store.revoke_refresh_family(other, now).await.unwrap());
    assert!(
        matches!(rotate(other, current, "r5", "hub").await, Rotation::Stale(f) if f.revoked_at.is_some()),
        "a revoked family rotates nothing"
    );
    assert!(store.legacy_refresh_family("r4").await.unwrap().is_none());

    // Deleting the client deletes its codes and families.
    assert!(store.delete_oauth_client("hub").await.unwrap());
    assert!(store.find_refresh_family(other).await.unwrap().is_none());
    assert!(matches!(
        store
            .redeem_authorization_code("c1", exchange(family, None), "tessera", now)
            .await
            .unwrap(),
        Redemption::Unknown
    ));
}

/// Redemptions and rotations at once, as a busy token endpoint makes them:
/// each gets its own code's or family's context, and of several uses of
/// one code or one token exactly one succeeds.
async fn concurrent_redemptions_and_rotations_each_change_their_own_row_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let now = Utc::now();
    store
        .create_oauth_client(&oauth_client("hub", now))
        .await
        .unwrap();
    let mut issued = Vec::new();
    let mut families = Vec::new();
    for (i, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let person = user(store.as_ref(), name).await;
        let scope = format!("scope-{name}");
        store
            .add_grants(person.id, "notebooks", std::slice::from_ref(&scope), now)
            .await
            .unwrap();
        for j in 0..8 {
            let session = store
                .create_session(new_session(person.id), now)
                .await
                .unwrap();
            let code = format!("code-{i}-{j}");
            let token = format!("token-{i}-{j}");
            store
                .create_authorization_code(
                    NewAuthorizationCode {
                        code_hash: &code,
                        client_id: "hub",
                        session_id: session.id,
                        redirect_uri: "https://hub.example.com/cb",
                        scope: "openid",
                        nonce: None,
                        code_challenge: None,
                        expires_at: now + Duration::seconds(60),
                    },
                    now,
                )
                .await
                .unwrap();
            issued.push((code, token, session.id, scope.clone()));
        }
    }
    // Every code redeemed at once, the first seven times.
    let redeem = |code: String, token: String| {
        let store = store.clone();
        async move {
            let family = Uuid::new_v4();
            let exchange = CodeExchange {
                family_id: family,
                refresh_token_hash: Some(&token),
            };
            let redemption = store
                .redeem_authorization_code(&code, exchange, "notebooks", now)
                .await
                .unwrap();
            (family, token, redemption)
        }
    };
    let mut redemptions = tokio::task::JoinSet::new();
    for (code, token, ..) in issued.iter().skip(1).cloned() {
        redemptions.spawn(redeem(code, token));
    }
    let mut replays = tokio::task::JoinSet::new();
    for n in 0..7 {
        replays.spawn(redeem(issued[0].0.clone(), format!("token-0-0-{n}")));
    }
    for (family, token, redemption) in redemptions.join_all().await {
        let Redemption::First { context, .. } = redemption else {
            panic!("every code's first use redeems it");
        };
        let (.., session, scope) = issued.iter().find(|i| i.1 == token).unwrap();
        assert_eq!(context.session.id, *session);
        assert_eq!(context.scopes, std::slice::from_ref(scope));
        families.push((family, token, *session, scope.clone()));
    }
    let replayed = replays.join_all().await;
    let firsts: Vec<_> = replayed
        .iter()
        .filter(|(.., r)| matches!(r, Redemption::First { .. }))
        .collect();
    assert_eq!(firsts.len(), 1, "one first use of one code");
    let (winner, winner_token, _) = firsts[0];
    for (family, _, redemption) in &replayed {
        match redemption {
            Redemption::First { .. } => assert_eq!(family, winner),
            Redemption::Replayed(code) => assert_eq!(
                code.family_id,
                Some(*winner),
                "a replay names the first use's family"
            ),
            Redemption::Unknown => panic!("a replay of a known code is a replay"),
        }
    }
    let (_, _, session, scope) = issued[0].clone();
    families.insert(0, (*winner, winner_token.clone(), session, scope));
    let rotate = |family, presented, new| {
        rotated(
            store.clone(),
            family,
            presented,
            new,
            "hub",
            "notebooks",
            now,
        )
    };
    let (first, first_token, ..) = families[0].clone();
    assert!(matches!(
        rotate(first, first_token, "new-0".into()).await,
        Rotation::Rotated { .. }
    ));
    let mut rotations = tokio::task::JoinSet::new();
    for (n, (family, token, session, scope)) in families.iter().cloned().enumerate().skip(1) {
        let rotation = rotate(family, token, format!("new-{n}"));
        rotations.spawn(async move { (rotation.await, session, scope) });
    }
    // Among them, eight uses of the first family's current token.
    let mut replays = tokio::task::JoinSet::new();
    for n in 0..8 {
        replays.spawn(rotate(first, "new-0".into(), format!("again-{n}")));
    }
    for (rotation, session, scope) in rotations.join_all().await {
        let Rotation::Rotated { context, .. } = rotation else {
            panic!("every family's current token rotates");
        };
        assert_eq!(context.session.id, session);
        assert_eq!(context.scopes, [scope]);
    }
    let replayed = replays.join_all().await;
    let rotated = replayed
        .iter()
        .filter(|r| matches!(r, Rotation::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "one rotation of one token");
    assert!(
        replayed
            .iter()
            .all(|r| matches!(r, Rotation::Rotated { .. } | Rotation::Stale(_))),
        "the others find the token spent"
    );
    let family = store.find_refresh_family(first).await.unwrap().unwrap();
    assert_eq!(family.spent, ["new-0", winner_token.as_str()]);
}

on_both_backends!(
    concurrent_redemptions_and_rotations_each_change_their_own_row_once,
    codes_redeem_once_and_refresh_families_rotate_once_per_token,
    oauth_clients_round_trip_and_change_one_field_at_a_time,
    a_password_change_revokes_every_session_but_the_one_kept,
    a_hash_upgrade_keeps_sessions_and_never_undoes_a_password_change,
    disabling_revokes_every_session_and_enabling_revives_none,
    grants_and_sessions_for_a_deleted_user_are_user_not_found,
    the_session_grant_says_whether_the_user_holds_one_scope_now,
    last_use_is_recorded_at_most_once_a_minute,
    throttle_counters_block_and_clear_one_user_name_only,
    concurrent_reservations_of_one_counter_see_each_other,
    users_are_paged_found_by_id_and_deleted_with_their_sessions,
    logging_out_everywhere_revokes_every_live_session_once,
    a_session_token_is_replaced_once_and_the_session_moves_to_the_new_key,
    live_sessions_are_counted_listed_and_revoked_by_the_key_that_signed_them,
    users_are_unique_regardless_of_case,
    users_can_be_listed_changed_disabled_and_enabled,
    grants_are_added_once_and_removed_by_audience,
    a_session_is_created_found_and_revoked_once,
    the_authorization_context_holds_the_scopes_of_one_audience,
    two_logins_for_one_user_at_once_make_two_sessions,
    a_revocation_while_authorizing_is_seen_by_every_later_authorization,
    an_export_imports_into_the_other_backend_unchanged,
);
