//! Tenant isolation, proven against real PostgreSQL as the app role.
//!
//! The catalog lint guards future migrations too: a table with an `org_id`
//! column that lacks forced RLS and full policies fails here.

use sqlx::{Connection, Executor, PgConnection, Row};
use std::time::Duration;
use tldw::{
    domain::{OrgId, UserId},
    server::{
        db::{Db, TenantScope},
        doctor::catalog::{app_role_problems, rls_violations},
    },
};
use uuid::Uuid;

use crate::helpers::TestDb;

struct Tenant {
    org: OrgId,
    user: UserId,
    account: Uuid,
}

/// Accounts are global (not tenant data): created outside any org.
async fn new_account(db: &Db, email: &str) -> Uuid {
    let id = Uuid::new_v4();
    let mut tx = db.shared().await.unwrap();
    sqlx::query("insert into accounts (id, email) values ($1, $2)")
        .bind(id)
        .bind(email)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn seed_org(db: &Db, slug: &str) -> Tenant {
    let tenant = Tenant {
        org: OrgId::random(),
        user: UserId::random(),
        account: new_account(db, &format!("owner@{slug}.test")).await,
    };
    let mut tx = db.tenant(TenantScope::org(tenant.org)).await.unwrap();
    sqlx::query("insert into orgs (id, slug, name) values ($1, $2, $2)")
        .bind(tenant.org.as_uuid())
        .bind(slug)
        .execute(tx.conn())
        .await
        .unwrap();
    sqlx::query("insert into users (org_id, id, account_id, role) values ($1, $2, $3, 'owner')")
        .bind(tenant.org.as_uuid())
        .bind(tenant.user.as_uuid())
        .bind(tenant.account)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tenant
}

async fn count(conn: &mut PgConnection, sql: &'static str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_one(conn).await
}

#[tokio::test]
async fn the_app_role_is_unprivileged_and_owns_nothing() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    // Not a superuser, no BYPASSRLS, cannot create roles or databases, is
    // in no role that may, and owns nothing (owning a table skips RLS
    // unless forced, and allows ALTER/DROP).
    assert_eq!(
        app_role_problems(&mut conn).await.unwrap(),
        Vec::<String>::new()
    );
    let can_login: bool =
        sqlx::query_scalar("select rolcanlogin from pg_roles where rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(can_login);

    // It can use the data but not change the schema.
    assert!(conn.execute("create table sneaky (id int)").await.is_err());
    assert!(
        conn.execute("alter table users disable row level security")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn every_tenant_table_has_forced_rls_and_complete_policies() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    assert_eq!(
        rls_violations(&mut conn).await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_catalog_lint_catches_a_table_added_without_isolation() {
    let test_db = TestDb::new().await;
    let mut owner = test_db.owner_conn().await;
    owner
        .execute(
            "create table rogue (org_id uuid not null, note text);
             create table half_done (org_id uuid not null);
             alter table half_done enable row level security;
             create table leaky (org_id uuid not null);
             alter table leaky enable row level security;
             alter table leaky force row level security;
             create policy leaky_all on leaky using (true) with check (true);
             create table read_only_policy (org_id uuid not null);
             alter table read_only_policy enable row level security;
             alter table read_only_policy force row level security;
             create policy iso on read_only_policy for select
                 using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));
             create table untagged (id int);
             alter table users add unique (id, org_id);
             create table child (org_id uuid not null, user_id uuid not null,
                                 foreign key (user_id, org_id) references users (id, org_id));
             alter table child enable row level security;
             alter table child force row level security;
             create policy iso on child
                 using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
                 with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));
             create view all_users as select * from users;
             create function peek() returns bigint language sql security definer
                 as 'select count(*) from users';",
        )
        .await
        .unwrap();
    let violations = rls_violations(&mut test_db.app_conn().await)
        .await
        .unwrap()
        .join("\n");
    for expected in [
        "rogue: row level security is not enabled",
        "rogue: row level security is not forced",
        "half_done: row level security is not forced",
        "leaky.leaky_all: a permissive policy whose USING is not keyed",
        "read_only_policy: no policy FOR ALL",
        "untagged: no org_id column and not on the shared allow-list",
        "child.child_user_id_org_id_fkey: foreign key to tenant table users does not start with org_id",
        "all_users: view without security_invoker",
        "peek: SECURITY DEFINER function not on the allow-list",
        "peek: SECURITY DEFINER function without a pinned search_path",
        "peek: SECURITY DEFINER function executable by PUBLIC",
    ] {
        assert!(
            violations.contains(expected),
            "missing {expected:?} in:\n{violations}"
        );
    }
}

#[tokio::test]
async fn a_tenant_sees_and_changes_only_its_own_rows() {
    let test_db = TestDb::new().await;
    tenants_see_and_change_only_their_own_rows(&test_db.db(4).await).await;
}

