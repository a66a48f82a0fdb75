//! `tldw doctor` (issue 16, part 3): green on a fresh database, and red
//! with a clear line for each invariant broken on purpose.

use sqlx::{Connection, Executor, PgConnection};
use std::collections::HashMap;
use tldw::server::{
    config::Settings,
    db::Pooling,
    doctor::{self, Check},
};
use uuid::Uuid;

use crate::helpers::{TestDb, settings_for, superuser_conn};

fn find<'c>(checks: &'c [Check], name: &str) -> &'c Check {
    checks
        .iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no {name:?} check in {checks:#?}"))
}

fn assert_red(checks: &[Check], name: &str, detail: &str) {
    let check = find(checks, name);
    assert!(!check.ok, "{name} should be red: {checks:#?}");
    assert!(
        check.detail.contains(detail),
        "{name}: expected {detail:?} in {:?}",
        check.detail
    );
    // Only the broken invariant is red.
    let others: Vec<&Check> = checks.iter().filter(|c| !c.ok && c.check != name).collect();
    assert!(others.is_empty(), "other checks went red too: {others:#?}");
}

async fn database_checks(db: &TestDb) -> Vec<Check> {
    doctor::database_checks(db.app_options(), Pooling::default()).await
}

#[tokio::test]
async fn a_fresh_database_is_green() {
    let db = TestDb::new().await;
    let checks = database_checks(&db).await;
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    for name in [
        doctor::APP_ROLE,
        doctor::TENANT_ISOLATION,
        doctor::WEBHOOK_LEDGER,
        doctor::QUOTA,
        doctor::SINGLE_FLIGHT,
    ] {
        find(&checks, name);
    }
    // The probe left nothing behind.
    let mut su = superuser_conn(&db).await;
    let left: i64 = sqlx::query_scalar(
        "select (select count(*) from orgs) + (select count(*) from accounts)
              + (select count(*) from usage_counters) + (select count(*) from usage_records)",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(left, 0);

    // The whole command, as `tldw doctor` runs it: migrations, the
    // database, the (local) settings.
    let checks = doctor::run(&settings_for(&db, &[]), &|_| None)
        .await
        .unwrap();
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    assert!(
        doctor::render(&checks, false).ends_with("checks passed\n"),
        "{}",
        doctor::render(&checks, false)
    );
    let json = serde_json::to_value(&checks).unwrap();
    assert_eq!(json[0]["check"], "migrations");
    assert_eq!(json[0]["ok"], true);
    assert!(json[0]["detail"].is_string());
}

#[tokio::test]
async fn rls_not_forced_is_red() {
    let db = TestDb::new().await;
    let mut owner = db.owner_conn().await;
    owner
        .execute("alter table users no force row level security")
        .await
        .unwrap();
    assert_red(
        &database_checks(&db).await,
        doctor::TENANT_ISOLATION,
        "users: row level security is not forced",
    );
}

#[tokio::test]
async fn a_tenant_table_without_its_policy_is_red() {
    let db = TestDb::new().await;
    let mut owner = db.owner_conn().await;
    owner
        .execute("create table notes (org_id uuid not null, body text)")
        .await
        .unwrap();
    assert_red(
        &database_checks(&db).await,
        doctor::TENANT_ISOLATION,
        "notes: row level security is not enabled",
    );
}

#[tokio::test]
async fn a_webhook_ledger_without_its_unique_key_is_red() {
    let db = TestDb::new().await;
    let mut su = superuser_conn(&db).await;
    su.execute("alter table webhook_events drop constraint webhook_events_pkey cascade")
        .await
        .unwrap();
    assert_red(
        &database_checks(&db).await,
        doctor::WEBHOOK_LEDGER,
        "no unique key on webhook_events (webhook_id)",
    );
}

#[tokio::test]
async fn a_cache_without_its_single_flight_key_is_red() {
    let db = TestDb::new().await;
    let mut su = superuser_conn(&db).await;
    su.execute("alter table videos drop constraint videos_pkey cascade")
        .await
        .unwrap();
    assert_red(
        &database_checks(&db).await,
        doctor::SINGLE_FLIGHT,
        "no unique key on videos (video_id, variant)",
    );
}

#[tokio::test]
async fn a_quota_counter_without_its_key_is_red() {
    let db = TestDb::new().await;
    let mut su = superuser_conn(&db).await;
    su.execute("alter table usage_counters drop constraint usage_counters_pkey cascade")
        .await
        .unwrap();
    assert_red(
        &database_checks(&db).await,
        doctor::QUOTA,
        "no unique key on usage_counters (org_id, period_start)",
    );
}

/// The live probe sees a reservation statement that no longer stops at the
/// limit (a trigger that undoes the count, as a careless migration might).
#[tokio::test]
async fn a_quota_that_does_not_hold_is_red() {
    let db = TestDb::new().await;
    let mut su = superuser_conn(&db).await;
    su.execute(
        "create function forget_usage() returns trigger language plpgsql as
             $$ begin new.used := 0; return new; end $$;
         create trigger forget_usage before insert or update on usage_counters
             for each row execute function forget_usage();",
    )
    .await
    .unwrap();
    assert_red(
        &database_checks(&db).await,
        doctor::QUOTA,
        "the limit does not hold",
    );
}

/// Roles are global to the cluster the tests share, so the app role itself
/// is never changed: a throwaway role with the broken attribute stands in
/// for it (`set role`), and the role check runs as that role.
async fn role_problems(db: &TestDb, setup: &str) -> Vec<String> {
    let role = format!("doctor_{}", Uuid::new_v4().simple());
    let mut su = superuser_conn(db).await;
    su.execute(sqlx::AssertSqlSafe(
        setup.replace("{role}", &role).to_string(),
    ))
    .await
    .unwrap();
    su.execute(sqlx::AssertSqlSafe(format!("set role {role}")))
        .await
        .unwrap();
    let problems = doctor::catalog::app_role_problems(&mut su).await.unwrap();
    su.execute("reset role").await.unwrap();
    su.execute(sqlx::AssertSqlSafe(format!(
        "drop owned by {role}; drop role {role}"
    )))
    .await
    .unwrap();
    problems
}

#[tokio::test]
async fn an_app_role_with_bypassrls_or_owning_a_table_is_red() {
    let db = TestDb::new().await;
    let problems = role_problems(&db, "create role {role} bypassrls").await;
    assert!(
        problems.iter().any(|p| p.contains("has BYPASSRLS")),
        "{problems:?}"
    );
    let problems = role_problems(
        &db,
        "create role {role}; create table owned_by_app (id int); alter table owned_by_app owner to {role}",
    )
    .await;
    assert!(
        problems.iter().any(|p| p.contains("owns owned_by_app")),
        "{problems:?}"
    );
    // A superuser is the worst case of all.
    let mut su = superuser_conn(&db).await;
    let problems = doctor::catalog::app_role_problems(&mut su).await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains("is a superuser")),
        "{problems:?}"
    );
    // The real app role has none of these problems.
    let mut conn = PgConnection::connect_with(&db.app_options()).await.unwrap();
    assert_eq!(
        doctor::catalog::app_role_problems(&mut conn).await.unwrap(),
        Vec::<String>::new()
    );
}

