//! `/api/v1/orgs/{slug}/invitations`: bringing people in (owners and
//! admins). Creating one sends the email when SMTP is configured; the link
//! is in the answer either way, the only time it exists.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{ApiResult, caller::OrgMember, idempotent, input::ApiBody};
use crate::{
    domain::{Email, InvitationView, OrgRole},
    error::AppError,
    server::{
        http::{AppState, error_response::ErrorEnvelope},
        services::invitations::{self, MailOutcome},
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitationRequest {
    pub email: String,
    /// `admin` or `member` (ownership is transferred, not invited).
    pub role: OrgRole,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedInvitation {
    pub invitation: InvitationView,
    /// The link the invitee opens: shown only now (we keep its hash).
    pub link: String,
    /// `sent`, `off` (no SMTP here: pass the link on yourself) or `failed`.
    #[schema(value_type = String)]
    pub mail: MailOutcome,
}

/// Open invitations (not accepted, revoked or expired).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/invitations",
    tag = "invitations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, description = "Open invitations", body = [InvitationView]),
        (status = 403, description = "Members may not see invitations", body = ErrorEnvelope),
    ),
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
) -> ApiResult<Json<Vec<InvitationView>>> {
    Ok(Json(invitations::list(&state.db, &member).await?))
}

/// Invites someone by email. Honours `Idempotency-Key`: a retry returns
/// the first answer and sends no second email.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{slug}/invitations",
    tag = "invitations",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body return the first answer"),
    ),
    request_body = NewInvitationRequest,
    responses(
        (status = 201, description = "Invited", body = CreatedInvitation),
        (status = 403, description = "Members may not invite, or the organization already has 50 open invitations", body = ErrorEnvelope),
        (status = 429, description = "More than 20 invitations from this organization in an hour; retry after `Retry-After` seconds (`rate_limited`)", body = ErrorEnvelope),
        (status = 409, description = "A request with this Idempotency-Key is still running (`in_progress`)", body = ErrorEnvelope),
    ),
)]
pub async fn create_invitation(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    headers: HeaderMap,
    body: ApiBody<NewInvitationRequest>,
) -> ApiResult<Response> {
    let route = "/api/v1/orgs/{slug}/invitations";
    idempotent::once(&state.db, &member, &headers, route, &body.raw, || async {
        let request = body.value;
        let email =
            Email::parse(&request.email).map_err(|e| AppError::field("email", e.to_string()))?;
        let origin = state.web.site_origin(&headers);
        let created = invitations::create(
            &state.db,
            &state.mailer,
            &member,
            &email,
            request.role,
            &origin,
        )
        .await?;
        Ok((
            StatusCode::CREATED,
            Json(CreatedInvitation {
                invitation: created.invitation,
                link: created.link,
                mail: created.mail,
            }),
        )
            .into_response())
    })
    .await
}

/// Revokes an open invitation.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{slug}/invitations/{id}",
    tag = "invitations",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("id" = String, Path, description = "The invitation's `id`"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Members may not revoke", body = ErrorEnvelope),
        (status = 404, description = "No such open invitation", body = ErrorEnvelope),
    ),
)]
pub async fn delete_invitation(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = id
        .parse()
        .map_err(|_| AppError::NotFound("invitation".into()))?;
    invitations::revoke(&state.db, &member, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
