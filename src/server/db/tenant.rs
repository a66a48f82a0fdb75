//! Transactions that carry their tenant with them.

use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};

use crate::domain::{OrgId, UserId};

/// Who a tenant transaction acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    pub org_id: OrgId,
    pub user_id: Option<UserId>,
}

impl TenantScope {
    pub fn org(org_id: OrgId) -> TenantScope {
        TenantScope {
            org_id,
            user_id: None,
        }
    }

    pub fn member(org_id: OrgId, user_id: UserId) -> TenantScope {
        TenantScope {
            org_id,
            user_id: Some(user_id),
        }
    }
}

/// A transaction in which row level security shows one organization.
///
/// The settings are transaction-local (`set_config(…, true)`), so they end
/// with the transaction, whether it commits, rolls back or is dropped half
/// way; a pooled connection never carries a tenant into its next use. This
/// also keeps them correct behind PgBouncer in transaction mode.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    scope: TenantScope,
}

impl TenantTx {
    /// `BEGIN` and the tenant settings travel as one simple query: one
    /// round trip, not two. Both values are UUIDs we print ourselves, so
    /// nothing a client sent is ever spliced into the SQL.
    /// `unprepared`: clear the server's prepared statements first (see
    /// [`super::Pooling::statement_cache`]).
    pub(super) async fn begin(
        pool: &PgPool,
        scope: TenantScope,
        unprepared: bool,
    ) -> Result<TenantTx, sqlx::Error> {
        let user = scope.user_id.map(|id| id.to_string()).unwrap_or_default();
        let deallocate = if unprepared { " DEALLOCATE ALL;" } else { "" };
        let tx = pool
            .begin_with(AssertSqlSafe(format!(
                "BEGIN;{deallocate} SELECT set_config('app.org_id', '{}', true), set_config('app.user_id', '{user}', true)",
                scope.org_id
            )))
            .await?;
        Ok(TenantTx { tx, scope })
    }

    pub fn scope(&self) -> TenantScope {
        self.scope
    }

    pub fn org_id(&self) -> OrgId {
        self.scope.org_id
    }

    /// The connection to run queries on, inside this transaction.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

/// A transaction for shared tables only; no org is set, so every tenant
/// table reads as empty and refuses writes.
pub struct SharedTx {
    tx: Transaction<'static, Postgres>,
}

impl SharedTx {
    pub(super) async fn begin(pool: &PgPool, unprepared: bool) -> Result<SharedTx, sqlx::Error> {
        let tx = if unprepared {
            pool.begin_with("BEGIN; DEALLOCATE ALL").await?
        } else {
            pool.begin().await?
        };
        Ok(SharedTx { tx })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}
