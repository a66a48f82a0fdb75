//! Turns a request into the account behind it, and an account plus an org
//! into a member: the same types whichever sign-in is configured.

use axum::http::{HeaderMap, header::AUTHORIZATION};
use axum_extra::extract::cookie::CookieJar;

use super::{clerk::ClerkVerifier, clerk_link, session};
use crate::{
    domain::{AccountId, Email, OrgId, OrgRole, OrgSummary, Permission},
    error::AppError,
    server::db::{Db, TenantScope},
};

#[derive(Clone)]
pub enum Authenticator {
    Builtin,
    Clerk(ClerkVerifier),
}

#[derive(Clone, Debug)]
pub struct CurrentAccount {
    pub id: AccountId,
    pub email: Option<Email>,
    pub session: SessionHandle,
}

#[derive(Clone, Debug)]
pub enum SessionHandle {
    Builtin {
        token_hash: Vec<u8>,
        active_org: Option<OrgId>,
    },
    /// Clerk picks the active org; ours mirrors the token's. `member` is the
    /// membership of that org as the token states it.
    Clerk {
        org: Option<OrgId>,
        member: Option<OrgSummary>,
    },
}

/// An account acting in one of its orgs.
#[derive(Clone, Debug)]
pub struct CurrentMember {
    pub account: CurrentAccount,
    pub org: OrgSummary,
}

impl CurrentMember {
    pub fn role(&self) -> OrgRole {
        self.org.role
    }

    /// Refuses with 403 unless the member's role has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.org.role.allows(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn scope(&self) -> TenantScope {
        TenantScope::member(self.org.id, self.org.user_id)
    }
}

impl Authenticator {
    /// The signed-in account, or `None` for a visitor. A bad or expired
    /// credential is the same as none.
    pub async fn authenticate(
        &self,
        db: &Db,
        headers: &HeaderMap,
    ) -> Result<Option<CurrentAccount>, AppError> {
        match self {
            Authenticator::Builtin => {
                let Some(token) = session::token_from(headers) else {
                    return Ok(None);
                };
                let token_hash = session::hash_token(&token);
                let record = match db.identity().session(&token_hash) {
                    Some(record) => Some(record),
                    None => {
                        let record = session::lookup(db, &token).await.map_err(AppError::from)?;
                        if let Some(record) = &record {
                            db.identity().remember_session(record);
                        }
                        record
                    }
                };
                Ok(record.map(|r| CurrentAccount {
                    id: r.account_id,
                    email: r.email,
                    session: SessionHandle::Builtin {
                        token_hash: r.token_hash,
                        active_org: r.active_org,
                    },
                }))
            }
            Authenticator::Clerk(verifier) => {
                let Some(token) = clerk_token(headers) else {
                    return Ok(None);
                };
                match verifier.verify(&token).await {
                    Ok(clerk) => {
                        let key = (
                            clerk.user_id.clone(),
                            clerk.org.as_ref().map(|o| o.id.clone()),
                            clerk.org.as_ref().and_then(|o| o.role.clone()),
                        );
                        if let Some(account) = db.identity().clerk_account(&key) {
                            return Ok(Some(account));
                        }
                        let account = clerk_link::account_for(db, &clerk).await?;
                        db.identity().remember_clerk_account(key, &account);
                        Ok(Some(account))
                    }
                    Err(error) => {
                        tracing::info!(%error, "rejected a Clerk session token");
                        Ok(None)
                    }
                }
            }
        }
    }

    pub fn is_builtin(&self) -> bool {
        matches!(self, Authenticator::Builtin)
    }
}

/// `Authorization: Bearer` first (cross-origin calls), then the `__session` cookie.
fn clerk_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    bearer.map(str::to_owned).or_else(|| {
        CookieJar::from_headers(headers)
            .get("__session")
            .map(|c| c.value().to_owned())
    })
}

/// Every org the account belongs to, through the one narrow cross-tenant
/// function (see the accounts migration). Always read fresh (and then
/// remembered for [`member_of`]).
#[tracing::instrument(skip(db), fields(%account))]
pub async fn memberships(db: &Db, account: AccountId) -> Result<Vec<OrgSummary>, AppError> {
    let mut tx = db.shared().await?;
    let rows: Vec<(uuid::Uuid, uuid::Uuid, String, String, String, bool)> =
        sqlx::query_as("select org_id, user_id, slug, name, role, personal from account_orgs($1)")
            .bind(account.as_uuid())
            .fetch_all(tx.conn())
            .await?;
    tx.commit().await?;
    let orgs: Vec<OrgSummary> = rows
        .into_iter()
        .filter_map(|(org, user, slug, name, role, personal)| {
            Some(OrgSummary {
                id: OrgId::from_uuid(org),
                user_id: crate::domain::UserId::from_uuid(user),
                slug,
                name,
                role: OrgRole::parse(&role)?,
                personal,
            })
        })
        .collect();
    db.identity().remember_memberships(account, orgs.clone());
    Ok(orgs)
}

/// The account as a member of the org at `slug`. Not a member (or no such
/// org) is 404 either way, so slugs of other tenants reveal nothing. The
/// answer may come from the identity cache (see `auth::cache` for how stale
/// it can be); a slug missing from the cached list is looked up again.
pub async fn member_of(
    db: &Db,
    account: &CurrentAccount,
    slug: &str,
) -> Result<CurrentMember, AppError> {
    // A Clerk token speaks for its own org; otherwise the cached list.
    let token_org = match &account.session {
        SessionHandle::Clerk {
            member: Some(member),
            ..
        } if member.slug == slug => Some(member.clone()),
        _ => None,
    };
    let cached = token_org.or_else(|| {
        db.identity()
            .memberships(account.id)
            .and_then(|orgs| orgs.iter().find(|org| org.slug == slug).cloned())
    });
    let org = match cached {
        Some(org) => Some(org),
        None => memberships(db, account.id)
            .await?
            .into_iter()
            .find(|org| org.slug == slug),
    };
    org.map(|org| CurrentMember {
        account: account.clone(),
        org,
    })
    .ok_or_else(|| AppError::NotFound("organization".into()))
}

/// The org to land in: the session's choice while still a member, else the
/// personal org, else the first.
pub fn active_org(account: &CurrentAccount, orgs: &[OrgSummary]) -> Option<OrgSummary> {
    let preferred = match &account.session {
        SessionHandle::Builtin { active_org, .. } => *active_org,
        SessionHandle::Clerk { org, .. } => *org,
    };
    preferred
        .and_then(|id| orgs.iter().find(|o| o.id == id))
        .or_else(|| orgs.iter().find(|o| o.personal))
        .or_else(|| orgs.first())
        .cloned()
}
