//! An organization's display name and its URL slug.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgName(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Give the organization a name of 1 to 100 characters.")]
pub struct OrgNameError;

impl OrgName {
    pub fn parse(input: &str) -> Result<OrgName, OrgNameError> {
        let name = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if (1..=100).contains(&name.chars().count()) {
            Ok(OrgName(name))
        } else {
            Err(OrgNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL-safe base for the slug (`Acme Inc.` → `acme-inc`); uniqueness
    /// suffixes are added by the service.
    pub fn slug_base(&self) -> String {
        let mut slug = String::new();
        for c in self.0.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug: String = slug.trim_matches('-').chars().take(40).collect();
        let slug = slug.trim_end_matches('-').to_owned();
        if slug.is_empty() {
            "org".to_owned()
        } else {
            slug
        }
    }
}

impl fmt::Display for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            OrgName::parse("  Acme   Inc. ").unwrap().as_str(),
            "Acme Inc."
        );
        assert!(OrgName::parse("   ").is_err());
        assert!(OrgName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn slugs_are_url_safe() {
        let slug = |n: &str| OrgName::parse(n).unwrap().slug_base();
        assert_eq!(slug("Acme Inc."), "acme-inc");
        assert_eq!(slug("Ünïcode Ltd"), "n-code-ltd");
        assert_eq!(slug("!!!"), "org");
        assert!(slug(&"a b ".repeat(25)).len() <= 40);
        assert!(!slug(&"a b ".repeat(25)).ends_with('-'));
    }
}
