//! Use cases of the registry against the real store, each run on SQLite and on PostgreSQL
//! (a fresh database per test), without HTTP: the registry is called as the handlers and the
//! admin commands call it.

use skill_pool_core::Role;
use skill_pool_core::api::{ContentRef, CreatePlugin, PieceKind, PluginMetadata, UpdatePlugin};
use skill_pool_core::archive::{FileMode, UploadFile, pack_tar_gz};
use skill_pool_registry::{Actor, Principal, Registry, RegistryConfig, RegistryError};
use skill_pool_store::both_backends;
use skill_pool_store::tenants::TenantRow;
use skill_pool_store::testing::TestDb;

/// A registry over the test database, its data directory the test's temporary one.
async fn registry(db: &TestDb) -> Registry {
    Registry::new(
        db.store().await,
        RegistryConfig {
            data_dir: db.data_path().to_path_buf(),
            public_url: "http://pool.test".into(),
            max_upload_bytes: 1 << 20,
            mirror: Default::default(),
            limits: Default::default(),
            catalogue_cache_bytes: skill_pool_registry::catalogue::DEFAULT_CACHE_BYTES,
        },
    )
}

/// The tenant `acme` and the operator acting in it.
async fn acme(registry: &Registry) -> (TenantRow, Actor) {
    let tenant = registry
        .create_tenant(&Principal::Operator, "acme", None)
        .await
        .expect("create tenant");
    let actor = Actor::operator(tenant.id);
    (tenant, actor)
}

/// A tar.gz of regular files `(path, body)`.
fn tar_gz(files: &[(&str, &str)]) -> bytes::Bytes {
    let files: Vec<UploadFile> = files
        .iter()
        .map(|(path, body)| UploadFile {
            path: (*path).to_string(),
            mode: FileMode::Regular,
            data: body.as_bytes().to_vec(),
        })
        .collect();
    bytes::Bytes::from(pack_tar_gz(&files).expect("pack tar.gz"))
}

fn skill_md(name: &str, description: &str, body: &str) -> String {
    format!("---\nname: {name}\ndescription: {description}\n---\n{body}\n")
}

fn is_hex40(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn pin(kind: PieceKind, slug: &str, version: &str) -> ContentRef {
    ContentRef {
        kind,
        slug: slug.into(),
        version: Some(version.into()),
    }
}

both_backends!(piece_versions_follow_the_content, |db: TestDb| async move {
    let registry = registry(&db).await;
    let (_, actor) = acme(&registry).await;
    let first = tar_gz(&[("SKILL.md", &skill_md("greet", "Says hello", "Hello."))]);

    let published = registry.publish_skill(&actor, None, None, first.clone()).await.unwrap();
    assert!(published.created);
    assert_eq!(published.version.version, "1.0.0");
    assert_eq!(published.version.slug, "greet");
    assert_eq!(published.version.created_by, "operator");

    // The same content again: nothing new.
    let again = registry.publish_skill(&actor, None, None, first.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.version.version, "1.0.0");
    assert_eq!(again.version.digest, published.version.digest);

    // Changed content: the next patch.
    let changed = tar_gz(&[("SKILL.md", &skill_md("greet", "Says hello", "Hello, world."))]);
    let next = registry.publish_skill(&actor, None, None, changed).await.unwrap();
    assert!(next.created);
    assert_eq!(next.version.version, "1.0.1");
    assert_ne!(next.version.digest, published.version.digest);

    // Other content under an existing explicit version is refused, with a version that would do.
    let other = tar_gz(&[("SKILL.md", &skill_md("greet", "Says hello", "Something else."))]);
    let err = registry.publish_skill(&actor, None, Some("1.0.0"), other).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::VersionConflict { suggestion: Some(s), .. } if s == "1.0.2"),
        "{err:?}: {err}"
    );
    // The same content under its own explicit version is a reuse, not a conflict.
    let explicit = registry.publish_skill(&actor, None, Some("1.0.0"), first).await.unwrap();
    assert!(!explicit.created);
    assert_eq!(explicit.version.version, "1.0.0");

    // Archiving 1.0.1: 1.0.0 is the latest again, 1.0.1 stays fetchable.
    let archived = registry
        .archive_piece_version(&actor, PieceKind::Skill, "greet", "1.0.1")
        .await
        .unwrap();
    assert!(archived.archived);
    let piece = registry.show_piece(&actor, PieceKind::Skill, "greet").await.unwrap();
    assert_eq!(piece.version_count, 2);
    let latest = piece.latest.expect("a latest version");
    assert_eq!(latest.version, "1.0.0");
    assert_eq!(latest.files.len(), 1);
    let fetched = registry.piece_version(&actor, PieceKind::Skill, "greet", "1.0.1").await.unwrap();
    assert!(fetched.archived);
    assert_eq!(fetched.digest, next.version.digest);
    assert_eq!(fetched.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["SKILL.md"]);
    let versions = registry.piece_versions(&actor, PieceKind::Skill, "greet").await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(), ["1.0.1", "1.0.0"]);

    // The audit log, newest first: who did what.
    let audit = registry.audit(&actor, None, 100).await.unwrap();
    let rows: Vec<(&str, &str, &str)> = audit
        .items
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("operator", "skill.archive", "skill:greet@1.0.1"),
            ("operator", "skill.publish", "skill:greet@1.0.1"),
            ("operator", "skill.publish", "skill:greet@1.0.0"),
            ("operator", "tenant.create", "tenant:acme"),
        ],
        "{:#?}",
        audit.items
    );
    assert!(audit.next_cursor.is_none());
});

