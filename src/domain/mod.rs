//! Values parsed once at the edge: if one exists, it is valid.

pub mod account;
pub mod api_key;
pub mod api_reference;
pub mod billing;
pub mod email;
pub mod ids;
pub mod membership;
pub mod next_path;
pub mod org_name;
pub mod password;
pub mod plan;
pub mod role;
pub mod summary;
pub mod summary_language;
pub mod transcript_file;
pub mod usage;
pub mod video_id;

pub use account::{AccountStatus, LinkDelivery};
pub use api_key::{API_KEY_PREFIX, ApiKeyName, ApiKeyNameError, ApiKeyView, CreatedApiKey};
pub use billing::{
    BillingEventView, BillingOverview, CheckoutProgress, PaymentView, SubscriptionView,
};
pub use email::{Email, EmailError};
pub use ids::{AccountId, ApiKeyId, InvitationId, OrgId, UserId};
pub use membership::{InvitationPreview, InvitationView, MemberView, OrgPage, OrgSummary, Viewer};
pub use next_path::{NextPath, NextPathError};
pub use org_name::OrgName;
pub use password::{NewPassword, PasswordError};
pub use plan::{Plan, PlanCatalog, PlanId};
pub use role::{OrgRole, Permission};
pub use summary::{
    Dashboard, HistoryItem, KeyPoint, QuotaView, SummaryBody, SummaryStatus, SummaryView,
    format_dollars, format_timestamp, former_member_label,
};
pub use summary_language::{SummaryLanguage, SummaryLanguageError};
pub use usage::{
    CumulativeDay, DailyUsage, MemberUsage, MemberUsageLine, UsageDay, UsageNow, UsageOverview,
    UsageTotals, UsageWindow, UsageWindowError,
};
pub use video_id::{VideoId, VideoIdError};
