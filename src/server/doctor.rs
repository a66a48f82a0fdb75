//! `tldw doctor`: the pre-launch checklist, run against the configured
//! database (the embedded one, started as the app starts it, or
//! `DATABASE_URL`) and the settings. Each check is a line with a reason;
//! any red one makes the command exit non-zero.
//!
//! What it checks, and why (DESIGN.md's invariants):
//! - the app role is not a superuser, has no BYPASSRLS and owns nothing;
//! - every tenant table has RLS enabled and forced with its policy (the
//!   catalog lint of [`catalog::rls_violations`], also run by the tests);
//! - the webhook ledger's unique key (exactly-once webhooks);
//! - the quota statement, probed live in a transaction that is rolled back;
//! - the summary cache's single-flight key (one model call per video);
//! - settings that would be wrong in production.

pub mod catalog;

use serde::Serialize;
use sqlx::{PgConnection, postgres::PgConnectOptions};
use uuid::Uuid;

use super::{
    config::{AuthSettings, Settings},
    db::{self, Db, Pooling, TenantScope},
    services::quota,
};
use crate::domain::{OrgId, PlanCatalog, PlanId, UserId, VideoId};

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    fn new(check: &'static str, result: Result<String, String>) -> Check {
        match result {
            Ok(detail) => Check {
                check,
                ok: true,
                detail,
            },
            Err(detail) => Check {
                check,
                ok: false,
                detail,
            },
        }
    }
}

pub const APP_ROLE: &str = "app role";
pub const TENANT_ISOLATION: &str = "tenant isolation";
pub const WEBHOOK_LEDGER: &str = "webhook ledger";
pub const QUOTA: &str = "quota statement";
pub const SINGLE_FLIGHT: &str = "summary cache single flight";
pub const PUBLIC_URL: &str = "public URL";
pub const BILLING: &str = "billing";
pub const SUMMARIZER: &str = "summarizer";
pub const MAIL: &str = "sign-in mail";

/// Opens the configured database as the app would (starting the embedded
/// cluster, applying migrations), runs every check, and stops what it
/// started. `env` is the raw environment, for settings that parse but
/// look half-done.
pub async fn run(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Check>> {
    let (app_options, owner_options, _, embedded) = super::startup::open_database(settings).await?;
    let mut checks = vec![Check::new(
        "migrations",
        db::migrate(&owner_options)
            .await
            .map(|()| format!("all {} applied", db::MIGRATOR.iter().count()))
            .map_err(|error| format!("{error:#}")),
    )];
    if checks[0].ok {
        checks.extend(database_checks(app_options, super::startup::pooling(settings)?).await);
    }
    checks.extend(settings_checks(settings, env));
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .map_err(|_| anyhow::anyhow!("stopping PostgreSQL panicked"))??;
    }
    Ok(checks)
}

/// The checks that read the database, connected as the app role through
/// the pool the app would build (`pooling`), so that behind a transaction
/// pooler they run as the app's statements do. Each check has its own
/// read-only transaction: a failing one cannot abort the others.
pub async fn database_checks(app: PgConnectOptions, pooling: Pooling) -> Vec<Check> {
    let db = match Db::connect_with(app, 2, pooling).await {
        Ok(db) => db,
        Err(error) => {
            return vec![Check::new(
                "database",
                Err(format!("cannot connect as the app role: {error:#}")),
            )];
        }
    };
    let mut checks = Vec::new();
    checks.push(Check::new(
        APP_ROLE,
        in_tx(&db, async |conn| {
            let problems = catalog::app_role_problems(conn).await?;
            Ok(if problems.is_empty() {
                Ok(
                    "not a superuser, no BYPASSRLS, cannot create roles or databases, owns nothing"
                        .to_owned(),
                )
            } else {
                Err(problems.join("; "))
            })
        })
        .await,
    ));
    checks.push(Check::new(
        TENANT_ISOLATION,
        in_tx(&db, async |conn| {
            let violations = catalog::rls_violations(conn).await?;
            if !violations.is_empty() {
                return Ok(Err(violations.join("; ")));
            }
            let forced: i64 = sqlx::query_scalar(
                "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relforcerowsecurity",
            )
            .fetch_one(conn)
            .await?;
            Ok(Ok(format!(
                "{forced} tenant tables: RLS enabled and forced, policies keyed on app.org_id"
            )))
        })
        .await,
    ));
    checks.push(Check::new(
        WEBHOOK_LEDGER,
        unique_key(
            &db,
            "webhook_events",
            &["webhook_id"],
            "a redelivered webhook could be applied twice",
        )
        .await,
    ));
    checks.push(Check::new(QUOTA, quota_probe(&db).await));
    checks.push(Check::new(
        SINGLE_FLIGHT,
        unique_key(
            &db,
            "videos",
            &["video_id", "variant"],
            "concurrent misses could each claim the video and call the model",
        )
        .await,
    ));
    db.close().await;
    checks
}