both_backends!(skill_frontmatter_is_read_leniently_but_must_exist, |db: TestDb| async move {
    let registry = registry(&db).await;
    let (_, actor) = acme(&registry).await;

    // `description: Use when: asked` is not strict YAML; Claude Code reads it, and so do we.
    let lenient = tar_gz(&[("SKILL.md", "---\nname: helper\ndescription: Use when: asked\n---\nHelp.\n")]);
    let published = registry.publish_skill(&actor, None, None, lenient).await.unwrap();
    assert!(published.created);
    assert_eq!(published.version.slug, "helper");
    assert_eq!(published.version.description.as_deref(), Some("Use when: asked"));
    assert!(
        published.warnings.iter().any(|w| w.contains("not strict YAML")),
        "{:?}",
        published.warnings
    );
    // The warning is kept in the audit row of the publish.
    let audit = registry.audit(&actor, None, 10).await.unwrap();
    let row = audit.items.iter().find(|e| e.action == "skill.publish").expect("publish row");
    assert!(row.detail["warnings"].as_array().is_some_and(|w| !w.is_empty()), "{:?}", row.detail);

    // A SKILL.md with no frontmatter at all names neither the skill nor what it does.
    let bare = tar_gz(&[("SKILL.md", "# Just a heading\n\nNo frontmatter.\n")]);
    let err = registry.publish_skill(&actor, Some("bare"), None, bare).await.unwrap_err();
    assert!(matches!(err, RegistryError::InvalidPiece(_)), "{err:?}: {err}");
    assert_eq!(err.field(), Some("SKILL.md"), "{err:?}");
    let err = registry.show_piece(&actor, PieceKind::Skill, "bare").await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}: {err}");
});

