//! Per-org API keys: made, listed and revoked by owners and admins; the
//! secret shown once and stored as a hash; a key acting as its creator in
//! one org, never above the creator's current role, refused at once when
//! revoked or when its creator leaves.

use sqlx::Connection;
use tldw::{
    domain::{ApiKeyView, CreatedApiKey, OrgId, OrgRole, OrgSummary, UserId},
    error::AppError,
    server::{
        auth::identity::{self, CurrentAccount, CurrentMember, SessionHandle},
        db::{Db, TenantScope},
        services::api_keys,
    },
};

use crate::helpers::{TestApp, TestDb, spawn_app};

const OWNER: &str = "owner@example.com";
const ADMIN: &str = "admin@example.com";
const MEMBER: &str = "member@example.com";

/// An org with an owner, an admin and a member, each signed in.
struct Setup {
    app: TestApp,
    owner: String,
    admin: String,
    member: String,
    slug: String,
    org: OrgId,
    admin_id: UserId,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let owner = app.sign_up(OWNER).await;
    let admin = app.sign_up(ADMIN).await;
    let member = app.sign_up(MEMBER).await;
    let slug = app.create_org(&owner, "Robots").await;
    let admin_id = app.add_member(&owner, &slug, &admin, ADMIN, "admin").await;
    app.add_member(&owner, &slug, &member, MEMBER, "member")
        .await;
    let org = app.org_page(&owner, &slug).await.org.id;
    Setup {
        app,
        owner,
        admin,
        member,
        slug,
        org,
        admin_id,
    }
}

impl Setup {
    async fn create(&self, cookie: &str, name: &str, role: &str) -> crate::helpers::Reply {
        self.app
            .call(
                cookie,
                "api-keys/create",
                &[("slug", &self.slug), ("name", name), ("role", role)],
            )
            .await
    }

    async fn create_ok(&self, cookie: &str, name: &str, role: &str) -> CreatedApiKey {
        self.create(cookie, name, role).await.ok().json()
    }

    async fn list(&self, cookie: &str) -> Vec<ApiKeyView> {
        self.app
            .call(cookie, "api-keys/list", &[("slug", &self.slug)])
            .await
            .ok()
            .json()
    }

    async fn revoke(&self, cookie: &str, id: &str) -> crate::helpers::Reply {
        self.app
            .call(
                cookie,
                "api-keys/revoke",
                &[("slug", &self.slug), ("id", id)],
            )
            .await
    }

    async fn db(&self) -> Db {
        self.app.db.db(2).await
    }

