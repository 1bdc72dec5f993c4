//! The README's configuration reference cannot drift from the code: every
//! setting declared in the settings structs is in the table, and every key
//! in the table is a setting.

use std::collections::BTreeSet;
use std::path::Path;

/// The settings structs, where they are declared, and their key prefix.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("src/configuration.rs", "Settings", ""),
    ("src/configuration.rs", "KeySettings", "keys."),
    ("src/configuration.rs", "TokenSettings", "tokens."),
    ("src/configuration.rs", "HashingSettings", "hashing."),
    ("src/configuration.rs", "ThrottleSettings", "throttle."),
    ("src/configuration.rs", "HttpSettings", "http."),
    ("src/configuration.rs", "OAuthSettings", "oauth."),
    ("src/configuration.rs", "LoginSettings", "login."),
];

/// Fields that are sections of their own, documented key by key.
const NESTED: &[&str] = &[
    "keys", "tokens", "hashing", "throttle", "http", "oauth", "login",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The `pub name:` fields of `pub struct NAME { … }` in `source`.
fn fields(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("struct {name} not found"));
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|rest| {
            rest.split_once(':')
                .map(|(field, _)| field.trim().to_owned())
        })
        .filter(|field| !field.starts_with("struct"))
        .collect()
}

#[test]
fn every_setting_is_in_the_readme_table_and_nothing_else_is() {
    let mut declared = BTreeSet::new();
    for (path, name, prefix) in SECTIONS {
        for field in fields(&read(path), name) {
            if prefix.is_empty() && NESTED.contains(&field.as_str()) {
                continue;
            }
            declared.insert(format!("{prefix}{field}"));
        }
    }
    let readme = read("README.md");
    let section = &readme[readme
        .find("## Configuration")
        .expect("a Configuration section")..];
    let documented: BTreeSet<String> = section
        .lines()
        .take_while(|line| !line.starts_with("An example"))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_owned()))
        .collect();

    let missing: Vec<_> = declared.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "settings missing from the README: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "README rows that are no setting: {unknown:?}"
    );
}
