//! What a signed-in person sees of the orgs they belong to.

use serde::{Deserialize, Serialize};

use super::{InvitationId, OrgId, OrgRole, UserId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: OrgId,
    /// This account's member id in the org.
    pub user_id: UserId,
    pub slug: String,
    pub name: String,
    pub role: OrgRole,
    pub personal: bool,
}

/// The signed-in person, for the header and the account page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub email: Option<String>,
    pub orgs: Vec<OrgSummary>,
    /// The org the session last worked in.
    pub active_slug: Option<String>,
    /// Built-in accounts can sign out here; Clerk sessions end at Clerk.
    pub builtin: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberView {
    pub user_id: UserId,
    pub email: Option<String>,
    pub role: OrgRole,
    pub joined: String,
    pub is_you: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationView {
    pub id: InvitationId,
    pub email: String,
    pub role: OrgRole,
    pub expires: String,
}

/// What the accept page shows about an invitation link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPreview {
    pub org_name: String,
    pub email: String,
    pub role: OrgRole,
}

/// Everything the org pages show, shaped by what the viewer may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPage {
    pub org: OrgSummary,
    pub members: Vec<MemberView>,
    /// `None` when the viewer may not manage invitations.
    pub invitations: Option<Vec<InvitationView>>,
    /// `https://tldw.example`: where links we hand out (invitations) point.
    pub site_origin: String,
    /// The language the org's summaries are written in; `None`: each
    /// video's own.
    #[serde(default)]
    pub summary_language: Option<crate::domain::SummaryLanguage>,
}