    /// A column of the key's row, read as the owner role inside the org
    /// (FORCE binds the owner too).
    async fn last_used(&self, key: &CreatedApiKey) -> Option<chrono::DateTime<chrono::Utc>> {
        let mut conn = self.app.db.owner_conn().await;
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("select set_config('app.org_id', $1, true)")
            .bind(self.org.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query_scalar("select last_used_at from api_keys where id = $1")
            .bind(key.key.id.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn owners_and_admins_create_list_and_revoke_keys() {
    let s = setup().await;
    assert!(s.list(&s.owner).await.is_empty());

    let first = s.create_ok(&s.owner, "  Slack \n bot ", "admin").await;
    assert!(first.secret.starts_with("tldw_"), "{}", first.secret);
    assert_eq!(first.secret.len(), 48);
    assert_eq!(first.key.name, "Slack bot");
    assert_eq!(first.key.prefix, first.secret[..12]);
    assert_eq!(first.key.role, OrgRole::Admin);
    assert_eq!(first.key.created_by, OWNER);
    assert_eq!(first.key.last_used_at, None);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&first.key.created_at).is_ok(),
        "{}",
        first.key.created_at
    );
    let second = s.create_ok(&s.admin, "Nightly export", "member").await;
    assert_ne!(first.secret, second.secret);

    // Newest first, as the admin sees it too; the list never has secrets.
    let listed = s.list(&s.admin).await;
    assert_eq!(listed, vec![second.key.clone(), first.key.clone()]);
    let reply = s
        .app
        .call(&s.owner, "api-keys/list", &[("slug", &s.slug)])
        .await;
    assert!(!reply.body.contains(&first.secret[12..]), "{}", reply.body);

    s.revoke(&s.admin, &first.key.id.to_string()).await.ok();
    assert_eq!(s.list(&s.owner).await, vec![second.key.clone()]);
    // Revoked already: nothing left to revoke.
    let again = s.revoke(&s.owner, &first.key.id.to_string()).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(matches!(again.error(), AppError::NotFound(_)));
}

#[tokio::test]
async fn names_are_checked() {
    let s = setup().await;
    for name in ["", "   ", &"x".repeat(61)] {
        let reply = s.create(&s.owner, name, "member").await;
        assert_eq!(reply.status, 422, "{name:?}: {}", reply.body);
        assert!(reply.error().field_message("name").is_some());
    }
}

#[tokio::test]
async fn only_the_hash_of_the_secret_is_stored() {
    let s = setup().await;
    let created = s.create_ok(&s.owner, "ci", "member").await;
    let mut conn = s.app.db.owner_conn().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(s.org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let (rows, hash_matches, prefix): (i64, bool, String) = sqlx::query_as(
        "select count(*), bool_and(secret_hash = sha256(convert_to($1, 'UTF8'))), max(prefix)
         from api_keys",
    )
    .bind(&created.secret)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    assert!(hash_matches, "the stored hash is not SHA-256 of the secret");
    assert_eq!(prefix, created.secret[..12]);
    // No column, in any form, holds the part of the secret past the prefix.
    let leaks: i64 = sqlx::query_scalar(
        "select count(*) from api_keys k
         where strpos(row_to_json(k)::text, $1) > 0 or strpos(encode(k.secret_hash, 'escape'), $1) > 0",
    )
    .bind(&created.secret[12..])
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(leaks, 0);
}

#[tokio::test]
async fn members_cannot_manage_keys() {
    let s = setup().await;
    let key = s.create_ok(&s.owner, "ci", "member").await;

    let list = s
        .app
        .call(&s.member, "api-keys/list", &[("slug", &s.slug)])
        .await;
    assert_eq!(list.status, 403, "{}", list.body);
    let create = s.create(&s.member, "mine", "member").await;
    assert_eq!(create.status, 403, "{}", create.body);
    let revoke = s.revoke(&s.member, &key.key.id.to_string()).await;
    assert_eq!(revoke.status, 403, "{}", revoke.body);
    // Nothing happened.
    assert_eq!(s.list(&s.owner).await, vec![key.key.clone()]);
    // Members don't see the section either (server-rendered page); owners
    // and admins do.
    let page = |cookie: String| {
        let request = s
            .app
            .client
            .get(s.app.url(&format!("/o/{}/settings", s.slug)))
            .header("cookie", cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let members_view = page(s.member.clone()).await;
    assert!(members_view.contains("Members"), "{members_view}");
    assert!(!members_view.contains("API keys"));
    for cookie in [&s.owner, &s.admin] {
        let view = page(cookie.clone()).await;
        assert!(view.contains("API keys"), "{view}");
        assert!(view.contains("Create key"), "{view}");
        assert!(view.contains(&key.key.prefix), "{view}");
    }
}

#[tokio::test]
async fn a_key_is_never_an_owner_nor_above_its_creator() {
    let s = setup().await;
    for cookie in [&s.owner, &s.admin] {
        let reply = s.create(cookie, "root", "owner").await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert!(reply.error().field_message("role").is_some());
    }
    assert!(s.list(&s.owner).await.is_empty());

    // The role is checked against the creator's role in the database, not
    // the (possibly cached) one the request carries: a member whose stale
    // view still says admin can create nothing.
    let db = s.db().await;
    let page = s.app.org_page(&s.owner, &s.slug).await;
    let member = page
        .members
        .iter()
        .find(|m| m.email.as_deref() == Some(MEMBER))
        .unwrap();
    let stale = CurrentMember {
        account: CurrentAccount {
            id: tldw::domain::AccountId::random(),
            email: None,
            session: SessionHandle::Clerk {
                org: None,
                member: None,
            },
        },
        org: OrgSummary {
            id: s.org,
            user_id: member.user_id,
            slug: s.slug.clone(),
            name: "Robots".into(),
            role: OrgRole::Admin,
            personal: false,
        },
    };
    let name = tldw::domain::ApiKeyName::parse("sneaky").unwrap();
    let refused = api_keys::create(&db, &stale, name, OrgRole::Member).await;
    assert_eq!(refused.unwrap_err(), AppError::Forbidden);
    assert!(s.list(&s.owner).await.is_empty());
}

#[tokio::test]
async fn a_live_key_authenticates_as_its_creator_in_its_org() {
    let s = setup().await;
    let db = s.db().await;
    let created = s.create_ok(&s.admin, "bot", "admin").await;

    let member = api_keys::authenticate(&db, &created.secret)
        .await
        .unwrap()
        .expect("a live key was refused");
    assert_eq!(member.org.id, s.org);
    assert_eq!(member.org.slug, s.slug);
    assert_eq!(member.org.user_id, s.admin_id);
    assert_eq!(member.role(), OrgRole::Admin);
    assert!(!member.org.personal);
    assert_eq!(
        member.account.email.as_ref().map(|e| e.as_str()),
        Some(ADMIN)
    );
    match &member.account.session {
        SessionHandle::ApiKey { key, member: org } => {
            assert_eq!(*key, created.key.id);
            assert_eq!(org, &member.org);
        }
        other => panic!("not an API key session: {other:?}"),
    }

    // Used now, and written at most once a minute: a second use within the
    // minute leaves the time as it was.
    // (Recorded in the background, off the request's path.)
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let used = loop {
        if let Some(used) = s.last_used(&created).await {
            break used;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last use not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let listed = s.list(&s.owner).await;
    assert!(listed[0].last_used_at.is_some());
    api_keys::authenticate(&db, &created.secret)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(s.last_used(&created).await, Some(used));

    // Unknown, malformed and near-miss secrets are nobody.
    let mut wrong = created.secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    for secret in [
        wrong.as_str(),
        "tldw_",
        "",
        &created.secret[5..],
        &format!(" {}", created.secret),
    ] {
        assert!(
            api_keys::authenticate(&db, secret).await.unwrap().is_none(),
            "{secret:?} was accepted"
        );
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_in_every_process() {
    let s = setup().await;
    // Two pools, as two app processes would have.
    let (one, two) = (s.db().await, s.db().await);
    let created = s.create_ok(&s.owner, "bot", "member").await;
    assert!(
        api_keys::authenticate(&one, &created.secret)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        api_keys::authenticate(&two, &created.secret)
            .await
            .unwrap()
            .is_some()
    );
    s.revoke(&s.owner, &created.key.id.to_string()).await.ok();
    for db in [&one, &two] {
        assert!(
            api_keys::authenticate(db, &created.secret)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_key_stops_when_its_creator_leaves() {
    let s = setup().await;
    let db = s.db().await;
    let created = s.create_ok(&s.admin, "bot", "member").await;
    assert!(
        api_keys::authenticate(&db, &created.secret)
            .await
            .unwrap()
            .is_some()
    );
    s.app
        .call(
            &s.owner,
            "orgs/remove-member",
            &[("slug", &s.slug), ("user_id", &s.admin_id.to_string())],
        )
        .await
        .ok();
    assert!(
        api_keys::authenticate(&db, &created.secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.list(&s.owner).await.is_empty());
}

#[tokio::test]
async fn a_key_is_capped_by_its_creators_current_role() {
    let s = setup().await;
    let db = s.db().await;
    let admin_key = s.create_ok(&s.admin, "bot", "admin").await;
    let owner_member_key = s.create_ok(&s.owner, "reader", "member").await;
    let owner_admin_key = s.create_ok(&s.owner, "writer", "admin").await;

    let role = |secret: String| {
        let db = db.clone();
        async move {
            api_keys::authenticate(&db, &secret)
                .await
                .unwrap()
                .expect("refused")
                .role()
        }
    };
    assert_eq!(role(admin_key.secret.clone()).await, OrgRole::Admin);
    // The key's own role caps an owner's key too.
    assert_eq!(role(owner_member_key.secret.clone()).await, OrgRole::Member);
    assert_eq!(role(owner_admin_key.secret.clone()).await, OrgRole::Admin);

    s.app
        .call(
            &s.owner,
            "orgs/change-role",
            &[
                ("slug", &s.slug),
                ("user_id", &s.admin_id.to_string()),
                ("role", "member"),
            ],
        )
        .await
        .ok();
    assert_eq!(role(admin_key.secret.clone()).await, OrgRole::Member);
    // Promoted back: the key's own role is the ceiling again.
    s.app
        .call(
            &s.owner,
            "orgs/change-role",
            &[
                ("slug", &s.slug),
                ("user_id", &s.admin_id.to_string()),
                ("role", "owner"),
            ],
        )
        .await
        .ok();
    assert_eq!(role(admin_key.secret).await, OrgRole::Admin);
}

#[tokio::test]
async fn a_key_acts_in_its_own_org_only() {
    let s = setup().await;
    let db = s.db().await;
    // The owner also runs a second org, with a key of its own.
    let other_slug = s.app.create_org(&s.owner, "Elsewhere").await;
    let other_org = s.app.org_page(&s.owner, &other_slug).await.org.id;
    let key = s.create_ok(&s.owner, "here", "admin").await;
    let other_key: CreatedApiKey = s
        .app
        .call(
            &s.owner,
            "api-keys/create",
            &[("slug", &other_slug), ("name", "there"), ("role", "admin")],
        )
        .await
        .ok()
        .json();

    // The settings list of each org shows its own keys only.
    assert_eq!(s.list(&s.owner).await, vec![key.key.clone()]);
    let other_list: Vec<ApiKeyView> = s
        .app
        .call(&s.owner, "api-keys/list", &[("slug", &other_slug)])
        .await
        .ok()
        .json();
    assert_eq!(other_list, vec![other_key.key.clone()]);
    // Revoking another org's key by id, through this org: not found.
    let reply = s.revoke(&s.owner, &other_key.key.id.to_string()).await;
    assert_eq!(reply.status, 404, "{}", reply.body);

    // Even though its creator belongs to both, the key reaches one org.
    let member = api_keys::authenticate(&db, &key.secret)
        .await
        .unwrap()
        .unwrap();
    assert!(
        identity::member_of(&db, &member.account, &s.slug)
            .await
            .is_ok()
    );
    assert_eq!(
        identity::member_of(&db, &member.account, &other_slug)
            .await
            .unwrap_err(),
        AppError::NotFound("organization".into())
    );

    // In the database: each tenant sees its own key rows, none without one.
    for (org, expected) in [(s.org, key.key.id), (other_org, other_key.key.id)] {
        let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar("select id from api_keys")
            .fetch_all(tx.conn())
            .await
            .unwrap();
        assert_eq!(ids, vec![expected.as_uuid()]);
        tx.commit().await.unwrap();
    }
    let mut shared = db.shared().await.unwrap();
    let none: i64 = sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(shared.conn())
        .await
        .unwrap();
    assert_eq!(none, 0);
    shared.commit().await.unwrap();
}

#[tokio::test]
async fn a_key_cannot_call_server_functions() {
    let s = setup().await;
    let created = s.create_ok(&s.owner, "bot", "admin").await;
    let bearer = format!("Bearer {}", created.secret);
    let whoami = crate::helpers::Reply::read(
        s.app
            .post("auth/whoami")
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        whoami.ok().json::<Option<tldw::domain::Viewer>>(),
        None,
        "a key signed in to a server function"
    );
    let list = crate::helpers::Reply::read(
        s.app
            .post("api-keys/list")
            .header("authorization", &bearer)
            .form(&[("slug", &s.slug)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.status, 401, "{}", list.body);
}

/// The lookup function, called as the app role, answers for the hash of a
/// live key only and shows nothing of any other row.
#[tokio::test]
async fn the_definer_lookup_answers_only_for_a_known_hash() {
    let test_db = TestDb::new().await;
    let db = test_db.db(1).await;
    let (org, user) = crate::helpers::seed_org(&db, "org-a").await;
    let member = CurrentMember {
        account: CurrentAccount {
            id: tldw::domain::AccountId::random(),
            email: None,
            session: SessionHandle::Clerk {
                org: None,
                member: None,
            },
        },
        org: OrgSummary {
            id: org,
            user_id: user,
            slug: "org-a".into(),
            name: "org-a".into(),
            role: OrgRole::Owner,
            personal: false,
        },
    };
    let created = api_keys::create(
        &db,
        &member,
        tldw::domain::ApiKeyName::parse("k").unwrap(),
        OrgRole::Admin,
    )
    .await
    .unwrap();
    let mut conn = test_db.app_conn().await;
    let rows: i64 =
        sqlx::query_scalar("select count(*) from api_key_principal(sha256('not a key'::bytea))")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows, 0);
    let slug: String = sqlx::query_scalar(
        "select org_slug from api_key_principal(sha256(convert_to($1, 'UTF8')))",
    )
    .bind(&created.secret)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(slug, "org-a");
    // The app role still cannot read the table outside a tenant.
    let visible: i64 = sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(visible, 0);
}