both_backends!(composition_and_the_plugin_version_decision, |db: TestDb| async move {
    let registry = registry(&db).await;
    let (tenant, actor) = acme(&registry).await;
    let skill = tar_gz(&[
        ("SKILL.md", &skill_md("greet", "Says hello", "Hello.")),
        ("scripts/hello.sh", "echo hello\n"),
    ]);
    registry.publish_skill(&actor, None, None, skill).await.unwrap();
    let agent = bytes::Bytes::from_static(b"---\ndescription: Reviews code\n---\nReview it.\n");
    let agent = registry
        .publish_markdown(&actor, PieceKind::Agent, Some("reviewer"), None, agent)
        .await
        .unwrap();
    assert_eq!(agent.version.version, "1.0.0");

    let contents = vec![pin(PieceKind::Skill, "greet", "1.0.0"), pin(PieceKind::Agent, "reviewer", "1.0.0")];
    let created = registry
        .create_plugin(
            &actor,
            CreatePlugin {
                slug: "toolbox".into(),
                mode: None,
                version: Some("1.0.0".into()),
                metadata: PluginMetadata {
                    description: Some("Tools".into()),
                    ..PluginMetadata::default()
                },
                contents: contents.clone(),
                blobs: Default::default(),
                dependencies: Vec::new(),
                source: None,
                entry: Default::default(),
            },
        )
        .await
        .unwrap();
    assert!(created.created);
    let first = created.plugin.current.clone().expect("a current version");
    assert_eq!(first.seq, 1);
    assert_eq!(first.version.as_deref(), Some("1.0.0"));
    assert!(is_hex40(&first.commit), "{}", first.commit);
    let pinned: Vec<(PieceKind, &str, &str, &str)> = created
        .plugin
        .contents
        .iter()
        .map(|c| (c.kind, c.slug.as_str(), c.version.as_str(), c.path.as_str()))
        .collect();
    // By kind, then slug.
    assert_eq!(
        pinned,
        [
            (PieceKind::Agent, "reviewer", "1.0.0", "agents/reviewer.md"),
            (PieceKind::Skill, "greet", "1.0.0", "skills/greet"),
        ]
    );
    let paths: Vec<&str> = created.plugin.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            ".claude-plugin/plugin.json",
            "agents/reviewer.md",
            "skills/greet/SKILL.md",
            "skills/greet/scripts/hello.sh"
        ]
    );
    assert!(registry.git_repo_for(tenant.id, "toolbox").await.unwrap().join("HEAD").exists());

    // The same again (nothing given: contents, version and blobs stay): nothing new.
    let same = registry.update_plugin(&actor, "toolbox", UpdatePlugin::default()).await.unwrap();
    assert!(!same.created, "{:?}", same.warnings);
    assert_eq!(same.plugin.current.as_ref().map(|v| v.commit.as_str()), Some(first.commit.as_str()));
    assert_eq!(same.plugin.versions.len(), 1);
    // The same contents spelled out again: still nothing new.
    let spelled = UpdatePlugin {
        contents: Some(contents.clone()),
        version: Some("1.0.0".into()),
        ..UpdatePlugin::default()
    };
    assert!(!registry.update_plugin(&actor, "toolbox", spelled).await.unwrap().created);

    // A higher version: a new version on top of the first.
    let bumped = UpdatePlugin {
        version: Some("1.1.0".into()),
        ..UpdatePlugin::default()
    };
    let bumped = registry.update_plugin(&actor, "toolbox", bumped).await.unwrap();
    assert!(bumped.created);
    let second = bumped.plugin.current.clone().expect("a current version");
    assert_eq!(second.seq, 2);
    assert_eq!(second.version.as_deref(), Some("1.1.0"));
    assert!(is_hex40(&second.commit), "{}", second.commit);
    assert_ne!(second.commit, first.commit);
    assert_eq!(
        bumped.plugin.versions.iter().map(|v| v.seq).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );

    // Lower than the served version: refused.
    let lower = UpdatePlugin {
        version: Some("1.0.5".into()),
        ..UpdatePlugin::default()
    };
    let err = registry.update_plugin(&actor, "toolbox", lower).await.unwrap_err();
    assert!(matches!(err, RegistryError::VersionConflict { .. }), "{err:?}: {err}");
    // An older version again, even with the content it had: refused too.
    let older = UpdatePlugin {
        version: Some("1.0.0".into()),
        ..UpdatePlugin::default()
    };
    let err = registry.update_plugin(&actor, "toolbox", older).await.unwrap_err();
    assert!(matches!(err, RegistryError::VersionConflict { .. }), "{err:?}: {err}");
    let shown = registry.show_plugin(&actor, "toolbox").await.unwrap();
    assert_eq!(shown.current.map(|v| v.commit), Some(second.commit.clone()));

    // A piece that is not registered.
    let unknown = CreatePlugin {
        slug: "broken".into(),
        mode: None,
        version: None,
        metadata: PluginMetadata::default(),
        contents: vec![pin(PieceKind::Skill, "nope", "1.0.0")],
        blobs: Default::default(),
        dependencies: Vec::new(),
        source: None,
        entry: Default::default(),
    };
    let err = registry.create_plugin(&actor, unknown.clone()).await.unwrap_err();
    assert!(matches!(err, RegistryError::InvalidPlugin(_)), "{err:?}: {err}");
    assert_eq!(err.field(), Some("contents"), "{err:?}");
    let err = registry.show_plugin(&actor, "broken").await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}: {err}");

    // A member token may read but not compose.
    let token = registry.create_token(&actor, "reader", Role::Member).await.unwrap();
    let member = registry.authenticate(tenant.id, &token.secret, None).await.unwrap();
    let err = registry
        .create_plugin(
            &member,
            CreatePlugin {
                contents: contents.clone(),
                slug: "mine".into(),
                ..unknown
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}: {err}");
    let err = registry
        .update_plugin(&member, "toolbox", UpdatePlugin::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}: {err}");
    assert_eq!(registry.list_plugins(&member, None, 10).await.unwrap().items.len(), 1);
});

