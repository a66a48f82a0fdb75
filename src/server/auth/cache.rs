//! Who a credential belongs to, remembered for a few seconds in this
//! process, so a signed-in request does not pay a database round trip (or
//! three, for a Clerk token) before its real work.
//!
//! What is cached, at most [`CAPACITY`] entries per map:
//! - for [`TTL`]: a built-in session token's hash → its account and active
//!   org; an account → the orgs it belongs to, with its role in each;
//! - for [`CLERK_TTL`]: a verified Clerk token's (user, org, role) → the
//!   account it was linked to and its membership of the token's org. The
//!   token itself is Clerk's word on that membership and role (a token
//!   without the org, or with another role, is another key and is linked
//!   afresh at once), so this only spares re-provisioning rows that exist.
//!
//! Changes made by this process (sign-out, role change, removal, rename,
//! new or deleted orgs) forget the affected entries at once. Changes made by
//! another process reach this one when the entry expires: a removed member
//! or a revoked session of built-in accounts keeps access for at most
//! [`TTL`]. A slug that is not in the cached list is looked up again before
//! answering 404, so a new membership is never hidden.

use moka::sync::Cache;
use std::{sync::Arc, time::Duration};

use super::{identity::CurrentAccount, session::SessionRecord};
use crate::domain::{AccountId, OrgSummary};

/// How long another process's change can go unseen here.
pub const TTL: Duration = Duration::from_secs(5);
/// How long a Clerk token's link to our rows is remembered.
pub const CLERK_TTL: Duration = Duration::from_secs(60);
/// Entries per map; the least recently used go first.
pub const CAPACITY: u64 = 20_000;

/// (Clerk user id, Clerk org id, Clerk role) of a verified token.
pub type ClerkKey = (String, Option<String>, Option<String>);

#[derive(Clone)]
pub struct IdentityCache {
    sessions: Cache<Vec<u8>, SessionRecord>,
    clerk: Cache<ClerkKey, CurrentAccount>,
    memberships: Cache<AccountId, Arc<Vec<OrgSummary>>>,
}

impl Default for IdentityCache {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentityCache {
    pub fn new() -> IdentityCache {
        fn map<K, V>(ttl: Duration) -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build()
        }
        IdentityCache {
            sessions: map(TTL),
            clerk: map(CLERK_TTL),
            memberships: map(TTL),
        }
    }

    pub fn session(&self, token_hash: &[u8]) -> Option<SessionRecord> {
        self.sessions.get(token_hash)
    }

    pub fn remember_session(&self, record: &SessionRecord) {
        self.sessions
            .insert(record.token_hash.clone(), record.clone());
    }

    pub fn forget_session(&self, token_hash: &[u8]) {
        self.sessions.invalidate(token_hash);
    }

    /// "Sign out everywhere", or the active org changed: sessions are cheap
    /// to look up again, so all of them go.
    pub fn forget_sessions(&self) {
        self.sessions.invalidate_all();
    }

    /// The account a Clerk token links to (its session handle carries the
    /// membership of the token's org).
    pub fn clerk_account(&self, key: &ClerkKey) -> Option<CurrentAccount> {
        self.clerk.get(key)
    }

    pub fn remember_clerk_account(&self, key: ClerkKey, account: &CurrentAccount) {
        self.clerk.insert(key, account.clone());
    }

    /// This account's list is stale (it joined an org or its role changed).
    pub fn forget_account(&self, account: AccountId) {
        self.memberships.invalidate(&account);
    }

    pub fn memberships(&self, account: AccountId) -> Option<Arc<Vec<OrgSummary>>> {
        self.memberships.get(&account)
    }

    pub fn remember_memberships(&self, account: AccountId, orgs: Vec<OrgSummary>) {
        self.memberships.insert(account, Arc::new(orgs));
    }

    /// Someone's role or membership changed, or an org was renamed, made or
    /// deleted. Such changes are rare, so everything membership-shaped is
    /// dropped rather than tracking whose entries it touched.
    pub fn forget_memberships(&self) {
        self.memberships.invalidate_all();
        self.clerk.invalidate_all();
    }
}
