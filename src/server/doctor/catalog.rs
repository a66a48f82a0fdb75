//! What the database's catalog says about the invariants of DESIGN.md:
//! tenant isolation (RLS enabled, forced and keyed on `app.org_id` on every
//! tenant table), the app role's privileges, and the unique keys that make
//! webhooks and the summary cache exactly-once. Shared by `tldw doctor` and
//! the tests (tests/api/rls.rs, tests/api/doctor.rs).
//!
//! The catalog lint guards future migrations too: a table with an `org_id`
//! column that lacks forced RLS and full policies is reported.

use sqlx::{PgConnection, Row};

/// Tables that are shared across tenants on purpose, with the reason.
pub const SHARED_TABLES: &[(&str, &str)] = &[
    ("videos", "the shared summary cache; holds no tenant data"),
    ("_sqlx_migrations", "migration bookkeeping"),
    (
        "accounts",
        "identities; an account signs in before any org is chosen and may belong to many",
    ),
    ("sessions", "sign-in sessions belong to accounts, not orgs"),
    (
        "account_tokens",
        "emailed account links (verify email, reset password) belong to accounts, not orgs; hashes only",
    ),
    (
        "rate_limits",
        "attempt counters keyed by client address, email, member or API key id (the summary throttles); no org_id",
    ),
    (
        "webhook_events",
        "Dodo's webhook ledger: an event is recorded before (or without) knowing its org; tenant-facing code reads billing_events instead",
    ),
    (
        "clerk_deleted_users",
        "Clerk user ids deleted in Clerk (user.deleted), so a late token cannot recreate the account; identities, no org",
    ),
];
/// SECURITY DEFINER functions that may read across tenants, and why.
pub const DEFINER_FUNCTIONS: &[(&str, &str)] = &[
    ("account_orgs", "the org switcher: the orgs of one account"),
    (
        "api_key_principal",
        "a Bearer API key arrives before its org is known: the one live key with that SHA-256, its org and creator's current role (nothing for an unknown hash)",
    ),
    (
        "billing_org_for",
        "a Dodo event's org, from the subscription, checkout or customer ids we stored",
    ),
    (
        "billing_org_for_payment",
        "a Dodo refund's or dispute's org, from the payment id we stored (org id only, and only when exactly one org holds that payment)",
    ),
    (
        "orgs_with_abandoned_reservations",
        "the sweeper: ids of orgs holding a reservation nobody settles any more (org ids only; the settling runs in each org's tenant transaction)",
    ),
    (
        "orgs_with_expired_idempotency_keys",
        "the Idempotency-Key purge: ids of orgs holding expired keys (org ids only; the delete runs in each org's tenant transaction)",
    ),
    (
        "org_id_by_slug",
        "`tldw plan set --org <slug>`; executable by the owner role only, not the app",
    ),
];
/// The tenant root: its own `id` is the tenant key.
const TENANT_ROOT: &str = "orgs";
const TENANT_EXPR: &str = "current_setting('app.org_id'";
/// Everything wrong with the schema's tenant isolation, in words.
pub async fn rls_violations(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut violations = Vec::new();
    let tables = sqlx::query(
        "select c.relname::text as name, c.relkind::text as kind, c.relrowsecurity, c.relforcerowsecurity,
                exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped) as has_org_id,
                coalesce('security_invoker=true' = any (c.reloptions), false) as invoker
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')
         order by 1",
    )
    .fetch_all(&mut *conn)
    .await
    ?;

    for row in tables {
        let name: String = row.get("name");
        let kind: String = row.get("kind");
        let has_org_id: bool = row.get("has_org_id");
        if kind == "v" || kind == "m" {
            // A view runs with its owner's rights unless security_invoker is
            // set, which would read every tenant through RLS-exempt eyes.
            if !row.get::<bool, _>("invoker") {
                violations.push(format!("{name}: view without security_invoker = true"));
            }
            continue;
        }
        let shared = SHARED_TABLES.iter().any(|(t, _)| *t == name);
        if shared {
            if has_org_id {
                violations.push(format!(
                    "{name}: allow-listed as shared but has an org_id column"
                ));
            }
            continue;
        }
        let key = if name == TENANT_ROOT {
            "id"
        } else if has_org_id {
            "org_id"
        } else {
            violations.push(format!(
                "{name}: no org_id column and not on the shared allow-list (add org_id with RLS, or allow-list it with a reason)"
            ));
            continue;
        };
        if !row.get::<bool, _>("relrowsecurity") {
            violations.push(format!("{name}: row level security is not enabled"));
        }
        if !row.get::<bool, _>("relforcerowsecurity") {
            violations.push(format!("{name}: row level security is not forced"));
        }
        let policies = sqlx::query(
            "select policyname::text, permissive, cmd, roles::text[] as roles, qual, with_check
             from pg_policies where schemaname = 'public' and tablename = $1",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let keyed = |expr: &Option<String>| {
            expr.as_deref()
                .is_some_and(|e| e.contains(TENANT_EXPR) && e.contains(key) && e.contains("nullif"))
        };
        let mut covered = false;
        for policy in &policies {
            let policy_name: String = policy.get("policyname");
            let permissive: String = policy.get("permissive");
            let cmd: String = policy.get("cmd");
            let roles: Vec<String> = policy.get("roles");
            let qual: Option<String> = policy.get("qual");
            let with_check: Option<String> = policy.get("with_check");
            if permissive == "PERMISSIVE" && !keyed(&qual) {
                violations.push(format!("{name}.{policy_name}: a permissive policy whose USING is not keyed on app.org_id"));
            }
            if permissive == "PERMISSIVE"
                && cmd != "SELECT"
                && cmd != "DELETE"
                && !keyed(&with_check)
            {
                violations.push(format!("{name}.{policy_name}: a permissive policy whose WITH CHECK is not keyed on app.org_id"));
            }
            if cmd == "ALL" && roles == ["public"] && keyed(&qual) && keyed(&with_check) {
                covered = true;
            }
        }
        if !covered {
            violations.push(format!(
                "{name}: no policy FOR ALL TO PUBLIC with both USING and WITH CHECK on {key} = app.org_id"
            ));
        }
    }

    // Foreign keys between tenant tables must carry org_id, so a row can
    // never point into another tenant.
    let foreign_keys = sqlx::query(
        "select con.conname::text as name, src.relname::text as source, dst.relname::text as target,
                array(select a.attname::text from unnest(con.conkey) with ordinality k(num, ord) join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.ord) as columns,
                array(select a.attname::text from unnest(con.confkey) with ordinality k(num, ord) join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.ord) as target_columns,
                exists (select from pg_attribute a where a.attrelid = con.confrelid and a.attname = 'org_id' and not a.attisdropped) as target_has_org_id,
                exists (select from pg_attribute a where a.attrelid = con.conrelid and a.attname = 'org_id' and not a.attisdropped) as source_has_org_id
         from pg_constraint con
         join pg_class src on src.oid = con.conrelid
         join pg_class dst on dst.oid = con.confrelid
         join pg_namespace n on n.oid = src.relnamespace
         where con.contype = 'f' and n.nspname = 'public'",
    )
    .fetch_all(&mut *conn)
    .await
    ?;
    for fk in foreign_keys {
        let name: String = fk.get("name");
        let source: String = fk.get("source");
        let target: String = fk.get("target");
        let columns: Vec<String> = fk.get("columns");
        let target_columns: Vec<String> = fk.get("target_columns");
        if !fk.get::<bool, _>("source_has_org_id") {
            continue;
        }
        let ok = if target == TENANT_ROOT {
            columns == ["org_id"] && target_columns == ["id"]
        } else if fk.get::<bool, _>("target_has_org_id") {
            columns.first().map(String::as_str) == Some("org_id")
                && target_columns.first().map(String::as_str) == Some("org_id")
        } else {
            true
        };
        if !ok {
            violations.push(format!(
                "{source}.{name}: foreign key to tenant table {target} does not start with org_id"
            ));
        }
    }

    // SECURITY DEFINER functions run with their owner's rights, so each must
    // be known, pin its search_path, and be callable only by the app role.
    let definers = sqlx::query(
        "select p.proname::text as name, coalesce(p.proconfig, '{}')::text[] as config,
                has_function_privilege('public', p.oid, 'EXECUTE') as public_can_execute
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' and p.prosecdef",
    )
    .fetch_all(&mut *conn)
    .await?;
    for function in definers {
        let name: String = function.get("name");
        if !DEFINER_FUNCTIONS.iter().any(|(f, _)| *f == name) {
            violations.push(format!(
                "{name}: SECURITY DEFINER function not on the allow-list"
            ));
        }
        let config: Vec<String> = function.get("config");
        if !config.iter().any(|c| c.starts_with("search_path=")) {
            violations.push(format!(
                "{name}: SECURITY DEFINER function without a pinned search_path"
            ));
        }
        if function.get::<bool, _>("public_can_execute") {
            violations.push(format!(
                "{name}: SECURITY DEFINER function executable by PUBLIC"
            ));
        }
    }
    Ok(violations)
}

