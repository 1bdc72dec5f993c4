//! The compose file's `notebooks` service, against the service's own
//! settings: every variable it sets is one the service reads, and together
//! with the image's they parse.

use std::collections::HashMap;

use tessera_example_notebooks::configuration::{ENVIRONMENT, Settings};
use yaml_rust2::{Yaml, YamlLoader};

fn repository_file(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap()
}

#[test]
fn the_compose_service_sets_only_settings_the_service_reads() {
    let compose = YamlLoader::load_from_str(&repository_file("docker-compose.yml")).unwrap();
    let environment = &compose[0]["services"]["notebooks"]["environment"];
    let Yaml::Hash(entries) = environment else {
        panic!("the notebooks service has an environment map: {environment:?}");
    };
    let mut env: HashMap<String, String> = entries
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                other => panic!("{name:?}: {other:?}"),
            };
            (name.as_str().unwrap().to_owned(), value)
        })
        .collect();
    for name in env.keys() {
        assert!(
            ENVIRONMENT.contains(&name.as_str()),
            "the compose file sets {name}, which the service does not read"
        );
    }
    // The image's own settings (its `ENV` line), which compose adds to.
    let dockerfile = repository_file("Dockerfile");
    let stage = dockerfile
        .split("AS notebooks")
        .nth(1)
        .expect("a notebooks stage");
    let line = stage
        .lines()
        .find(|line| line.starts_with("ENV "))
        .expect("the stage sets its environment");
    for pair in line.trim_start_matches("ENV ").split_whitespace() {
        let (name, value) = pair.split_once('=').unwrap();
        assert!(ENVIRONMENT.contains(&name), "the image sets {name}");
        env.entry(name.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    let settings = Settings::parse(|name| env.get(name).cloned(), Vec::new()).unwrap();
    assert_eq!(settings.client_id.as_deref(), Some("notebooks"));
    assert_eq!(settings.issuer, "http://localhost:8080");
    assert!(
        settings.feed_url().unwrap().is_some(),
        "the revocation feed follows the JWKS URL inside the network"
    );
}
