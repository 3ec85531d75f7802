//! Roles: the names under which resources are allocated and reserved.
//!
//! Roles form a tree written with slashes: `eng/prod` is a child of `eng`.
//! The special role `*` means "unreserved". [`validate`] applies exactly the
//! rules of Mesos 1.11, and the helpers answer the hierarchy questions the
//! allocator asks (is `eng/prod` inside `eng`?).

use crate::error::{ResourcesError, Result};

/// The role of unreserved resources.
pub const UNRESERVED: &str = "*";

/// Characters no role component may contain: tab, line feed, vertical tab,
/// form feed, carriage return, space and DEL.
const INVALID_CHARACTERS: &[char] = &['\t', '\n', '\u{0B}', '\u{0C}', '\r', ' ', '\u{7F}'];

/// Checks a role name against Mesos's rules.
pub fn validate(role: &str) -> Result<()> {
    let invalid = |reason: &str| ResourcesError::InvalidRole {
        role: role.to_string(),
        reason: reason.to_string(),
    };
    if role == UNRESERVED {
        return Ok(());
    }
    if role.starts_with('/') {
        return Err(invalid("cannot start with a slash"));
    }
    if role.ends_with('/') {
        return Err(invalid("cannot end with a slash"));
    }
    if role.contains("//") {
        return Err(invalid("cannot contain two adjacent slashes"));
    }
    if role.is_empty() {
        return Err(invalid("role names cannot be the empty string"));
    }
    for component in role.split('/') {
        match component {
            "." => return Err(invalid("cannot include '.' as a component")),
            ".." => return Err(invalid("cannot include '..' as a component")),
            "*" => return Err(invalid("cannot include '*' as a component")),
            c if c.starts_with('-') => {
                return Err(invalid(&format!("component '{c}' starts with a dash")))
            }
            c if c.contains(INVALID_CHARACTERS) => {
                return Err(invalid(&format!(
                    "component '{c}' contains whitespace or a control character"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `child` lies strictly below `parent` in the role tree
/// (`eng/prod` is a strict sub-role of `eng`, `eng` is not of itself).
pub fn is_strict_subrole_of(child: &str, parent: &str) -> bool {
    child.len() > parent.len() + 1
        && child.starts_with(parent)
        && child.as_bytes()[parent.len()] == b'/'
}

/// The ancestors of a role, nearest first: `a/b/c` gives `a/b`, then `a`.
pub fn ancestors(role: &str) -> impl Iterator<Item = &str> {
    let mut current = role;
    std::iter::from_fn(move || {
        let cut = current.rfind('/')?;
        current = &current[..cut];
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mesos_valid_roles() {
        for role in ["*", "eng", "eng/prod", "a.b", "x-y", "role_1", "a/b/c"] {
            validate(role).unwrap();
        }
    }

    #[test]
    fn rejects_mesos_invalid_roles() {
        for role in [
            "", "/eng", "eng/", "a//b", ".", "a/..", "a/*", "-a", "a/-b", "a b", "a\tb", "a\u{7f}",
        ] {
            assert!(validate(role).is_err(), "{role:?} should be invalid");
        }
    }

    #[test]
    fn hierarchy() {
        assert!(is_strict_subrole_of("eng/prod", "eng"));
        assert!(!is_strict_subrole_of("eng", "eng"));
        assert!(!is_strict_subrole_of("engine/x", "eng/"));
        assert!(!is_strict_subrole_of("engineering", "eng"));
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a/b", "a"]);
    }
}
