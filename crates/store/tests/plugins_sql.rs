//! The hardest SQL of the plugin store, on SQLite and on PostgreSQL: the tree of a version
//! (own files + pinned pieces' files under their mount paths), the latest version of every
//! plugin, and the plugins whose served version pins another version of a piece.

use skill_pool_core::api::{PieceKind, SourcingMode};
use skill_pool_core::archive::FileMode;
use skill_pool_store::both_backends;
use skill_pool_store::pieces::{FileRow, NewPieceVersion};
use skill_pool_store::plugins::{NewPluginVersion, PluginVersionRow};
use skill_pool_store::prelude::*;
use skill_pool_store::testing::TestDb;
use skill_pool_store::{PieceVersionId, PluginId, TenantId, Tx, now_ms};

/// A file row whose hashes are made from `tag` (one hex digit), so a test can tell files apart.
fn file(path: &str, mode: FileMode, size: i64, tag: char) -> FileRow {
    FileRow {
        path: path.into(),
        mode,
        size,
        sha256: tag.to_string().repeat(64),
        git_oid: tag.to_string().repeat(40),
    }
}

/// Registers `kind/slug@version` with `files`; gives `(piece id, version id)`.
async fn piece_version(
    tx: &mut Tx,
    tenant: TenantId,
    kind: PieceKind,
    slug: &str,
    version: &str,
    files: &[FileRow],
) -> (i64, PieceVersionId) {
    let piece = tx.ensure_piece(tenant, kind, slug).await.unwrap();
    let new = NewPieceVersion {
        version,
        description: None,
        metadata: "{}",
        digest: &format!("{slug}@{version}"),
        created_by: "test",
    };
    let id = tx.insert_piece_version(tenant, piece.id, &new, files).await.unwrap();
    (piece.id, id)
}

/// A new internal plugin.
async fn plugin(tx: &mut Tx, tenant: TenantId, slug: &str) -> PluginId {
    tx.insert_plugin(tenant, slug, SourcingMode::Internal, "{}", None).await.unwrap().id
}

/// Version `seq` of a plugin, pinning `pieces` `(piece version id, mount path)`, with `files`.
async fn plugin_version(
    tx: &mut Tx,
    tenant: TenantId,
    plugin_id: PluginId,
    seq: i64,
    pieces: &[(PieceVersionId, &str)],
    files: &[FileRow],
) -> PluginVersionRow {
    let version = format!("1.{seq}.0");
    let commit = format!("{:020}{seq:020}", plugin_id.get());
    let digest = format!("digest-{plugin_id}-{seq}");
    let pieces: Vec<(PieceVersionId, String)> = pieces.iter().map(|(id, mount)| (*id, (*mount).to_string())).collect();
    tx.insert_plugin_version(
        tenant,
        plugin_id,
        &NewPluginVersion {
            seq,
            version: Some(&version),
            commit_id: &commit,
            digest: &digest,
            blobs: None,
            created_at: now_ms(),
            created_by: "test",
        },
        &pieces,
        files,
    )
    .await
    .unwrap()
}

/// An id no tenant has.
fn nobody(tenant: TenantId) -> TenantId {
    TenantId::for_tests(tenant.get() + 1000)
}

