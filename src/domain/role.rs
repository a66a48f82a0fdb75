//! Roles in an organization and the one permission matrix.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Member,
    Admin,
    Owner,
}

/// Everything a member can be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    Summarize,
    ViewHistory,
    ManageMembers,
    ManageInvitations,
    ManageBilling,
    RenameOrg,
    DeleteOrg,
    TransferOwnership,
    /// Create, list and revoke the org's API keys.
    ManageApiKeys,
    /// Download everything the org has: its history and summaries.
    ExportData,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::Summarize,
        Permission::ViewHistory,
        Permission::ManageMembers,
        Permission::ManageInvitations,
        Permission::ManageBilling,
        Permission::RenameOrg,
        Permission::DeleteOrg,
        Permission::TransferOwnership,
        Permission::ManageApiKeys,
        Permission::ExportData,
    ];
}

impl OrgRole {
    pub const ALL: [OrgRole; 3] = [OrgRole::Owner, OrgRole::Admin, OrgRole::Member];

    /// The matrix: members summarize and read history; admins also run the
    /// org's people, billing and API keys; owners also delete it and hand it over.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            Summarize | ViewHistory => true,
            ManageMembers | ManageInvitations | ManageBilling | RenameOrg | ManageApiKeys => {
                self >= OrgRole::Admin
            }
            DeleteOrg | TransferOwnership | ExportData => self == OrgRole::Owner,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OrgRole::Owner => "Owner",
            OrgRole::Admin => "Admin",
            OrgRole::Member => "Member",
        }
    }

    pub fn parse(value: &str) -> Option<OrgRole> {
        OrgRole::ALL
            .into_iter()
            .find(|r| r.as_str() == value.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::{OrgRole::*, Permission::*, *};

    #[test]
    fn the_matrix() {
        let expected = [
            (Summarize, [true, true, true]),
            (ViewHistory, [true, true, true]),
            (ManageMembers, [true, true, false]),
            (ManageInvitations, [true, true, false]),
            (ManageBilling, [true, true, false]),
            (RenameOrg, [true, true, false]),
            (DeleteOrg, [true, false, false]),
            (TransferOwnership, [true, false, false]),
            (ManageApiKeys, [true, true, false]),
            (ExportData, [true, false, false]),
        ];
        assert_eq!(expected.len(), Permission::ALL.len());
        for (permission, by_role) in expected {
            for (role, allowed) in [Owner, Admin, Member].into_iter().zip(by_role) {
                assert_eq!(role.allows(permission), allowed, "{role:?} {permission:?}");
            }
        }
    }

    #[test]
    fn parses_its_own_names() {
        for role in OrgRole::ALL {
            assert_eq!(OrgRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(OrgRole::parse("superuser"), None);
    }
}