/// Two orgs on `db` (direct, or through a pooler): reads, updates and
/// deletes of one never reach the other, and writes into it are refused.
pub(crate) async fn tenants_see_and_change_only_their_own_rows(db: &Db) {
    let a = seed_org(db, "org-a").await;
    let b = seed_org(db, "org-b").await;

    // Reads: all of A, none of B.
    let mut tx = db.tenant(TenantScope::member(a.org, a.user)).await.unwrap();
    let orgs: Vec<Uuid> = sqlx::query_scalar("select id from orgs")
        .fetch_all(tx.conn())
        .await
        .unwrap();
    assert_eq!(orgs, vec![a.org.as_uuid()]);
    let users: Vec<Uuid> = sqlx::query_scalar("select org_id from users")
        .fetch_all(tx.conn())
        .await
        .unwrap();
    assert_eq!(users, vec![a.org.as_uuid()]);
    let b_by_id: i64 =
        sqlx::query_scalar("select count(*) from users where org_id = $1 or id = $2")
            .bind(b.org.as_uuid())
            .bind(b.user.as_uuid())
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(b_by_id, 0);

    // Updates and deletes aimed at B touch nothing.
    for sql in [
        "update users set role = 'member' where org_id = $1",
        "delete from users where org_id = $1",
        "update orgs set name = 'pwned' where id = $1",
        "delete from orgs where id = $1",
    ] {
        let done = sqlx::query(sql)
            .bind(b.org.as_uuid())
            .execute(tx.conn())
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    tx.commit().await.unwrap();

    // Writes that would put a row into B fail (each in its own transaction,
    // since an error aborts it).
    let attempts: [(&str, Vec<Uuid>); 4] = [
        (
            "insert into users (org_id, id, account_id) values ($1, $2, $3)",
            vec![b.org.as_uuid(), Uuid::new_v4(), a.account],
        ),
        (
            "update users set org_id = $1 where org_id = $2",
            vec![b.org.as_uuid(), a.org.as_uuid()],
        ),
        (
            "insert into orgs (id, slug, name) values ($1, 'not-mine', 'x')",
            vec![Uuid::new_v4()],
        ),
        ("update orgs set id = $1", vec![b.org.as_uuid()]),
    ];
    for (sql, binds) in attempts {
        let mut tx = db.tenant(TenantScope::member(a.org, a.user)).await.unwrap();
        let mut query = sqlx::query(sql);
        for value in binds {
            query = query.bind(value);
        }
        let error = query.execute(tx.conn()).await.expect_err(sql);
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {error}");
    }

    // B is untouched, as B sees it.
    let mut tx = db.tenant(TenantScope::org(b.org)).await.unwrap();
    let row = sqlx::query(
        "select u.role, u.account_id, o.name from users u join orgs o on o.id = u.org_id",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("role"), "owner");
    assert_eq!(row.get::<Uuid, _>("account_id"), b.account);
    assert_eq!(row.get::<String, _>("name"), "org-b");
    assert_eq!(
        count(tx.conn(), "select count(*) from users")
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn without_a_tenant_nothing_is_visible() {
    let test_db = TestDb::new().await;
    let db = test_db.db(1).await;
    let a = seed_org(&db, "org-a").await;

    // A fresh connection: the setting was never made.
    let mut fresh = test_db.app_conn().await;
    assert_eq!(
        count(&mut fresh, "select count(*) from users")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        count(&mut fresh, "select count(*) from orgs")
            .await
            .unwrap(),
        0
    );
    let insert = sqlx::query("insert into users (org_id, id, account_id) values ($1, $2, $3)")
        .bind(a.org.as_uuid())
        .bind(Uuid::new_v4())
        .bind(a.account)
        .execute(&mut fresh)
        .await;
    assert!(insert.is_err(), "an insert without a tenant succeeded");

    // A pooled connection that served a tenant before: the setting reads ''
    // afterwards, and '' must mean nobody.
    let mut tx = db.tenant(TenantScope::org(a.org)).await.unwrap();
    let tenant_pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut shared = db.shared().await.unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(shared.conn())
        .await
        .unwrap();
    assert_eq!(
        pid, tenant_pid,
        "the pool of one should hand back the same connection"
    );
    let leftover: Option<String> = sqlx::query_scalar("select current_setting('app.org_id', true)")
        .fetch_one(shared.conn())
        .await
        .unwrap();
    assert_eq!(leftover.as_deref(), Some(""));
    assert_eq!(
        count(shared.conn(), "select count(*) from users")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        count(shared.conn(), "select count(*) from orgs")
            .await
            .unwrap(),
        0
    );
    shared.commit().await.unwrap();

    // A malformed value errors instead of matching anything.
    let mut tx = fresh.begin().await.unwrap();
    tx.execute("select set_config('app.org_id', 'not-a-uuid', true)")
        .await
        .unwrap();
    assert!(count(&mut tx, "select count(*) from users").await.is_err());
    tx.rollback().await.unwrap();

    // The owner is bound too (FORCE): owning the table is no way around it.
    let mut owner = test_db.owner_conn().await;
    assert_eq!(
        count(&mut owner, "select count(*) from users")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        count(&mut owner, "select count(*) from orgs")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn one_pooled_connection_serves_tenants_in_turn_without_leaking() {
    let test_db = TestDb::new().await;
    let (pid_a, pid_b) = tenants_in_turn_do_not_leak(&test_db.db(1).await).await;
    assert_eq!(pid_a, pid_b);
}

/// A's transaction, then B's on `db`; B sees none of A's rows or settings.
/// Returns the server process ids of both (the same on a pool of one
/// direct connection; a transaction pooler may pick another server).
pub(crate) async fn tenants_in_turn_do_not_leak(db: &Db) -> (i32, i32) {
    let a = seed_org(db, "org-a").await;
    let b = seed_org(db, "org-b").await;

    let second = new_account(db, "second@org-a.test").await;
    let mut tx = db.tenant(TenantScope::member(a.org, a.user)).await.unwrap();
    let pid_a: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    sqlx::query("insert into users (org_id, id, account_id) values ($1, $2, $3)")
        .bind(a.org.as_uuid())
        .bind(Uuid::new_v4())
        .bind(second)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.tenant(TenantScope::org(b.org)).await.unwrap();
    let pid_b: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let members: Vec<Uuid> = sqlx::query_scalar("select account_id from users")
        .fetch_all(tx.conn())
        .await
        .unwrap();
    assert_eq!(members, vec![b.account]);
    let user_setting: String = sqlx::query_scalar("select current_setting('app.user_id', true)")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(user_setting, "", "A's user id leaked into B's transaction");
    (pid_a, pid_b)
}

#[tokio::test]
async fn a_cancelled_request_leaves_no_partial_write_and_no_setting() {
    let test_db = TestDb::new().await;
    let db = test_db.db(1).await;
    let a = seed_org(&db, "org-a").await;

    let partial_account = new_account(&db, "partial@org-a.test").await;
    let work = async {
        let mut tx = db.tenant(TenantScope::member(a.org, a.user)).await.unwrap();
        sqlx::query("insert into users (org_id, id, account_id) values ($1, $2, $3)")
            .bind(a.org.as_uuid())
            .bind(Uuid::new_v4())
            .bind(partial_account)
            .execute(tx.conn())
            .await
            .unwrap();
        // The request is cancelled (client gone, timeout) while this runs.
        sqlx::query("select pg_sleep(2)")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    let outcome = tokio::time::timeout(Duration::from_millis(300), work).await;
    assert!(outcome.is_err(), "the work should have been cancelled");

    let mut shared = db.shared().await.unwrap();
    let org_setting: Option<String> =
        sqlx::query_scalar("select current_setting('app.org_id', true)")
            .fetch_one(shared.conn())
            .await
            .unwrap();
    let user_setting: Option<String> =
        sqlx::query_scalar("select current_setting('app.user_id', true)")
            .fetch_one(shared.conn())
            .await
            .unwrap();
    assert!(org_setting.unwrap_or_default().is_empty());
    assert!(user_setting.unwrap_or_default().is_empty());
    shared.commit().await.unwrap();

    let mut tx = db.tenant(TenantScope::org(a.org)).await.unwrap();
    let partial: i64 = sqlx::query_scalar("select count(*) from users where account_id = $1")
        .bind(partial_account)
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(partial, 0);
}

/// The one-statement cache hit runs as the caller (SECURITY INVOKER): inside
/// org A's transaction, naming org B as its org writes nothing anywhere and
/// reads nothing of B's.
#[tokio::test]
async fn the_cache_hit_function_cannot_act_for_another_org() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let a = seed_org(&db, "org-a").await;
    let b = seed_org(&db, "org-b").await;
    let mut owner = test_db.owner_conn().await;
    owner
        .execute(
            "insert into videos (video_id, status, title, summary)
             values ('rlsReady001', 'ready', 'A ready video', '{\"tldr\": \"t\", \"key_points\": []}')",
        )
        .await
        .unwrap();

    let call = "select outcome from serve_ready_summary($1, $2, 'rlsReady001', '{\"free\": 10}'::jsonb, 0, 'rls')";
    // As A, for B: the history insert is refused by B's policy.
    let mut tx = db.tenant(TenantScope::member(a.org, a.user)).await.unwrap();
    let refused = sqlx::query_scalar::<_, String>(call)
        .bind(b.org.as_uuid())
        .bind(b.user.as_uuid())
        .fetch_one(tx.conn())
        .await;
    let error = refused.expect_err("org A's transaction acted for org B");
    assert!(error.to_string().contains("row-level security"), "{error}");
    drop(tx);

    // Nothing of it landed in B, and the same call for A itself works.
    let mut tx = db.tenant(TenantScope::org(b.org)).await.unwrap();
    let b_rows: i64 = sqlx::query_scalar(
        "select (select count(*) from user_summaries) + (select count(*) from usage_records)
              + (select count(*) from usage_counters)",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(b_rows, 0);
    drop(tx);
    let mut tx = db.tenant(TenantScope::member(a.org, a.user)).await.unwrap();
    let outcome: String = sqlx::query_scalar(call)
        .bind(a.org.as_uuid())
        .bind(a.user.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(outcome, "charged");
}