both_backends!(the_tree_of_a_plugin_version, |db: TestDb| async move {
    let mut store = db.store().await;
    let mut tx = store.write().await.unwrap();
    let t = tx.insert_tenant("acme", "Acme").await.unwrap().id;
    let other = tx.insert_tenant("globex", "Globex").await.unwrap().id;
    let (_, greet) = piece_version(
        &mut tx,
        t,
        PieceKind::Skill,
        "greet",
        "1.0.0",
        &[
            file("SKILL.md", FileMode::Regular, 10, 'a'),
            file("scripts/run.sh", FileMode::Executable, 11, 'b'),
        ],
    )
    .await;
    let (_, reviewer) = piece_version(
        &mut tx,
        t,
        PieceKind::Agent,
        "reviewer",
        "1.0.0",
        &[file("reviewer.md", FileMode::Regular, 12, 'c')],
    )
    .await;
    // A piece version the plugin does not pin: its files must not leak into the tree.
    piece_version(
        &mut tx,
        t,
        PieceKind::Command,
        "deploy",
        "1.0.0",
        &[file("deploy.md", FileMode::Regular, 13, 'd')],
    )
    .await;
    let toolbox = plugin(&mut tx, t, "toolbox").await;
    let own = [
        file("README.md", FileMode::Regular, 14, 'e'),
        file(".claude-plugin/plugin.json", FileMode::Regular, 15, 'f'),
        file("hooks/hooks.json", FileMode::Regular, 16, '1'),
    ];
    let v1 = plugin_version(&mut tx, t, toolbox, 1, &[(greet, "skills/greet"), (reviewer, "agents")], &own).await;
    // A second version with other files: the first one's tree must not change.
    let v2 = plugin_version(&mut tx, t, toolbox, 2, &[(greet, "skills/greet")], &own[..1]).await;
    // Inside the transaction, before commit, the tree is already complete.
    let in_tx = tx.plugin_version_tree(t, v1.id).await.unwrap();
    tx.commit().await.unwrap();

    let tree = store.plugin_version_tree(t, v1.id).await.unwrap();
    assert_eq!(tree, in_tx);
    // Sorted by path (byte order: `.` < upper case < lower case), pieces under their mount paths.
    let expected = [
        file(".claude-plugin/plugin.json", FileMode::Regular, 15, 'f'),
        file("README.md", FileMode::Regular, 14, 'e'),
        file("agents/reviewer.md", FileMode::Regular, 12, 'c'),
        file("hooks/hooks.json", FileMode::Regular, 16, '1'),
        file("skills/greet/SKILL.md", FileMode::Regular, 10, 'a'),
        file("skills/greet/scripts/run.sh", FileMode::Executable, 11, 'b'),
    ];
    assert_eq!(tree, expected);

    let tree2 = store.plugin_version_tree(t, v2.id).await.unwrap();
    let paths: Vec<&str> = tree2.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["README.md", "skills/greet/SKILL.md", "skills/greet/scripts/run.sh"]);

    // The own files alone, and the pinned pieces alone. (`plugin_version_files` orders in SQL, by
    // the database's collation, which is not byte order on every PostgreSQL: compare as a set.)
    let mut own_paths: Vec<String> = store
        .plugin_version_files(t, v1.id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    own_paths.sort_unstable();
    assert_eq!(own_paths, [".claude-plugin/plugin.json", "README.md", "hooks/hooks.json"]);
    let pinned: Vec<(&str, String, String)> = store
        .plugin_version_pieces(t, v1.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.kind.as_str(), p.slug, p.mount_path))
        .collect();
    assert_eq!(
        pinned,
        [
            ("agent", "reviewer".to_string(), "agents".to_string()),
            ("skill", "greet".to_string(), "skills/greet".to_string()),
        ]
    );

    // Another tenant (existing or not) gets nothing of it.
    for stranger in [other, nobody(t)] {
        assert!(store.plugin_version_tree(stranger, v1.id).await.unwrap().is_empty());
        assert!(store.plugin_version_files(stranger, v1.id).await.unwrap().is_empty());
        assert!(store.plugin_version_pieces(stranger, v1.id).await.unwrap().is_empty());
        let mut tx = store.read().await.unwrap();
        assert!(tx.plugin_version_tree(stranger, v1.id).await.unwrap().is_empty());
    }
});

both_backends!(latest_plugin_versions_are_the_highest_seq_of_each, |db: TestDb| async move {
    let mut store = db.store().await;
    let mut tx = store.write().await.unwrap();
    let t = tx.insert_tenant("acme", "Acme").await.unwrap().id;
    let other = tx.insert_tenant("globex", "Globex").await.unwrap().id;
    let alpha = plugin(&mut tx, t, "alpha").await;
    let beta = plugin(&mut tx, t, "beta").await;
    // A plugin without any version has no latest one.
    plugin(&mut tx, t, "empty").await;
    let foreign = plugin(&mut tx, other, "alpha").await;
    // Interleaved, and not in seq order, so neither the id nor the insertion order gives the answer.
    plugin_version(&mut tx, t, alpha, 1, &[], &[]).await;
    plugin_version(&mut tx, t, beta, 2, &[], &[]).await;
    let alpha3 = plugin_version(&mut tx, t, alpha, 3, &[], &[]).await;
    plugin_version(&mut tx, t, beta, 1, &[], &[]).await;
    plugin_version(&mut tx, t, alpha, 2, &[], &[]).await;
    // The other tenant's plugin has more versions than any of ours.
    for seq in 1..=5 {
        plugin_version(&mut tx, other, foreign, seq, &[], &[]).await;
    }
    tx.commit().await.unwrap();
    let beta2 = store
        .plugin_versions(t, beta)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.seq == 2)
        .unwrap();

    let mut latest = store.latest_plugin_versions(t).await.unwrap();
    latest.sort_by_key(|v| v.plugin_id);
    assert_eq!(latest, [alpha3.clone(), beta2.clone()]);
    // They agree with the one-plugin query.
    assert_eq!(store.latest_plugin_version(t, alpha).await.unwrap(), Some(alpha3));
    assert_eq!(store.latest_plugin_version(t, beta).await.unwrap(), Some(beta2));

    let theirs = store.latest_plugin_versions(other).await.unwrap();
    assert_eq!(theirs.iter().map(|v| (v.plugin_id, v.seq)).collect::<Vec<_>>(), [(foreign, 5)]);
    assert!(store.latest_plugin_versions(nobody(other)).await.unwrap().is_empty());
    // The one-plugin queries keep to their tenant too.
    assert!(store.latest_plugin_version(other, alpha).await.unwrap().is_none());
    assert!(store.plugin_versions(other, alpha).await.unwrap().is_empty());
});

