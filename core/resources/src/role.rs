//! Roles: the names under which resources are allocated and reserved.
//!
//! Roles form a tree written with slashes: `eng/prod` is a child of `eng`,
//! and `eng` is an ancestor of `eng/prod/web`. The special role `*` means
//! "unreserved" and is the only role that may be a lone `*`.
//!
//! [`validate`] applies exactly the rules of Mesos 1.11 (`roles.cpp`): no
//! empty name, no leading, trailing or doubled slash, no `.`, `..` or `*`
//! component, no component starting with `-`, and no whitespace or DEL in a
//! component. The other functions answer the hierarchy questions the
//! allocator and the reservation code ask (is `eng/prod` inside `eng`? what
//! are the ancestors of `a/b/c`?). They work on the text only and assume
//! valid role names.

use crate::error::{ResourcesError, Result};

/// The role of unreserved resources, and the default role of frameworks.
pub const UNRESERVED: &str = "*";

/// Characters no role component may contain: tab, line feed, vertical tab,
/// form feed, carriage return, space and DEL.
const INVALID_CHARACTERS: &[char] = &['\t', '\n', '\u{0B}', '\u{0C}', '\r', ' ', '\u{7F}'];

/// Checks a role name against Mesos's rules.
pub fn validate(role: &str) -> Result<()> {
    let invalid = |reason: String| ResourcesError::InvalidRole {
        role: role.to_string(),
        reason,
    };
    if role == UNRESERVED {
        return Ok(());
    }
    if role.starts_with('/') {
        return Err(invalid("a role cannot start with a slash".into()));
    }
    if role.ends_with('/') {
        return Err(invalid("a role cannot end with a slash".into()));
    }
    if role.contains("//") {
        return Err(invalid("a role cannot contain two adjacent slashes".into()));
    }
    if role.is_empty() {
        return Err(invalid("role names cannot be the empty string".into()));
    }
    for component in role.split('/') {
        match component {
            "." => return Err(invalid("a role cannot include '.' as a component".into())),
            ".." => return Err(invalid("a role cannot include '..' as a component".into())),
            "*" => return Err(invalid("a role cannot include '*' as a component".into())),
            c if c.starts_with('-') => {
                return Err(invalid(format!(
                    "role component '{c}' is invalid because it starts with a dash"
                )))
            }
            c if c.contains(INVALID_CHARACTERS) => {
                return Err(invalid(format!(
                    "role component '{c}' is invalid because it contains whitespace \
                     or a control character"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses a comma-separated list of roles (as in `--roles`), skipping empty
/// entries, and validates each.
pub fn parse_list(text: &str) -> Result<Vec<String>> {
    let roles: Vec<String> = text
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    for role in &roles {
        validate(role)?;
    }
    Ok(roles)
}

/// Whether `child` lies strictly below `parent` in the role tree
/// (`eng/prod` is a strict sub-role of `eng`; `eng` is not one of itself,
/// and `engineering` is not one of `eng`).
pub fn is_strict_subrole_of(child: &str, parent: &str) -> bool {
    child.len() > parent.len()
        && child.as_bytes()[parent.len()] == b'/'
        && child.starts_with(parent)
}

/// Whether `role` is `root` or lies below it: the role subtree rooted at
/// `root`, as quota and the `/roles` endpoint count it.
pub fn is_in_subtree(role: &str, root: &str) -> bool {
    role == root || is_strict_subrole_of(role, root)
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

/// The top-level role of a role path: `a/b/c` gives `a`.
pub fn root(role: &str) -> &str {
    role.split('/').next().unwrap_or(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mesos_valid_roles() {
        for role in [
            "*", "eng", "eng/prod", "a.b", "x-y", "role_1", "a/b/c", "a*b", "..a", "a/.b",
        ] {
            validate(role).unwrap();
        }
    }

    #[test]
    fn rejects_mesos_invalid_roles() {
        for role in [
            "", "/eng", "eng/", "a//b", ".", "..", "a/..", "a/./b", "a/*", "*/a", "-a", "a/-b",
            "a b", "a\tb", "a\nb", "a\u{7f}", "/",
        ] {
            assert!(validate(role).is_err(), "{role:?} should be invalid");
        }
        let error = validate("a/-b").unwrap_err().to_string();
        assert!(error.contains("'-b'") && error.contains("dash"), "{error}");
    }

    #[test]
    fn parses_role_lists() {
        assert_eq!(parse_list("a,,b/c").unwrap(), vec!["a", "b/c"]);
        assert!(parse_list("a,b c").is_err());
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn hierarchy() {
        assert!(is_strict_subrole_of("eng/prod", "eng"));
        assert!(is_strict_subrole_of("eng/prod/web", "eng"));
        assert!(!is_strict_subrole_of("eng", "eng"));
        assert!(!is_strict_subrole_of("eng", "eng/prod"));
        assert!(!is_strict_subrole_of("engineering", "eng"));
        assert!(!is_strict_subrole_of("engine/x", "eng/"));
        assert!(is_in_subtree("eng", "eng") && is_in_subtree("eng/a", "eng"));
        assert!(!is_in_subtree("ops", "eng"));
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a/b", "a"]);
        assert_eq!(ancestors("a").count(), 0);
        assert_eq!(root("a/b/c"), "a");
        assert_eq!(root("a"), "a");
    }
}
