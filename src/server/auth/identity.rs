//! Turns a request into the account behind it, and an account plus an org
//! into a member: the same types whichever sign-in is configured.

use axum::http::{HeaderMap, header::AUTHORIZATION};
use axum_extra::extract::cookie::CookieJar;

use super::{clerk_link, session};
use crate::{
    domain::{API_KEY_PREFIX, AccountId, ApiKeyId, Email, OrgId, OrgRole, OrgSummary, Permission},
    error::AppError,
    server::db::{Db, TenantScope},
};

#[derive(Clone)]
pub enum Authenticator {
    Builtin,
    Clerk(clerk_link::ClerkAuth),
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
    /// membership of that org as the token states it (or as a newer Clerk
    /// webhook does). Other Clerk orgs are closed to this token, whatever
    /// rows exist: Clerk may have removed the member since.
    Clerk {
        org: Option<OrgId>,
        member: Option<OrgSummary>,
    },
    /// A program holding an API key (`Authorization: Bearer tldw_…` on the
    /// REST API only: [`Authenticator`] never reads keys, so pages and
    /// server functions cannot be reached with one). The account is the
    /// key's creator; `member` is the one org the key acts in, with the
    /// key's effective role. It has no other org, ever.
    ApiKey { key: ApiKeyId, member: OrgSummary },
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