both_backends!(plugins_pinning_other_versions_of_a_piece, |db: TestDb| async move {
    let store = db.store().await;
    let mut tx = store.write().await.unwrap();
    let t = tx.insert_tenant("acme", "Acme").await.unwrap().id;
    let other = tx.insert_tenant("globex", "Globex").await.unwrap().id;
    let skill_md = [file("SKILL.md", FileMode::Regular, 1, 'a')];
    let (greet, v1) = piece_version(&mut tx, t, PieceKind::Skill, "greet", "1.0.0", &skill_md).await;
    let (_, v2) = piece_version(&mut tx, t, PieceKind::Skill, "greet", "1.1.0", &skill_md).await;
    // Another piece of the same tenant: pinning it says nothing about `greet`.
    let (_, wave) = piece_version(&mut tx, t, PieceKind::Skill, "wave", "1.0.0", &skill_md).await;
    let a = plugin(&mut tx, t, "a-on-v1").await;
    plugin_version(&mut tx, t, a, 1, &[(v1, "skills/greet")], &[]).await;
    let b = plugin(&mut tx, t, "b-on-v2").await;
    plugin_version(&mut tx, t, b, 1, &[(v2, "skills/greet"), (wave, "skills/wave")], &[]).await;
    let w = plugin(&mut tx, t, "w-wave-only").await;
    plugin_version(&mut tx, t, w, 1, &[(wave, "skills/wave")], &[]).await;
    assert_eq!(tx.plugins_pinning_other_versions(t, greet, v2).await.unwrap(), ["a-on-v1"]);
    assert_eq!(tx.plugins_pinning_other_versions(t, greet, v1).await.unwrap(), ["b-on-v2"]);

    // Only the served (highest seq) version counts: `c` moved from v1 to v2, `d` back from v2 to v1.
    let c = plugin(&mut tx, t, "c-moved-to-v2").await;
    plugin_version(&mut tx, t, c, 1, &[(v1, "skills/greet")], &[]).await;
    plugin_version(&mut tx, t, c, 2, &[(v2, "skills/greet")], &[]).await;
    let d = plugin(&mut tx, t, "d-back-to-v1").await;
    plugin_version(&mut tx, t, d, 1, &[(v2, "skills/greet")], &[]).await;
    plugin_version(&mut tx, t, d, 2, &[(v1, "skills/greet")], &[]).await;

    // The other tenant has its own `greet` and plugins pinning it.
    let (their_greet, their_v1) = piece_version(&mut tx, other, PieceKind::Skill, "greet", "1.0.0", &skill_md).await;
    let (_, their_v2) = piece_version(&mut tx, other, PieceKind::Skill, "greet", "1.1.0", &skill_md).await;
    let theirs = plugin(&mut tx, other, "a-on-v1").await;
    plugin_version(&mut tx, other, theirs, 1, &[(their_v1, "skills/greet")], &[]).await;
    tx.commit().await.unwrap();

    let mut tx = store.read().await.unwrap();
    assert_eq!(
        tx.plugins_pinning_other_versions(t, greet, v2).await.unwrap(),
        ["a-on-v1", "d-back-to-v1"]
    );
    assert_eq!(
        tx.plugins_pinning_other_versions(t, greet, v1).await.unwrap(),
        ["b-on-v2", "c-moved-to-v2"]
    );
    assert_eq!(
        tx.plugins_pinning_other_versions(other, their_greet, their_v2).await.unwrap(),
        ["a-on-v1"]
    );
    // Across tenants: nothing, whichever way round.
    assert!(tx.plugins_pinning_other_versions(other, greet, v2).await.unwrap().is_empty());
    assert!(
        tx.plugins_pinning_other_versions(t, their_greet, their_v2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.plugins_pinning_other_versions(nobody(other), greet, v2)
            .await
            .unwrap()
            .is_empty()
    );
});
