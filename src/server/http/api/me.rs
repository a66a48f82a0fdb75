//! `GET /api/v1/me`: who the credential belongs to and where it may act.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};

use super::{ApiResult, caller::Caller, orgs::OrgJson};
use crate::{
    domain::AccountId,
    server::{auth::identity, http::AppState},
};

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub account_id: AccountId,
    pub email: Option<String>,
    /// `person` (a browser session or Clerk token) or `api_key`.
    pub credential: String,
    /// The orgs this credential may act in, with its role in each. An API
    /// key has exactly one.
    pub orgs: Vec<OrgJson>,
}

/// The caller: account, credential kind, and orgs with role.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    responses((status = 200, description = "The caller", body = Me)),
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let (account, credential, orgs) = match caller {
        Caller::Person(account) => {
            let orgs = identity::orgs_for(&state.db, &account).await?;
            (account, "person", orgs)
        }
        Caller::Key(member) => (member.account, "api_key", vec![member.org]),
    };
    Ok(Json(Me {
        account_id: account.id,
        email: account.email.map(|e| e.to_string()),
        credential: credential.into(),
        orgs: orgs.into_iter().map(OrgJson::from).collect(),
    }))
}
