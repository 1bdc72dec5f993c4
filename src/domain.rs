//! Input becomes a domain type here, at the edge; code past the edge never
//! re-checks. Each type's `parse` says exactly what it accepts.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Why a piece of input was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: &'static str,
}

fn invalid(field: &'static str, reason: &'static str) -> InvalidInput {
    InvalidInput { field, reason }
}

fn printable(value: &str) -> bool {
    !value.chars().any(char::is_control)
}

/// A user name: 1 to 150 characters, no whitespace or control characters.
/// A new name ([`Username::parse_new`]) must also be free of every
/// character of the Unicode category "Other" (control and format
/// characters, private-use and unassigned code points), before and after
/// folding ([`username_key`]). Format characters are the invisible ones
/// (zero-width space and joiners, bidirectional overrides) that make one
/// name render as another.
///
/// The name is kept as given; the store compares names by their folded key,
/// and refuses a name that looks like another's ([`username_skeleton`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// A name as it is given to find a user (a login, a command naming a
    /// user): users stored before new names were held to the stricter rule
    /// can still be named, managed and logged in as.
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        if value.is_empty() {
            return Err(invalid("username", "must not be empty"));
        }
        if value.chars().count() > 150 {
            return Err(invalid("username", "must be at most 150 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "username",
                "must not contain whitespace or control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A name for a new user.
    pub fn parse_new(value: &str) -> Result<Self, InvalidInput> {
        let name = Self::parse(value)?;
        // Folding can bring out a space (NFKC of U+00A8 DIAERESIS begins
        // with one): the key is checked as well as the name.
        if value.chars().any(unfit_in_username)
            || username_key(value).chars().any(unfit_in_username)
        {
            return Err(invalid(
                "username",
                "must not contain whitespace, control or invisible formatting characters",
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn unfit_in_username(c: char) -> bool {
    c.is_whitespace() || c.general_category_group() == GeneralCategoryGroup::Other
}

/// The form of a user name that is unique: compatibility-normalized (NFKC,
/// Unicode UAX #15) and then lower-cased, so that `Alice`, `alice` and the
/// full-width `ａｌｉｃｅ` are one name, as Django normalizes user names. NFKC
/// again at the end, since lower-casing can leave a string that is not in
/// normal form.
pub fn username_key(username: &str) -> String {
    let compatible: String = username.nfkc().collect();
    compatible.to_lowercase().nfkc().collect()
}

/// The confusable skeleton (Unicode TR39 section 4) of a user name's key:
/// names that render alike, such as `admin` and `аdmin` with a Cyrillic
/// `а`, share it. The store keeps it unique, so the second is refused.
pub fn username_skeleton(username: &str) -> String {
    unicode_security::skeleton(&username_key(username)).collect()
}

/// A service a token is for: 1 to 200 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Audience(String);

impl Audience {
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        if value.trim().is_empty() {
            return Err(invalid("audience", "must not be empty"));
        }
        if value.len() > 200 {
            return Err(invalid("audience", "must be at most 200 bytes"));
        }
        if !printable(value) {
            return Err(invalid("audience", "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may do at a service, a free string such as `read`,
/// `billing:write` or `access:services!service=notebooks`: 1 to 200
/// characters, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        if value.is_empty() {
            return Err(invalid("scopes", "a scope must not be empty"));
        }
        if value.len() > 200 {
            return Err(invalid("scopes", "a scope must be at most 200 bytes"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "scopes",
                "a scope must not contain whitespace or control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An e-mail address, checked only for shape: one `@` with text on both
/// sides, at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        let shape_ok = value.len() <= 254
            && printable(value)
            && !value.contains(char::is_whitespace)
            && matches!(value.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if shape_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(invalid("email", "must be an e-mail address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest password accepted, in bytes, so that a huge one cannot be used to
/// burn hashing time.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password a new one may be.
pub const MIN_NEW_PASSWORD_CHARS: usize = 8;

/// A password offered at login: at most [`MAX_PASSWORD_BYTES`]. Never printed.
pub struct Password(SecretString);

impl Password {
    /// A password as offered at login. Length is not checked against the
    /// policy for new passwords, so that old passwords keep working.
    pub fn parse(value: String) -> Result<Self, InvalidInput> {
        if value.len() > MAX_PASSWORD_BYTES {
            return Err(invalid("password", "must be at most 1024 bytes"));
        }
        Ok(Self(SecretString::from(value)))
    }

    /// A password being set: also at least [`MIN_NEW_PASSWORD_CHARS`].
    pub fn parse_new(value: String) -> Result<Self, InvalidInput> {
        if value.chars().count() < MIN_NEW_PASSWORD_CHARS {
            return Err(invalid("password", "must be at least 8 characters"));
        }
        Self::parse(value)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b-c_d@example").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("with space").is_err());
        assert!(Username::parse("tab\there").is_err());
        assert!(Username::parse(&"x".repeat(151)).is_err());
        assert!(Username::parse(&"é".repeat(150)).is_ok());
        assert!(Username::parse("Zoë").is_ok());
        assert!(Username::parse("ユーザー").is_ok());
    }

    #[test]
    fn invisible_and_overriding_characters_are_refused_in_usernames() {
        for name in [
            "admin\u{200b}",
            "ad\u{200d}min",
            "\u{202e}nimda",
            "admin\u{2066}",
            "\u{feff}admin",
            "admin\u{e000}",
            "admin\u{ad}",
            // NFKC of U+00A8 begins with a space.
            "admin\u{a8}",
        ] {
            let error = Username::parse_new(name).unwrap_err();
            assert_eq!(error.field, "username", "{name:?}");
        }
        // A user stored before this rule can still be named.
        assert!(Username::parse("admin\u{200b}").is_ok());
    }

    #[test]
    fn the_username_key_folds_width_compatibility_forms_and_case() {
        assert_eq!(username_key("ａdmin"), "admin");
        assert_eq!(username_key("ＡＤＭＩＮ"), "admin");
        assert_eq!(username_key("Admin"), "admin");
        assert_eq!(username_key("ﬁona"), "fiona");
        // Composed and decomposed forms are one name.
        assert_eq!(username_key("Zoe\u{308}"), username_key("Zoë"));
        // A Cyrillic look-alike keeps its own key...
        assert_ne!(username_key("аdmin"), "admin");
    }

    #[test]
    fn look_alike_names_share_a_skeleton() {
        // ...and shares the skeleton of the Latin name.
        assert_eq!(username_skeleton("аdmin"), username_skeleton("admin"));
        assert_eq!(username_skeleton("ＡＤＭＩＮ"), username_skeleton("admin"));
        assert_eq!(username_skeleton("pаypаl"), username_skeleton("paypal"));
        assert_ne!(username_skeleton("alice"), username_skeleton("bob"));
    }

    #[test]
    fn scopes_allow_drf_sso_style_strings() {
        assert!(Scope::parse("access:services!service=notebooks").is_ok());
        assert!(Scope::parse("billing:write").is_ok());
        assert!(Scope::parse("two words").is_err());
        assert!(Scope::parse("").is_err());
    }

    #[test]
    fn audiences_are_checked() {
        assert!(Audience::parse("https://notebooks.example.com").is_ok());
        assert!(Audience::parse(" ").is_err());
        assert!(Audience::parse("a\u{0}b").is_err());
    }

    #[test]
    fn emails_are_checked_for_shape() {
        assert!(Email::parse("a@example.com").is_ok());
        assert!(Email::parse("a@b@c").is_err());
        assert!(Email::parse("@example.com").is_err());
        assert!(Email::parse("a@").is_err());
        assert!(Email::parse("no-at-sign").is_err());
    }

    proptest::proptest! {
        #[test]
        fn a_parsed_username_is_exactly_its_input(name in "\\PC{0,200}") {
            if let Ok(parsed) = Username::parse(&name) {
                proptest::prop_assert_eq!(parsed.as_str(), name.as_str());
                proptest::prop_assert!(!name.chars().any(char::is_whitespace));
                proptest::prop_assert!(name.chars().count() <= 150);
            }
        }

        #[test]
        fn the_key_of_a_parsed_username_is_its_own_key(name in "\\PC{1,40}") {
            if Username::parse_new(&name).is_ok() {
                let key = username_key(&name);
                proptest::prop_assert_eq!(username_key(&key), key.clone());
                proptest::prop_assert_eq!(username_skeleton(&key), username_skeleton(&name));
            }
        }

        #[test]
        fn parsers_never_panic(input in ".{0,300}") {
            let _ = Username::parse(&input);
            let _ = Username::parse_new(&input);
            let _ = Audience::parse(&input);
            let _ = Scope::parse(&input);
            let _ = Email::parse(&input);
            let _ = Password::parse(input);
        }
    }

    #[test]
    fn passwords_have_bounds_and_never_print() {
        assert!(Password::parse("x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert!(Password::parse("x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(Password::parse_new("short".into()).is_err());
        let password = Password::parse_new("correct horse".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