both_backends!(a_plugin_folder_is_published_byte_for_byte, |db: TestDb| async move {
    let registry = registry(&db).await;
    let (tenant, actor) = acme(&registry).await;
    let greet = skill_md("greet", "Says hello", "Hello.");
    let folder = [
        (
            ".claude-plugin/plugin.json",
            r#"{"name":"kit","version":"0.1.0","description":"A kit"}"#,
        ),
        ("skills/greet/SKILL.md", greet.as_str()),
        ("agents/reviewer.md", "---\ndescription: x: y\n---\nReview it.\n"),
        ("commands/deploy.md", "Deploy it.\n"),
        ("README.md", "# kit\n"),
    ];

    let published = registry.publish_plugin_folder(&actor, None, None, tar_gz(&folder)).await.unwrap();
    assert!(published.created);
    let mut pieces: Vec<(&str, &str, &str, bool)> = published
        .pieces
        .iter()
        .map(|p| (p.kind.as_str(), p.slug.as_str(), p.version.as_str(), p.created))
        .collect();
    pieces.sort_unstable();
    assert_eq!(
        pieces,
        [
            ("agent", "reviewer", "1.0.0", true),
            ("command", "deploy", "1.0.0", true),
            ("skill", "greet", "1.0.0", true),
        ]
    );
    assert!(
        published.warnings.iter().any(|w| w.starts_with("agents/reviewer.md: ")),
        "{:?}",
        published.warnings
    );
    assert!(
        published.warnings.iter().any(|w| w.starts_with("commands/deploy.md: ")),
        "{:?}",
        published.warnings
    );
    assert!(
        !published.warnings.iter().any(|w| w.starts_with("skills/greet/")),
        "{:?}",
        published.warnings
    );

    // The pieces are registered on their own, the lenient agent with its description.
    let reviewer = registry.show_piece(&actor, PieceKind::Agent, "reviewer").await.unwrap();
    assert_eq!(reviewer.latest.and_then(|v| v.description).as_deref(), Some("x: y"));
    let deploy = registry.show_piece(&actor, PieceKind::Command, "deploy").await.unwrap();
    assert_eq!(deploy.latest.map(|v| v.description), Some(None));

    // Every path of the folder is in the plugin's tree, and only those.
    let plugin = registry.show_plugin(&actor, "kit").await.unwrap();
    let mut expected: Vec<&str> = folder.iter().map(|(p, _)| *p).collect();
    expected.sort_unstable();
    let paths: Vec<&str> = plugin.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, expected);
    for (path, body) in folder {
        let file = plugin.files.iter().find(|f| f.path == path).unwrap();
        assert_eq!(file.size, body.len() as u64, "{path}");
    }
    let current = plugin.current.clone().expect("a current version");
    assert_eq!(current.version.as_deref(), Some("0.1.0"));
    assert!(is_hex40(&current.commit), "{}", current.commit);
    assert_eq!(plugin.metadata.description.as_deref(), Some("A kit"));

    // The repo on disk exists.
    let repo = registry.git_repo_for(tenant.id, "kit").await.unwrap();
    assert!(repo.starts_with(db.data_path()), "{}", repo.display());
    assert!(repo.join("HEAD").is_file(), "{}", repo.display());

    // The identical folder again: nothing changes.
    let again = registry.publish_plugin_folder(&actor, None, None, tar_gz(&folder)).await.unwrap();
    assert!(!again.created, "{:?}", again.warnings);
    assert!(again.pieces.iter().all(|p| !p.created), "{:?}", again.pieces);
    assert_eq!(again.plugin.current.map(|v| v.commit), Some(current.commit));
    assert_eq!(again.plugin.versions.len(), 1);
    let publishes = registry.audit(&actor, None, 100).await.unwrap();
    let publishes = publishes.items.iter().filter(|e| e.action == "plugin.publish").count();
    assert_eq!(publishes, 1);
});