    /// The API key this member is acting through, if it is a program.
    pub fn api_key(&self) -> Option<crate::domain::ApiKeyId> {
        match &self.account.session {
            SessionHandle::ApiKey { key, .. } => Some(*key),
            _ => None,
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
            Authenticator::Clerk(clerk) => {
                let Some(token) = clerk_token(headers) else {
                    return Ok(None);
                };
                match clerk.verifier.verify(&token).await {
                    Ok(session) => {
                        let key = (
                            session.user_id.clone(),
                            session.org.as_ref().map(|o| o.id.clone()),
                            session.org.as_ref().and_then(|o| o.role.clone()),
                        );
                        if let Some(account) = db.identity().clerk_account(&key) {
                            return Ok(Some(account));
                        }
                        let Some(account) = clerk_link::account_for(db, clerk, &session).await?
                        else {
                            tracing::info!("a Clerk token for a user deleted in Clerk");
                            return Ok(None);
                        };
                        // A token outranked by a newer webhook (its org
                        // refused, or another role) is not remembered: a
                        // fresh token after Clerk's change has the same key.
                        let outranked = match (&session.org, &account.session) {
                            (Some(org), SessionHandle::Clerk { member, .. }) => {
                                member.as_ref().map(|m| m.role)
                                    != Some(clerk_link::role_for(org.role.as_deref()))
                            }
                            _ => false,
                        };
                        if !outranked {
                            db.identity().remember_clerk_account(key, &account);
                        }
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

/// `Authorization: Bearer` first (cross-origin calls), then the `__session`
/// cookie. A Bearer API key (`tldw_…`) is not a Clerk token and is skipped
/// here on purpose: keys are for the REST API only, never for pages or
/// server functions, so it must not even reach the JWT verifier.
fn clerk_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with(API_KEY_PREFIX));
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

/// The orgs this credential may act in, with its role in each: an API key
/// its one org; a Clerk token its personal org, the orgs made here, and the
/// one Clerk org it names (with the role it states); built-in sessions every
/// membership.
pub async fn orgs_for(db: &Db, account: &CurrentAccount) -> Result<Vec<OrgSummary>, AppError> {
    match &account.session {
        SessionHandle::ApiKey { member, .. } => Ok(vec![member.clone()]),
        SessionHandle::Builtin { .. } => memberships(db, account.id).await,
        SessionHandle::Clerk { member, .. } => {
            let rows = memberships(db, account.id).await?;
            Ok(clerk_view(rows, member.as_ref()))
        }
    }
}

/// What a Clerk token sees of the account's rows (see [`orgs_for`]).
fn clerk_view(rows: Vec<OrgSummary>, token_org: Option<&OrgSummary>) -> Vec<OrgSummary> {
    let mut orgs: Vec<OrgSummary> = rows
        .into_iter()
        .filter_map(|org| match token_org {
            Some(token_org) if token_org.id == org.id => Some(token_org.clone()),
            _ if clerk_link::is_clerk_org(&org) => None,
            _ => Some(org),
        })
        .collect();
    if let Some(token_org) = token_org
        && !orgs.iter().any(|org| org.id == token_org.id)
    {
        orgs.push(token_org.clone());
    }
    orgs
}

/// The account as a member of the org at `slug`. Not a member (or no such
/// org, or a Clerk org the Clerk token does not name) is 404 either way, so
/// slugs of other tenants reveal nothing. The answer may come from the
/// identity cache (see `auth::cache` for how stale it can be); a slug
/// missing from the cached list is looked up again.
pub async fn member_of(
    db: &Db,
    account: &CurrentAccount,
    slug: &str,
) -> Result<CurrentMember, AppError> {
    let not_found = || AppError::NotFound("organization".into());
    // An API key acts in its own org and nowhere else, whatever else its
    // creator belongs to.
    if let SessionHandle::ApiKey { member, .. } = &account.session {
        return if member.slug == slug {
            Ok(CurrentMember {
                account: account.clone(),
                org: member.clone(),
            })
        } else {
            Err(not_found())
        };
    }
    // A Clerk token speaks for its own org, and only for that Clerk org;
    // otherwise the cached list.
    if let SessionHandle::Clerk {
        member: Some(member),
        ..
    } = &account.session
        && member.slug == slug
    {
        return Ok(CurrentMember {
            account: account.clone(),
            org: member.clone(),
        });
    }
    let cached = db
        .identity()
        .memberships(account.id)
        .and_then(|orgs| orgs.iter().find(|org| org.slug == slug).cloned());
    let org = match cached {
        Some(org) => Some(org),
        None => memberships(db, account.id)
            .await?
            .into_iter()
            .find(|org| org.slug == slug),
    };
    let clerk_session = matches!(account.session, SessionHandle::Clerk { .. });
    org.filter(|org| !(clerk_session && clerk_link::is_clerk_org(org)))
        .map(|org| CurrentMember {
            account: account.clone(),
            org,
        })
        .ok_or_else(not_found)
}

/// The org to land in: the session's choice while still a member, else the
/// personal org, else the first. An API key has its own org only.
pub fn active_org(account: &CurrentAccount, orgs: &[OrgSummary]) -> Option<OrgSummary> {
    let preferred = match &account.session {
        SessionHandle::Builtin { active_org, .. } => *active_org,
        SessionHandle::Clerk { org, .. } => *org,
        SessionHandle::ApiKey { member, .. } => {
            return orgs.iter().find(|o| o.id == member.id).cloned();
        }
    };
    preferred
        .and_then(|id| orgs.iter().find(|o| o.id == id))
        .or_else(|| orgs.iter().find(|o| o.personal))
        .or_else(|| orgs.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn clerk_reads_a_bearer_jwt() {
        assert_eq!(
            clerk_token(&with_authorization("Bearer eyJhbGciOi.x.y")).as_deref(),
            Some("eyJhbGciOi.x.y")
        );
    }

    #[test]
    fn clerk_never_sees_an_api_key() {
        let key = format!("Bearer {API_KEY_PREFIX}{}", "A".repeat(43));
        assert_eq!(clerk_token(&with_authorization(&key)), None);
        // The __session cookie still counts beside a key in the header.
        let mut headers = with_authorization(&key);
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("__session=eyJ.cookie.jwt"),
        );
        assert_eq!(clerk_token(&headers).as_deref(), Some("eyJ.cookie.jwt"));
    }

    fn summary(slug: &str) -> OrgSummary {
        OrgSummary {
            id: OrgId::random(),
            user_id: crate::domain::UserId::random(),
            slug: slug.into(),
            name: slug.into(),
            role: OrgRole::Member,
            personal: false,
        }
    }

    #[test]
    fn an_api_key_lands_only_in_its_own_org() {
        let (own, personal) = (
            summary("own"),
            OrgSummary {
                personal: true,
                ..summary("me")
            },
        );
        let account = CurrentAccount {
            id: AccountId::random(),
            email: None,
            session: SessionHandle::ApiKey {
                key: ApiKeyId::random(),
                member: own.clone(),
            },
        };
        assert_eq!(
            active_org(&account, &[personal.clone(), own.clone()]),
            Some(own)
        );
        assert_eq!(active_org(&account, &[personal]), None);
    }
}
