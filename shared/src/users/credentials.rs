//! The sign-up rules, as types that can only hold valid values.

use crate::ids::RegionId;
use crate::validation::{ValidationError, refuse_control_chars};

/// 3–30 characters of `[a-z0-9_]`, stored lower-case so uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// The rule [`Username::parse`] applies, as the ECMA-262 pattern the OpenAPI document states.
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9_]{3,30}$";

impl Username {
    /// Accepts any case and keeps the lower-case form: `Alice` and `alice` are one account.
    /// The name is checked as sent (no trimming), so that [`USERNAME_PATTERN`] states the rule exactly.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !(3..=30).contains(&raw.len()) || !valid_chars {
            return Err(ValidationError::new(
                "username",
                "invalid_username",
                "username must be 3 to 30 characters of a-z, 0-9 and _",
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks the shape only; delivery proves the rest.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        refuse_control_chars("email", raw, false)?;
        let email = raw.trim();
        let invalid =
            || ValidationError::new("email", "invalid_email", "email must be an address like name@example.com");
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty() && !local.contains(char::is_whitespace) && !local.contains('@');
        if !domain_ok || !local_ok || email.len() > 254 {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address with its domain lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At least 10 characters; at most 256 so that hashing cost stays bounded.
pub struct Password(String);

impl Password {
    /// Checks the length rule.
    pub fn parse(raw: String) -> Result<Self, ValidationError> {
        let chars = raw.chars().count();
        if chars < 10 {
            return Err(ValidationError::new(
                "password",
                "password_too_short",
                "password must be at least 10 characters",
            ));
        }
        if chars > 256 {
            return Err(ValidationError::new(
                "password",
                "password_too_long",
                "password must be at most 256 characters",
            ));
        }
        Ok(Self(raw))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A validated sign-up.
#[derive(Debug)]
pub struct NewUser {
    /// Normalised username.
    pub username: Username,
    /// Contact address.
    pub email: Email,
    /// Plain password, hashed before storage.
    pub password: Password,
    /// Optional home region.
    pub region_id: Option<RegionId>,
}

impl NewUser {
    /// Validates every field, reporting the first rule broken.
    pub fn parse(
        username: &str,
        email: &str,
        password: String,
        region_id: Option<RegionId>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            username: Username::parse(username)?,
            email: Email::parse(email)?,
            password: Password::parse(password)?,
            region_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_restricted() {
        assert_eq!(Username::parse("Alice_99").unwrap().as_str(), "alice_99");
        let pattern = regex::Regex::new(USERNAME_PATTERN).unwrap();
        for bad in ["ab", "has space", " padded", "dash-name", "ünï", "\u{212a}elvin", &"x".repeat(31), ""] {
            assert_eq!(Username::parse(bad).unwrap_err().code, "invalid_username", "{bad:?}");
            assert!(!pattern.is_match(bad), "{bad:?}");
        }
        assert!(pattern.is_match("Alice_99"));
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(Email::parse("Kim@Example.COM").unwrap().as_str(), "Kim@example.com");
        for bad in ["kim", "kim@", "@example.com", "kim@example", "kim@.com", "k m@example.com", "a@b@c.com"] {
            assert_eq!(Email::parse(bad).unwrap_err().code, "invalid_email", "{bad:?}");
        }
        assert_eq!(Email::parse("k\0m@example.com").unwrap_err().code, "control_character");
    }

    #[test]
    fn passwords_need_ten_characters() {
        assert_eq!(Password::parse("short".into()).unwrap_err().code, "password_too_short");
        assert!(Password::parse("ten chars!".into()).is_ok());
        assert_eq!(Password::parse("x".repeat(257)).unwrap_err().code, "password_too_long");
    }
}