both_backends!(tokens_belong_to_one_tenant, |db: TestDb| async move {
    let registry = registry(&db).await;
    let (acme, admin) = acme(&registry).await;
    let globex = registry
        .create_tenant(&Principal::Operator, "globex", Some("Globex"))
        .await
        .unwrap();
    assert_eq!(globex.display_name, "Globex");

    let created = registry.create_token(&admin, "ci", Role::Member).await.unwrap();
    assert!(created.secret.starts_with(&created.token.prefix));
    let actor = registry.authenticate(acme.id, &created.secret, Some("req-1".into())).await.unwrap();
    assert_eq!(
        actor.principal(),
        &Principal::Token {
            id: created.token.id,
            name: "ci".into()
        }
    );
    assert_eq!(actor.role(), Role::Member);
    assert_eq!(actor.tenant(), acme.id);
    assert_eq!(actor.request_id(), Some("req-1"));
    let listed = registry.list_tokens(&admin).await.unwrap();
    assert!(
        listed.iter().any(|t| t.id == created.token.id && t.last_used_at.is_some()),
        "{listed:?}"
    );

    // Presented on another tenant: as if it did not exist.
    let err = registry.authenticate(globex.id, &created.secret, None).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}: {err}");
    // Another tenant's admin cannot revoke it.
    let err = registry
        .revoke_token(&Actor::operator(globex.id), created.token.id)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}: {err}");
    // An unknown secret.
    let err = registry.authenticate(acme.id, "sp_0000000000", None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized(_)), "{err:?}: {err}");

    let revoked = registry.revoke_token(&admin, created.token.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let err = registry.authenticate(acme.id, &created.secret, None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized(_)), "{err:?}: {err}");

    // Only the operator makes and lists tenants.
    let token = Principal::Token { id: 1, name: "x".into() };
    let err = registry.create_tenant(&token, "initech", None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}: {err}");
    let err = registry.list_tenants(&token).await.unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}: {err}");
    let user = Principal::User {
        id: 1,
        username: "alice".into(),
    };
    let err = registry.list_tenants(&user).await.unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}: {err}");
    let err = registry.create_tenant(&Principal::Operator, "acme", None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}: {err}");
    let slugs: Vec<String> = registry
        .list_tenants(&Principal::Operator)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(slugs, ["acme", "globex"]);

    // A member cannot make tokens; the audit log names the token's own actions by the token.
    let err = registry.create_token(&actor, "more", Role::Admin).await.unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}: {err}");
    let audit = registry.audit(&admin, None, 100).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.revoke", "token.create", "tenant.create"]);
    assert!(audit.items.iter().all(|e| e.actor == "operator"), "{:?}", audit.items);
});