/// Runs `check` in a transaction of its own (rolled back: checks only
/// read), turning a database error into the check's red line.
async fn in_tx(
    db: &Db,
    check: impl AsyncFnOnce(&mut PgConnection) -> Result<Result<String, String>, sqlx::Error>,
) -> Result<String, String> {
    let failed = |error: sqlx::Error| format!("the check itself failed: {error}");
    let mut tx = db.shared().await.map_err(failed)?;
    check(tx.conn()).await.map_err(failed)?
}

async fn unique_key(
    db: &Db,
    table: &str,
    columns: &[&str],
    otherwise: &str,
) -> Result<String, String> {
    let key = format!("{table} ({})", columns.join(", "));
    in_tx(db, async |conn| {
        Ok(if catalog::has_unique_key(conn, table, columns).await? {
            Ok(format!("unique key on {key}"))
        } else {
            Err(format!("no unique key on {key}: {otherwise}"))
        })
    })
    .await
}

/// The quota's reservation statement, live: a throwaway org on a plan of
/// one summary asks twice, as the app role, inside a transaction that is
/// rolled back (nothing is left behind). The first must be granted and the
/// second refused with the counter at 1 of 1. The statement is one
/// conditional upsert; what makes it atomic under concurrency is that
/// concurrent upserts of one counter row serialize on its unique key
/// (`ON CONFLICT` locks the row and re-checks `used < limit` on the latest
/// version), so that key is checked too. A concurrent probe would need
/// committed rows (another session cannot see this transaction's org).
async fn quota_probe(db: &Db) -> Result<String, String> {
    unique_key(
        db,
        "usage_counters",
        &["org_id", "period_start"],
        "concurrent reservations would not serialize on the counter row",
    )
    .await?;
    let failed = |error: &dyn std::fmt::Display| format!("the probe failed: {error}");
    let (org, user) = (OrgId::random(), UserId::random());
    let mut tx = db
        .tenant(TenantScope::member(org, user))
        .await
        .map_err(|e| failed(&e))?;
    let tag = &Uuid::new_v4().simple().to_string()[..12];
    let account = Uuid::new_v4();
    sqlx::query("insert into accounts (id, email) values ($1, $2)")
        .bind(account)
        .bind(format!("doctor-{tag}@probe.invalid"))
        .execute(tx.conn())
        .await
        .map_err(|e| failed(&e))?;
    sqlx::query("insert into orgs (id, slug, name) values ($1, $2, 'tldw doctor probe')")
        .bind(org.as_uuid())
        .bind(format!("doctor-probe-{tag}"))
        .execute(tx.conn())
        .await
        .map_err(|e| failed(&e))?;
    sqlx::query("insert into users (org_id, id, account_id, role) values ($1, $2, $3, 'owner')")
        .bind(org.as_uuid())
        .bind(user.as_uuid())
        .bind(account)
        .execute(tx.conn())
        .await
        .map_err(|e| failed(&e))?;
    let plans = PlanCatalog::default().with(PlanId::Free, 1, 0);
    let first = VideoId::parse("doctorProb1").map_err(|e| failed(&e))?;
    let second = VideoId::parse("doctorProb2").map_err(|e| failed(&e))?;
    let granted = quota::reserve(&mut tx, user, &first, &plans)
        .await
        .map_err(|e| failed(&format!("{e:?}")))?;
    let refused = quota::reserve(&mut tx, user, &second, &plans)
        .await
        .map_err(|e| failed(&format!("{e:?}")))?;
    let used: i32 = sqlx::query_scalar(
        "select coalesce(sum(used), 0)::int from usage_counters where org_id = $1",
    )
    .bind(org.as_uuid())
    .fetch_one(tx.conn())
    .await
    .map_err(|e| failed(&e))?;
    tx.rollback().await.map_err(|e| failed(&e))?;
    match (granted, refused) {
        (quota::Reserve::Reserved(_), quota::Reserve::Exhausted(status))
            if used == 1 && status.used == 1 && status.limit == 1 =>
        {
            Ok("at the limit a second reservation is refused (1 of 1 used); concurrent ones serialize on usage_counters (org_id, period_start); probe rolled back".into())
        }
        (granted, refused) => Err(format!(
            "on a plan of 1, the first reservation gave {}, the second {}, with {used} counted: the limit does not hold",
            describe(&granted),
            describe(&refused)
        )),
    }
}

fn describe(reserve: &quota::Reserve) -> &'static str {
    match reserve {
        quota::Reserve::Reserved(_) => "a reservation",
        quota::Reserve::Exhausted(_) => "a refusal",
        quota::Reserve::AlreadyOpen => "\"already open\"",
    }
}

