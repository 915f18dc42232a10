//! Storage tests, each run on SQLite and on PostgreSQL through real connections.

use skill_pool_core::api::PieceKind;
use skill_pool_core::archive::FileMode;
use skill_pool_store::both_backends;
use skill_pool_store::pieces::{FileRow, NewPieceVersion};
use skill_pool_store::prelude::*;
use skill_pool_store::testing::TestDb;
use skill_pool_store::{StoreError, TenantId};

both_backends!(tenants_are_unique_and_listed, |db: TestDb| async move {
    let mut store = db.store().await;
    let mut tx = store.write().await.unwrap();
    let acme = tx.insert_tenant("acme", "Acme Inc").await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.write().await.unwrap();
    let err = tx.insert_tenant("acme", "Again").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    assert_eq!(store.tenant_by_slug("acme").await.unwrap().unwrap().id, acme.id);
    assert_eq!(store.first_tenant().await.unwrap().unwrap().slug, "acme");
    assert!(store.tenant_by_slug("nope").await.unwrap().is_none());
    store.ping().await.unwrap();
});

both_backends!(migrations_are_idempotent, |db: TestDb| async move {
    let store = db.store().await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
});

both_backends!(tokens_revoke_and_touch, |db: TestDb| async move {
    let mut store = db.store().await;
    let mut tx = store.write().await.unwrap();
    let t = tx.insert_tenant("acme", "Acme").await.unwrap();
    let tok = tx
        .insert_token(t.id, "ci", skill_pool_core::Role::Admin, "hash1", "sp_abcd", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store.token_by_hash("hash1").await.unwrap().unwrap().last_used_at.is_none());
    store.touch_token(tok.id).await.unwrap();
    assert!(store.token_by_hash("hash1").await.unwrap().unwrap().last_used_at.is_some());
    let mut tx = store.write().await.unwrap();
    // Another tenant cannot revoke it.
    assert!(
        tx.revoke_token(TenantId::for_tests(t.id.get() + 1000), tok.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(tx.revoke_token(t.id, tok.id).await.unwrap().unwrap().revoked_at.is_some());
    tx.commit().await.unwrap();
});

both_backends!(piece_versions_are_unique_per_piece, |db: TestDb| async move {
    let mut store = db.store().await;
    let mut tx = store.write().await.unwrap();
    let t = tx.insert_tenant("acme", "Acme").await.unwrap();
    let piece = tx.ensure_piece(t.id, PieceKind::Skill, "greet").await.unwrap();
    assert_eq!(tx.ensure_piece(t.id, PieceKind::Skill, "greet").await.unwrap().id, piece.id);
    let file = FileRow {
        path: "SKILL.md".into(),
        mode: FileMode::Regular,
        size: 3,
        sha256: "a".repeat(64),
        git_oid: "b".repeat(40),
    };
    let new = NewPieceVersion {
        version: "1.0.0",
        description: Some("d"),
        metadata: "{}",
        digest: "x",
        created_by: "test",
    };
    tx.insert_piece_version(t.id, piece.id, &new, std::slice::from_ref(&file))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.write().await.unwrap();
    let err = tx.insert_piece_version(t.id, piece.id, &new, &[file]).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    drop(tx);
    let versions = store.piece_versions(t.id, piece.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(store.piece_files(t.id, versions[0].id).await.unwrap().len(), 1);
    // Another tenant sees nothing.
    assert!(
        store
            .piece_files(TenantId::for_tests(t.id.get() + 1000), versions[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .piece(TenantId::for_tests(t.id.get() + 1000), PieceKind::Skill, "greet")
            .await
            .unwrap()
            .is_none()
    );
});

both_backends!(
    sessions_expire_end_with_their_token_and_failures_are_counted,
    |db: TestDb| async move {
        use skill_pool_store::sessions::{NewSession, SessionOwner};
        let mut store = db.store().await;
        let mut tx = store.write().await.unwrap();
        let t = tx.insert_tenant("acme", "Acme").await.unwrap();
        let other = tx.insert_tenant("globex", "Globex").await.unwrap();
        let user = tx
            .insert_user(t.id, "ana", "argon2-hash", skill_pool_core::Role::Admin)
            .await
            .unwrap();
        let tok = tx
            .insert_token(t.id, "ci", skill_pool_core::Role::Member, "tokhash", "sp_abcd", None)
            .await
            .unwrap();
        let now = skill_pool_store::now_ms();
        let new = |hash: &'static str, owner, expires_at| NewSession {
            session_hash: hash,
            csrf_token: "csrf",
            owner,
            role: skill_pool_core::Role::Admin,
            address: "127.0.0.1",
            expires_at,
        };
        let live = tx
            .insert_session(
                t.id,
                &new(
                    "s1",
                    SessionOwner::User {
                        id: user.id,
                        username: "ana",
                    },
                    now + 60_000,
                ),
            )
            .await
            .unwrap();
        assert_eq!((live.name.as_str(), live.user_id, live.token_id), ("ana", Some(user.id), None));
        tx.insert_session(
            t.id,
            &new(
                "s2",
                SessionOwner::User {
                    id: user.id,
                    username: "ana",
                },
                now - 1,
            ),
        )
        .await
        .unwrap();
        tx.insert_session(t.id, &new("s3", SessionOwner::Token { id: tok.id, name: "ci" }, now + 60_000))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(store.live_session(t.id, "s1", now).await.unwrap().is_some());
        assert!(store.live_session(other.id, "s1", now).await.unwrap().is_none(), "another tenant");
        assert!(store.live_session(t.id, "s2", now).await.unwrap().is_none(), "expired");
        assert!(store.live_session(t.id, "s3", now).await.unwrap().is_some());
        let mut tx = store.write().await.unwrap();
        tx.revoke_token(t.id, tok.id).await.unwrap();
        assert!(tx.delete_session(t.id, "s1").await.unwrap());
        assert!(!tx.delete_session(t.id, "s1").await.unwrap());
        tx.insert_sign_in_failure(t.id, "user:ana").await.unwrap();
        tx.insert_sign_in_failure(t.id, "user:ana").await.unwrap();
        tx.prune_sessions(now, now - 1000).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.live_session(t.id, "s3", now).await.unwrap().is_none(), "its token is revoked");
        assert!(store.live_session(t.id, "s1", now).await.unwrap().is_none(), "signed out");
        assert_eq!(store.sign_in_failures(t.id, "user:ana", now - 60_000).await.unwrap(), 2);
        assert_eq!(store.sign_in_failures(other.id, "user:ana", now - 60_000).await.unwrap(), 0);
        let mut tx = store.write().await.unwrap();
        tx.clear_sign_in_failures(t.id, "user:ana").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.sign_in_failures(t.id, "user:ana", now - 60_000).await.unwrap(), 0);
    }
);