fn settings(vars: &[(&str, &str)]) -> (Settings, HashMap<String, String>) {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).unwrap();
    (settings, vars)
}

fn settings_checks(vars: &[(&str, &str)]) -> Vec<Check> {
    let (settings, vars) = settings(vars);
    doctor::settings_checks(&settings, &|name| vars.get(name).cloned())
}

const DODO: &[(&str, &str)] = &[
    ("DODO_PAYMENTS_API_KEY", "sk_live_test"),
    (
        "DODO_PAYMENTS_WEBHOOK_KEY",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    ("DODO_PAYMENTS_PRODUCT_PRO", "pdt_pro"),
    ("DODO_PAYMENTS_PRODUCT_TEAM", "pdt_team"),
];

#[test]
fn production_settings_are_checked() {
    // The embedded default is local, and fine as such.
    let checks = settings_checks(&[]);
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");

    let https = [
        ("HOST", "0.0.0.0"),
        ("PUBLIC_URL", "https://tldw.example"),
        ("SMTP_URL", "smtp://mail.example:587"),
    ];
    let checks = settings_checks(&https);
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");

    assert_red(
        &settings_checks(&[("HOST", "0.0.0.0"), ("SMTP_URL", "smtp://mail.example:587")]),
        doctor::PUBLIC_URL,
        "PUBLIC_URL is unset",
    );
    assert_red(
        &settings_checks(&[
            ("PUBLIC_URL", "http://tldw.example"),
            ("SMTP_URL", "smtp://mail.example:587"),
        ]),
        doctor::PUBLIC_URL,
        "is not https",
    );
    assert_red(
        &settings_checks(&[("HOST", "0.0.0.0"), ("PUBLIC_URL", "https://tldw.example")]),
        doctor::MAIL,
        "built-in accounts without SMTP_URL",
    );
    assert_red(
        &settings_checks(&[(
            "DODO_PAYMENTS_WEBHOOK_KEY",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )]),
        doctor::BILLING,
        "DODO_PAYMENTS_WEBHOOK_KEY set but DODO_PAYMENTS_API_KEY is not",
    );

    // Dodo in test mode with the built-in summarizer: fine; in live mode: red.
    let checks = settings_checks(DODO);
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    let mut live = DODO.to_vec();
    live.push(("DODO_PAYMENTS_ENVIRONMENT", "live_mode"));
    assert_red(
        &settings_checks(&live),
        doctor::SUMMARIZER,
        "built-in extractive summarizer, while Dodo is in live mode",
    );
    live.push(("OPENAI_API_KEY", "sk-test"));
    let checks = settings_checks(&live);
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
}
