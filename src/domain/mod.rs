//! Values parsed once at the edge: if one exists, it is valid.

pub mod ids;
pub mod plan;
pub mod video_id;

pub use ids::{OrgId, UserId};
pub use plan::{Plan, PlanId};
pub use video_id::{VideoId, VideoIdError};