/// What is wrong with the connected role (`current_user`) as the app's
/// runtime role: it must not be a superuser, bypass RLS, create roles or
/// databases, belong to a role that may, or own anything (an owner skips
/// RLS unless forced, and may ALTER or DROP).
pub async fn app_role_problems(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut problems = Vec::new();
    let row = sqlx::query(
        "select current_user::text as name, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb
         from pg_roles where rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await?;
    let name: String = row.get("name");
    for (attribute, what) in [
        ("rolsuper", "is a superuser (RLS does not bind it)"),
        ("rolbypassrls", "has BYPASSRLS (RLS does not bind it)"),
        ("rolcreaterole", "may create roles"),
        ("rolcreatedb", "may create databases"),
    ] {
        if row.get::<bool, _>(attribute) {
            problems.push(format!("{name} {what}"));
        }
    }
    let owned: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
           and pg_has_role(current_user, c.relowner, 'USAGE')
         union all
         select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' and pg_has_role(current_user, p.proowner, 'USAGE')
         union all
         select n.nspname::text from pg_namespace n where pg_has_role(current_user, n.nspowner, 'USAGE')",
    )
    .fetch_all(&mut *conn)
    .await?;
    if !owned.is_empty() {
        problems.push(format!("{name} owns {}", owned.join(", ")));
    }
    let privileged: Vec<String> = sqlx::query_scalar(
        "select r.rolname::text from pg_roles r
         where pg_has_role(current_user, r.oid, 'MEMBER') and r.rolname <> current_user
           and (r.rolsuper or r.rolbypassrls)",
    )
    .fetch_all(&mut *conn)
    .await?;
    if !privileged.is_empty() {
        problems.push(format!(
            "{name} is a member of {}, which bypasses RLS",
            privileged.join(", ")
        ));
    }
    Ok(problems)
}

/// Whether `table` has a unique index (or constraint) on exactly
/// `columns`, in any order, with no predicate (a partial index does not
/// make every row unique).
pub async fn has_unique_key(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
) -> Result<bool, sqlx::Error> {
    let keys: Vec<Vec<String>> = sqlx::query_scalar(
        "select array(select a.attname::text from unnest(i.indkey) k(num)
                      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.num
                      order by a.attname)
         from pg_index i join pg_class c on c.oid = i.indrelid
         join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relname = $1 and i.indisunique and i.indisvalid
           and i.indpred is null",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let mut wanted: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    wanted.sort();
    Ok(keys.contains(&wanted))
}
