//! The three database roles and how the embedded cluster creates them.
//!
//! - `postgres`: the cluster's superuser; used only here, to create the others.
//! - `tldw_owner`: owns the database and every table; migrations run as it.
//! - `tldw_app`: what the running app connects as. It owns nothing and has no
//!   privilege that skips row level security, so the policies always apply.
//!
//! - `tldw_definer`: NOLOGIN, BYPASSRLS; owns the narrow SECURITY DEFINER
//!   functions that answer cross-tenant questions (an account's orgs).
//!
//! With an external server, create the last three yourself (README); the
//! migrations grant privileges to them by name.

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::{Connection, Executor, PgConnection, postgres::PgConnectOptions};

use super::embedded::EmbeddedPostgres;

pub const SUPERUSER: &str = "postgres";
pub const OWNER_ROLE: &str = "tldw_owner";
pub const APP_ROLE: &str = "tldw_app";
/// Owns the few SECURITY DEFINER functions that must read across tenants
/// (see the accounts migration). NOLOGIN: nobody connects as it.
pub const DEFINER_ROLE: &str = "tldw_definer";

/// Creates the owner and app roles and `database` when missing. Idempotent,
/// so every start runs it.
#[tracing::instrument(skip(pg))]
pub async fn ensure_roles_and_database(
    pg: &EmbeddedPostgres,
    database: &str,
) -> anyhow::Result<()> {
    let mut conn = connect(pg.superuser_options("postgres")).await?;
    let owner_password = pg.owner_password().expose_secret();
    let app_password = pg.app_password().expose_secret();
    let create_roles = format!(
        r#"
        do $$
        begin
            if not exists (select from pg_roles where rolname = '{OWNER_ROLE}') then
                create role {OWNER_ROLE} login nosuperuser nocreaterole nocreatedb nobypassrls password '{owner_password}';
            end if;
            if not exists (select from pg_roles where rolname = '{APP_ROLE}') then
                create role {APP_ROLE} login nosuperuser nocreaterole nocreatedb nobypassrls noinherit password '{app_password}';
            end if;
            if not exists (select from pg_roles where rolname = '{DEFINER_ROLE}') then
                create role {DEFINER_ROLE} nologin nosuperuser nocreaterole nocreatedb bypassrls;
                -- Lets migrations hand functions to it (ALTER FUNCTION … OWNER TO).
                grant {DEFINER_ROLE} to {OWNER_ROLE};
            end if;
        end
        $$;
        "#
    );
    conn.execute(sqlx::AssertSqlSafe(create_roles))
        .await
        .context("could not create the tldw roles")?;

    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "create database {} owner {OWNER_ROLE}",
            quote_ident(database)
        )))
        .await
        .with_context(|| format!("could not create the database {database}"))?;
    }

    conn.close().await?;
    Ok(())
}

/// Double-quotes an identifier (database names in tests are generated).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn connect(options: PgConnectOptions) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(&options)
        .await
        .context("could not connect to the embedded PostgreSQL as its superuser")
}