/// Settings that run locally but would be wrong serving the public.
/// "Public" means a non-loopback `HOST` or a non-local `PUBLIC_URL`; the
/// embedded default (127.0.0.1, no `PUBLIC_URL`) is local.
pub fn settings_checks(settings: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    let local_url = settings
        .public_url
        .as_ref()
        .is_some_and(|url| matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")));
    let public = !settings.host.is_loopback() || (settings.public_url.is_some() && !local_url);
    let mut checks = Vec::new();

    checks.push(Check::new(
        PUBLIC_URL,
        match &settings.public_url {
            Some(url) if url.scheme() == "https" => {
                Ok(format!("PUBLIC_URL {url}: https, session cookies are Secure"))
            }
            Some(url) if public => Err(format!(
                "PUBLIC_URL {url} is not https: session cookies are not Secure and links go out in the clear"
            )),
            None if public => Err(format!(
                "HOST {} serves other machines but PUBLIC_URL is unset: set PUBLIC_URL=https://… (cookies are not Secure without it)",
                settings.host
            )),
            _ => Ok(format!(
                "local only (HOST {}); set an https PUBLIC_URL before serving the public",
                settings.host
            )),
        },
    ));

    let live = settings.billing.dodo.as_ref().is_some_and(|dodo| {
        dodo.api.base_url == crate::server::clients::dodo::DodoEnvironment::LiveMode.base_url()
    });
    let stray: Vec<&str> = [
        "DODO_PAYMENTS_WEBHOOK_KEY",
        "DODO_PAYMENTS_WEBHOOK_KEY_PREVIOUS",
        "DODO_PAYMENTS_PRODUCT_PRO",
        "DODO_PAYMENTS_PRODUCT_TEAM",
        "DODO_PAYMENTS_ENVIRONMENT",
        "DODO_PAYMENTS_BASE_URL",
    ]
    .into_iter()
    .filter(|var| env(var).is_some_and(|v| !v.trim().is_empty()))
    .collect();
    checks.push(Check::new(
        BILLING,
        match &settings.billing.dodo {
            Some(_) => Ok(format!(
                "Dodo Payments in {}, webhook key and products for pro and team set",
                if live { "live mode" } else { "test mode" }
            )),
            None if !stray.is_empty() => Err(format!(
                "{} set but DODO_PAYMENTS_API_KEY is not: billing is off",
                stray.join(", ")
            )),
            None => Ok(
                "off: plans are shown, upgrades say billing is off (`tldw plan set` sets a plan)"
                    .into(),
            ),
        },
    ));

    checks.push(Check::new(
        SUMMARIZER,
        match &settings.summaries.openai {
            Some(_) => Ok("an OpenAI-compatible model".into()),
            None if live => Err(
                "the built-in extractive summarizer, while Dodo is in live mode: paying customers get sentence extracts; set OPENAI_API_KEY".into(),
            ),
            None => Ok("the built-in extractive summarizer (labelled as such; billing is not live)".into()),
        },
    ));

    checks.push(Check::new(
        MAIL,
        match (&settings.auth, &settings.smtp_url) {
            (AuthSettings::Clerk(clerk), _) if clerk.secret_key.is_none() && public => Err(
                "Clerk without CLERK_SECRET_KEY: Clerk users' emails cannot be read, so they cannot check out or accept invitations".into(),
            ),
            (AuthSettings::Clerk(clerk), _) => Ok(format!(
                "Clerk signs people in; emails {}; memberships follow {}",
                if clerk.secret_key.is_some() { "from the Backend API" } else { "unknown (no CLERK_SECRET_KEY)" },
                if clerk.webhooks.is_some() {
                    "tokens and webhooks"
                } else {
                    "tokens only (no CLERK_WEBHOOK_SECRET: stored rows are not pruned)"
                },
            )),
            (AuthSettings::Builtin, Some(_)) => Ok("built-in accounts, invitations sent through SMTP_URL".into()),
            (AuthSettings::Builtin, None) if public => Err(
                "built-in accounts without SMTP_URL: invitation emails are never sent (links are only shown to the inviter)".into(),
            ),
            (AuthSettings::Builtin, None) => Ok("built-in accounts, no SMTP_URL (fine locally: invitation links are shown)".into()),
        },
    ));
    checks
}

/// The checklist as text: one green or red line per check.
pub fn render(checks: &[Check], color: bool) -> String {
    let (green, red, reset) = if color {
        ("\x1b[32m", "\x1b[31m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = String::new();
    for check in checks {
        let (mark, paint) = if check.ok {
            ("ok  ", green)
        } else {
            ("FAIL", red)
        };
        out.push_str(&format!(
            "{paint}{mark}{reset} {:<28} {}\n",
            check.check, check.detail
        ));
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&match failed {
        0 => format!("{green}all {} checks passed{reset}\n", checks.len()),
        n => format!("{red}{n} of {} checks failed{reset}\n", checks.len()),
    });
    out
}