both_backends!(
    purge_rewrites_later_commits_and_collects_bodies_across_tenants,
    |db: TestDb| async move {
        use sha2::{Digest, Sha256};
        let registry = registry(&db).await;
        let (acme_row, acme) = acme(&registry).await;
        let globex_row = registry.create_tenant(&Principal::Operator, "globex", None).await.unwrap();
        let globex = Actor::operator(globex_row.id);
        let blob = |body: &str| {
            let a = hex::encode(Sha256::digest(body.as_bytes()));
            db.data_path().join("blobs").join(&a[..2]).join(&a[2..])
        };
        let manifest = r#"{"name":"kit","description":"A kit"}"#;
        let shared = "shipped by both tenants\n";
        let secret = "TOKEN=leaked\n";
        let rev = |readme: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut files = vec![
                (".claude-plugin/plugin.json", manifest),
                ("shared.txt", shared),
                ("README.md", readme),
            ];
            files.extend(extra);
            tar_gz(&files)
        };
        // Unversioned revisions: each is named by its commit.
        let r1 = registry.publish_plugin_folder(&acme, None, None, rev("one\n", None)).await.unwrap();
        let r2 = registry
            .publish_plugin_folder(&acme, None, None, rev("two\n", Some(("secret.env", secret))))
            .await
            .unwrap();
        let r3 = registry
            .publish_plugin_folder(&acme, None, None, rev("three\n", None))
            .await
            .unwrap();
        registry
            .publish_plugin_folder(&globex, None, None, rev("globex\n", Some(("secret.env", secret))))
            .await
            .unwrap();
        let commit = |r: &skill_pool_core::api::PublishPluginResult| r.plugin.current.clone().unwrap().commit;
        let (c1, c2, c3) = (commit(&r1), commit(&r2), commit(&r3));

        let purged = registry.purge_plugin_version(&acme, "kit", &c2[..12]).await.unwrap();
        assert_eq!(purged.purged.commit, c2);
        assert_eq!(purged.purged.version, None);
        assert_eq!(purged.rewritten.len(), 1);
        assert_eq!(purged.rewritten[0].old_commit, c3);
        let current = purged.plugin.current.clone().unwrap();
        assert_eq!(current.commit, purged.rewritten[0].new_commit);
        assert_eq!(
            current.effective_version,
            current.commit[..12],
            "an unversioned revision shows its new commit"
        );
        let seqs: Vec<u64> = purged.plugin.versions.iter().map(|v| v.seq).collect();
        assert_eq!(seqs, [3, 1], "seq numbers keep their gap");
        assert!(
            purged.plugin.versions.iter().any(|v| v.commit == c1),
            "earlier versions keep their commit"
        );
        // README two is the only body nobody else ships; globex still ships the secret.
        assert_eq!(purged.blobs_deleted, 1, "{purged:?}");
        assert!(!blob("two\n").exists());
        assert!(blob(secret).is_file(), "another tenant still references it");
        assert!(blob(shared).is_file());
        // The repo on disk is at the new head, and a purged commit cannot be named again.
        let repo = registry.git_repo_for(acme_row.id, "kit").await.unwrap();
        assert!(repo.is_dir());
        assert!(matches!(
            registry.purge_plugin_version(&acme, "kit", &c2).await,
            Err(RegistryError::NotFound(_))
        ));
        // A publish after the purge chains on the rewritten head.
        let r4 = registry
            .publish_plugin_folder(&acme, None, None, rev("four\n", None))
            .await
            .unwrap();
        assert_eq!(r4.plugin.versions.len(), 3);
        assert_eq!(r4.plugin.current.unwrap().seq, 4);

        // Deleting a plugin collects across tenants too.
        registry.delete_plugin(&globex, "kit").await.unwrap();
        assert!(!blob(secret).exists(), "no row of any tenant references it any more");
        assert!(!blob("globex\n").exists());
        assert!(blob(shared).is_file(), "acme still ships it");
        registry.delete_plugin(&acme, "kit").await.unwrap();
        assert!(!blob(shared).exists());
        let audit = registry.audit(&acme, None, 100).await.unwrap();
        let purges: Vec<_> = audit.items.iter().filter(|e| e.action == "plugin.purge").collect();
        assert_eq!(purges.len(), 1);
        assert_eq!(purges[0].target, "plugin:kit");
    }
);
