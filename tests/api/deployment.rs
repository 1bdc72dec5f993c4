//! The container and Kubernetes files held to the binary they run: the
//! Dockerfile's targets and dependency layer, docker-compose.yml and
//! deploy/kubernetes/ name only build targets, files, settings,
//! subcommands, ports and routes that exist. No container engine is needed:
//! each file is read as the engine would read it, and what it names is
//! looked up in the repository, in Cargo, in Tessera's command line or in
//! the running service.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

use crate::helpers::{Backend, spawn_app_with};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Every document of a YAML file.
fn yaml(path: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(n) => n.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

fn list(value: &Yaml) -> &[Yaml] {
    value.as_vec().map_or(&[], Vec::as_slice)
}

fn map(value: &Yaml) -> Vec<(String, &Yaml)> {
    value
        .as_hash()
        .map(|hash| hash.iter().map(|(k, v)| (text(k), v)).collect())
        .unwrap_or_default()
}

/// The port of a `host:port` bind address.
fn port_of(bind: &str) -> u16 {
    bind.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{bind:?} names no port"))
}

/// The Dockerfile's instructions, continuation lines joined, by stage.
struct Dockerfile {
    /// (stage name, keyword, arguments), in order.
    instructions: Vec<(String, String, String)>,
}

impl Dockerfile {
    fn read() -> Self {
        let mut instructions = Vec::new();
        let mut stage = String::new();
        let mut pending = String::new();
        for line in read("Dockerfile").lines() {
            let line = line.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let whole = std::mem::take(&mut pending);
            let (keyword, args) = whole.split_once(' ').unwrap_or((&whole, ""));
            let keyword = keyword.to_ascii_uppercase();
            let args = args.trim().to_owned();
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                stage = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => (*name).to_owned(),
                    _ => String::new(),
                };
            }
            instructions.push((stage.clone(), keyword, args));
        }
        Self { instructions }
    }

    fn stages(&self) -> BTreeSet<String> {
        self.instructions
            .iter()
            .filter(|(_, keyword, _)| keyword == "FROM")
            .map(|(stage, _, _)| stage.clone())
            .collect()
    }

    fn of_stage<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.instructions
            .iter()
            .filter(move |(stage, _, _)| stage == name)
            .map(|(_, keyword, args)| (keyword.as_str(), args.as_str()))
    }

    /// `ENV` of a stage, in either form (`A=1 B=2` or `A 1`).
    fn env(&self, stage: &str) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        for (keyword, args) in self.of_stage(stage) {
            if keyword != "ENV" {
                continue;
            }
            if args.contains('=') {
                for pair in args.split_whitespace() {
                    let (name, value) = pair.split_once('=').expect("ENV NAME=value");
                    vars.push((name.to_owned(), value.trim_matches('"').to_owned()));
                }
            } else {
                let (name, value) = args.split_once(' ').expect("ENV NAME value");
                vars.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        vars
    }
}

/// The arguments of each `cargo build` in a shell command: package,
/// binaries and examples.
#[derive(Debug, Default, PartialEq, Eq)]
struct CargoBuild {
    package: String,
    bins: Vec<String>,
    examples: Vec<String>,
    profile: String,
}

fn cargo_builds(command: &str) -> Vec<CargoBuild> {
    command
        .split("&&")
        .filter_map(|part| part.trim().strip_prefix("cargo build"))
        .map(|args| {
            let mut build = CargoBuild::default();
            let mut words = args.split_whitespace();
            while let Some(word) = words.next() {
                let mut value = || {
                    words
                        .next()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned()
                };
                match word {
                    "-p" | "--package" => build.package = value(),
                    "--bin" => build.bins.push(value()),
                    "--example" => build.examples.push(value()),
                    "--profile" => build.profile = value(),
                    "--release" => build.profile = "release".into(),
                    _ => {}
                }
            }
            build
        })
        .collect()
}

/// The default of `ARG name=default` in a stage.
fn arg_default(dockerfile: &Dockerfile, stage: &str, name: &str) -> Option<String> {
    dockerfile
        .of_stage(stage)
        .find_map(|(keyword, args)| match keyword {
            "ARG" => args.strip_prefix(&format!("{name}=")).map(str::to_owned),
            _ => None,
        })
}

/// Runs the build stage's steps up to its first `cargo build` as Docker
/// would, in a scratch directory: its `COPY`s (which must name files of the
/// repository) and its other `RUN`s, with its `ARG`s. Returns the directory
/// and the first `cargo build` command.
fn dependency_layer(dockerfile: &Dockerfile) -> (tempfile::TempDir, String) {
    let scratch = tempfile::tempdir().unwrap();
    let mut workdir = scratch.path().to_path_buf();
    let mut args = Vec::new();
    for (keyword, line) in dockerfile.of_stage("build") {
        match keyword {
            "ARG" => {
                let (name, value) = line.split_once('=').expect("ARG NAME=default");
                args.push((name.to_owned(), value.to_owned()));
            }
            "WORKDIR" => {
                workdir = scratch.path().join(line.trim_start_matches('/'));
                std::fs::create_dir_all(&workdir).unwrap();
            }
            "COPY" => {
                let words: Vec<&str> = line.split_whitespace().collect();
                let (target, sources) = words.split_last().expect("COPY SRC… DEST");
                assert!(
                    !sources.contains(&"."),
                    "the build stage copies the whole tree before its first cargo build, \
                     so the dependency layer is rebuilt at every change"
                );
                let target = workdir.join(target);
                for source in sources {
                    let from = repo().join(source);
                    assert!(
                        from.is_file(),
                        "the Dockerfile copies {source}, which is missing"
                    );
                    let to = if target.to_string_lossy().ends_with('/') {
                        target.join(from.file_name().unwrap())
                    } else {
                        target.clone()
                    };
                    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                    std::fs::copy(&from, &to).unwrap();
                }
            }
            "RUN" if line.contains("cargo build") => {
                return (scratch, line.to_owned());
            }
            "RUN" => {
                let status = Command::new("sh")
                    .args(["-ec", line])
                    .current_dir(&workdir)
                    .envs(args.iter().map(|(k, v)| (k, v)))
                    .status()
                    .expect("run sh");
                assert!(status.success(), "the Dockerfile's `RUN {line}` fails");
            }
            _ => {}
        }
    }
    panic!("the build stage runs no cargo build");
}

/// `cargo metadata` of a directory, whose manifests must match the lock
/// file; for this platform, whose packages Cargo holds already.
fn cargo_metadata(dir: &Path) -> serde_json::Value {
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(dir)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo cannot read the workspace of the dependency layer:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Whether `package` (a workspace member) has a target of `kind` named `name`.
fn has_target(metadata: &serde_json::Value, package: &str, kind: &str, name: &str) -> bool {
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == package)
        .flat_map(|p| p["targets"].as_array().unwrap())
        .any(|t| t["name"] == name && t["kind"].as_array().unwrap().iter().any(|k| k == kind))
}

#[test]
fn the_dependency_layer_builds_from_manifests_and_stub_sources_alone() {
    let dockerfile = Dockerfile::read();
    let (scratch, first_build) = dependency_layer(&dockerfile);
    let workspace = scratch.path().join("src");

    let stubbed = cargo_metadata(&workspace);

    let real = cargo_metadata(repo());
    let members = |metadata: &serde_json::Value| -> BTreeSet<String> {
        metadata["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                let id = id.as_str().unwrap();
                metadata["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["id"] == id)
                    .unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(members(&stubbed), members(&real));
    // Cargo reads a declared target's file only to build it: each must
    // have its stub.
    let ids = stubbed["workspace_members"].as_array().unwrap();
    for package in stubbed["packages"].as_array().unwrap() {
        if !ids.contains(&package["id"]) {
            continue;
        }
        for target in package["targets"].as_array().unwrap() {
            let path = Path::new(target["src_path"].as_str().unwrap());
            assert!(
                path.is_file(),
                "the dependency layer has no stub for {} target {} ({})",
                package["name"],
                target["name"],
                path.display()
            );
        }
    }
    let final_builds: Vec<CargoBuild> = dockerfile
        .of_stage("build")
        .filter(|(keyword, args)| *keyword == "RUN" && args.contains("cargo build"))
        .skip(1)
        .flat_map(|(_, args)| cargo_builds(args))
        .collect();
    let dependency_builds = cargo_builds(&first_build);
    assert_eq!(
        dependency_builds, final_builds,
        "the dependency layer builds what the final build does"
    );
    for build in &dependency_builds {
        for bin in &build.bins {
            assert!(
                has_target(&stubbed, &build.package, "bin", bin),
                "{build:?}"
            );
        }
        for example in &build.examples {
            assert!(
                has_target(&stubbed, &build.package, "example", example),
                "{build:?}"
            );
        }
    }
    let profile = arg_default(&dockerfile, "build", "PROFILE").expect("ARG PROFILE=…");
    for build in &dependency_builds {
        assert_eq!(
            build.profile, "$PROFILE",
            "one profile for every build: {build:?}"
        );
    }
    let manifest = read("Cargo.toml");
    assert!(
        profile == "release" || manifest.contains(&format!("[profile.{profile}]")),
        "the Dockerfile's profile {profile} is not defined in Cargo.toml"
    );
    // The images take the binaries that the build stage builds.
    let built: Vec<&String> = dependency_builds
        .iter()
        .flat_map(|b| b.bins.iter().chain(&b.examples))
        .collect();
    for (_, keyword, args) in &dockerfile.instructions {
        if keyword == "COPY"
            && let Some(rest) = args.strip_prefix("--from=build ")
        {
            let source = rest.split_whitespace().next().unwrap();
            let name = source.rsplit('/').next().unwrap().to_owned();
            assert!(built.contains(&&name), "COPY {args}: {name} is not built");
        }
    }
}

/// What the command line makes of the settings that `env` and `config`
/// give, as `tessera clients list` on a scratch SQLite database: it loads
/// and checks every setting and the login page's clients, and warns about
/// each `TESSERA_` variable that is not a setting. The database and the
/// key directory are replaced by scratch ones.
fn assert_settings_load(what: &str, env: &[(String, String)], config: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(["clients", "list"])
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(config) = config {
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, config).unwrap();
        command.env("TESSERA_CONFIG", &path);
    }
    let output = command
        .env("DATABASE_URL", "sqlite://scratch.db")
        .env("TESSERA_KEYS__DIR", dir.path().join("keys"))
        .output()
        .expect("run tessera");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what}: {stderr}");
    assert!(
        !stderr.contains("not a Tessera setting"),
        "{what}: {stderr}"
    );
}

/// The `KEY=value` lines of an env file.
fn env_file(path: &str) -> Vec<(String, String)> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Compose's `${NAME}`, `${NAME:?message}` and `${NAME:-default}` with the
/// values of `vars`; a name without a value is an error.
fn interpolate(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let inner = &rest[start + 2..end];
        let name = inner.split([':', '-', '?']).next().unwrap();
        let value = vars.get(name).cloned().or_else(|| {
            inner
                .split_once(":-")
                .map(|(_, default)| default.to_owned())
        });
        out.push_str(
            &value
                .unwrap_or_else(|| panic!("{name} is set neither in .env.example nor by default")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A file the compose file names: a path of the repository, or `.env`,
/// which is never committed but ignored by git and shown by `.env.example`.
fn assert_compose_file_exists(path: &str) {
    let path = path.trim_start_matches("./");
    if path == ".env" {
        assert!(
            repo().join(".env.example").is_file(),
            ".env.example is missing"
        );
        assert!(
            read(".gitignore")
                .lines()
                .any(|l| l == "/.env" || l == ".env"),
            ".env is not ignored by git"
        );
        return;
    }
    assert!(
        repo().join(path).exists(),
        "docker-compose.yml names {path}, which is missing"
    );
}

#[test]
fn compose_names_only_targets_files_and_settings_that_exist() {
    let compose = &yaml("docker-compose.yml")[0];
    let stages = Dockerfile::read().stages();
    let dotenv: BTreeMap<String, String> = env_file(".env.example").into_iter().collect();
    let services = map(&compose["services"]);
    let names: BTreeSet<&str> = services.iter().map(|(name, _)| name.as_str()).collect();
    let volumes: BTreeSet<String> = map(&compose["volumes"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut checked_tessera = false;

    for (name, service) in &services {
        let build = &service["build"];
        if !build.is_badvalue() {
            assert_eq!(text(&build["context"]), ".", "{name}");
            let target = text(&build["target"]);
            assert!(
                stages.contains(&target),
                "{name}: no Dockerfile stage {target}"
            );
        }
        for (dependency, _) in map(&service["depends_on"]) {
            assert!(
                names.contains(dependency.as_str()),
                "{name} depends on {dependency}"
            );
        }
        if let Some(shared) = service["network_mode"]
            .as_str()
            .and_then(|m| m.strip_prefix("service:"))
        {
            assert!(
                names.contains(shared),
                "{name} shares the network of {shared}"
            );
        }
        let mut mounts = BTreeMap::new();
        for volume in list(&service["volumes"]) {
            let volume = text(volume);
            let parts: Vec<&str> = volume.split(':').collect();
            let (source, target) = (parts[0], parts[1]);
            if source.starts_with('.') || source.starts_with('/') {
                assert_compose_file_exists(source);
                mounts.insert(
                    target.to_owned(),
                    source.trim_start_matches("./").to_owned(),
                );
            } else {
                assert!(
                    volumes.contains(source),
                    "{name}: volume {source} is not declared"
                );
            }
        }
        let env_files: Vec<String> = match &service["env_file"] {
            Yaml::BadValue => Vec::new(),
            Yaml::Array(files) => files.iter().map(text).collect(),
            one => vec![text(one)],
        };
        for file in &env_files {
            assert_compose_file_exists(file);
        }
        let environment: Vec<(String, String)> = map(&service["environment"])
            .into_iter()
            .map(|(k, v)| (k, interpolate(&text(v), &dotenv)))
            .collect();
        for (_, value) in &environment {
            assert!(!value.contains("${"), "{name}: {value}");
        }

        if build["target"].as_str() == Some("tessera") {
            checked_tessera = true;
            // What the container's environment holds: the image's, the env
            // file's (.env, as .env.example shows it), then the service's.
            let mut env = Dockerfile::read().env("tessera");
            if !env_files.is_empty() {
                env.extend(dotenv.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            env.extend(environment.iter().cloned());
            let config_path = env
                .iter()
                .rev()
                .find(|(k, _)| k == "TESSERA_CONFIG")
                .map(|(_, v)| v.clone());
            let config = config_path.map(|path| {
                let source = mounts
                    .get(&path)
                    .unwrap_or_else(|| panic!("{name}: TESSERA_CONFIG {path} is not mounted"));
                read(source)
            });
            env.retain(|(k, _)| k != "TESSERA_CONFIG");
            assert_settings_load("docker-compose.yml's tessera", &env, config.as_deref());
            let bind = env
                .iter()
                .rev()
                .find(|(k, _)| k == "TESSERA_BIND")
                .unwrap()
                .1
                .clone();
            let port = port_of(&bind);
            assert!(
                list(&service["ports"])
                    .iter()
                    .any(|p| text(p).ends_with(&format!(":{port}"))),
                "{name} does not publish its port {port}"
            );
            let check = list(&service["healthcheck"]["test"])
                .iter()
                .map(text)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                check.contains(&format!("127.0.0.1:{port}/readyz")),
                "{check}"
            );
        }
    }
    assert!(checked_tessera, "docker-compose.yml runs no Tessera");
}

/// Every document of every manifest, by kind.
fn manifests() -> Vec<(String, Yaml)> {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(repo())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        for doc in yaml(&relative) {
            all.push((relative.clone(), doc));
        }
    }
    all
}

fn of_kind<'a>(manifests: &'a [(String, Yaml)], kind: &str) -> Vec<&'a Yaml> {
    manifests
        .iter()
        .filter(|(_, doc)| doc["kind"].as_str() == Some(kind))
        .map(|(_, doc)| doc)
        .collect()
}

fn named<'a>(manifests: &'a [(String, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    of_kind(manifests, kind)
        .into_iter()
        .find(|doc| doc["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

/// The pod specs of the Deployments and the CronJobs, with their names.
fn pod_specs(manifests: &[(String, Yaml)]) -> Vec<(String, &Yaml)> {
    let mut pods = Vec::new();
    for doc in of_kind(manifests, "Deployment") {
        pods.push((
            text(&doc["metadata"]["name"]),
            &doc["spec"]["template"]["spec"],
        ));
    }
    for doc in of_kind(manifests, "CronJob") {
        pods.push((
            text(&doc["metadata"]["name"]),
            &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        ));
    }
    pods
}

/// A container's environment as the pod gets it: `envFrom` Secrets (from
/// the example Secret) and ConfigMaps, then `env`.
fn container_env(manifests: &[(String, Yaml)], container: &Yaml) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for source in list(&container["envFrom"]) {
        let (kind, reference, data) = if !source["secretRef"].is_badvalue() {
            ("Secret", &source["secretRef"], "stringData")
        } else {
            ("ConfigMap", &source["configMapRef"], "data")
        };
        let doc = named(manifests, kind, &text(&reference["name"]));
        for (name, value) in map(&doc[data]) {
            env.push((name, text(value)));
        }
    }
    for var in list(&container["env"]) {
        env.push((text(&var["name"]), text(&var["value"])));
    }
    env
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The contents of the file a container reads at `path`, from the
/// ConfigMap mounted over its directory.
fn mounted_config(
    manifests: &[(String, Yaml)],
    pod: &Yaml,
    container: &Yaml,
    path: &str,
) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap();
    let mount = list(&container["volumeMounts"])
        .iter()
        .find(|m| text(&m["mountPath"]) == dir)
        .unwrap_or_else(|| panic!("nothing is mounted at {dir}"));
    let volume = volume_named(pod, &text(&mount["name"]));
    let config_map = named(manifests, "ConfigMap", &text(&volume["configMap"]["name"]));
    text(&config_map["data"][file])
}

fn volume_named<'a>(pod: &'a Yaml, name: &str) -> &'a Yaml {
    list(&pod["volumes"])
        .iter()
        .find(|v| text(&v["name"]) == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

#[test]
fn kubernetes_manifests_name_only_real_settings_subcommands_ports_and_objects() {
    let manifests = manifests();
    let kustomization = &yaml("deploy/kubernetes/kustomization.yaml")[0];
    for resource in list(&kustomization["resources"]) {
        let resource = text(resource);
        assert!(
            repo().join("deploy/kubernetes").join(&resource).is_file(),
            "kustomization.yaml lists {resource}, which is missing"
        );
    }
    let claims: BTreeSet<String> = of_kind(&manifests, "PersistentVolumeClaim")
        .iter()
        .map(|doc| text(&doc["metadata"]["name"]))
        .collect();
    let pods = pod_specs(&manifests);
    assert!(pods.len() >= 2, "a Deployment and a CronJob");

    for (name, pod) in &pods {
        for volume in list(&pod["volumes"]) {
            let claim = &volume["persistentVolumeClaim"]["claimName"];
            if !claim.is_badvalue() {
                assert!(
                    claims.contains(&text(claim)),
                    "{name}: no claim {}",
                    text(claim)
                );
            }
        }
        for container in list(&pod["containers"]) {
            let what = format!("{name}/{}", text(&container["name"]));
            let args: Vec<String> = list(&container["args"]).iter().map(text).collect();
            let parsed = tessera::cli::Cli::try_parse_from(
                std::iter::once("tessera".to_owned()).chain(args.iter().cloned()),
            );
            assert!(
                parsed.is_ok(),
                "{what}: `tessera {}` is not a command",
                args.join(" ")
            );
            for mount in list(&container["volumeMounts"]) {
                volume_named(pod, &text(&mount["name"]));
            }

            let mut env = container_env(&manifests, container);
            // The key directory is the shared volume, in the service and
            // in its jobs alike.
            let keys = env_value(&env, "TESSERA_KEYS__DIR").expect("TESSERA_KEYS__DIR");
            let mount = list(&container["volumeMounts"])
                .iter()
                .find(|m| text(&m["mountPath"]) == keys)
                .unwrap_or_else(|| panic!("{what}: the key directory {keys} is not a volume"));
            let volume = volume_named(pod, &text(&mount["name"]));
            assert!(
                !volume["persistentVolumeClaim"].is_badvalue(),
                "{what}: the key directory is not the shared claim"
            );
            let config = env_value(&env, "TESSERA_CONFIG")
                .map(|path| mounted_config(&manifests, pod, container, path));
            env.retain(|(k, _)| k != "TESSERA_CONFIG");
            for (variable, _) in &env {
                assert!(
                    variable == "DATABASE_URL" || variable.starts_with("TESSERA_"),
                    "{what}: {variable} is not Tessera's"
                );
            }
            assert_settings_load(&what, &env, config.as_deref());

            let ports: BTreeMap<String, u16> = list(&container["ports"])
                .iter()
                .map(|p| {
                    (
                        text(&p["name"]),
                        p["containerPort"].as_i64().unwrap() as u16,
                    )
                })
                .collect();
            if let Some(bind) = env_value(&env, "TESSERA_BIND") {
                assert_eq!(
                    ports.get("http"),
                    Some(&port_of(bind)),
                    "{what}: the http port"
                );
            }
            if let Some(bind) = env_value(&env, "TESSERA_METRICS_BIND") {
                assert_eq!(
                    ports.get("metrics"),
                    Some(&port_of(bind)),
                    "{what}: the metrics port"
                );
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let port = &container[probe]["httpGet"]["port"];
                if !port.is_badvalue() {
                    assert!(
                        ports.contains_key(&text(port)),
                        "{what}: {probe} port {}",
                        text(port)
                    );
                }
            }
        }
    }

    for service in of_kind(&manifests, "Service") {
        let selector = map(&service["spec"]["selector"]);
        let deployment = of_kind(&manifests, "Deployment")
            .into_iter()
            .find(|d| {
                selector.iter().all(|(k, v)| {
                    d["spec"]["template"]["metadata"]["labels"][k.as_str()].as_str() == v.as_str()
                })
            })
            .expect("the Service selects the Deployment's pods");
        let port_names: BTreeSet<String> =
            list(&deployment["spec"]["template"]["spec"]["containers"][0]["ports"])
                .iter()
                .map(|p| text(&p["name"]))
                .collect();
        for port in list(&service["spec"]["ports"]) {
            assert!(
                port_names.contains(&text(&port["targetPort"])),
                "Service port {port:?}"
            );
        }
    }
}

/// The paths that every health check of Tessera and every probe asks.
fn probed_paths() -> Vec<String> {
    let mut paths = Vec::new();
    let url_path = |check: &str| {
        check
            .split_whitespace()
            .find_map(|word| word.trim_matches(['"', ',', ']']).strip_prefix("http://"))
            .map(|rest| format!("/{}", rest.split_once('/').map_or("", |(_, p)| p)))
    };
    let compose = &yaml("docker-compose.yml")[0];
    for (_, service) in map(&compose["services"]) {
        if service["build"]["target"].as_str() == Some("tessera") {
            let check = list(&service["healthcheck"]["test"]);
            paths.extend(check.iter().filter_map(|word| url_path(&text(word))));
        }
    }
    for (_, keyword, args) in &Dockerfile::read().instructions {
        if keyword == "HEALTHCHECK" {
            paths.extend(url_path(args));
        }
    }
    let manifests = manifests();
    for (_, pod) in pod_specs(&manifests) {
        for container in list(&pod["containers"]) {
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let path = &container[probe]["httpGet"]["path"];
                if !path.is_badvalue() {
                    paths.push(text(path));
                }
            }
        }
    }
    paths
}

#[tokio::test]
async fn every_health_check_and_probe_asks_a_route_that_answers_ready() {
    let paths = probed_paths();
    assert!(paths.iter().any(|p| p == "/readyz"), "{paths:?}");
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.metrics_bind = Some("127.0.0.1:0".into());
    })
    .await;

    for path in &paths {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    // Prometheus scrapes the metrics port the Deployment names.
    let metrics = app.metrics_address.as_deref().unwrap();
    let response = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The compose set-up as a browser on the host meets it: the login page,
/// linked from the example service's `/app` (which sends the browser back
/// to itself, `http://localhost:8081/app`), answers with a form and a
/// stylesheet on the issuer the browser reaches, and the example service
/// expects tokens of that same issuer.
#[tokio::test]
async fn the_compose_login_page_serves_the_example_service_at_localhost() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    use tessera::configuration::Settings;

    let compose: Settings = Figment::from(Toml::string(&read("deploy/compose/tessera.toml")))
        .extract()
        .expect("deploy/compose/tessera.toml holds settings");
    let issuer = compose.issuer();
    assert_eq!(issuer, "http://localhost:8080");
    let services = &yaml("docker-compose.yml")[0]["services"];
    let notebooks = &services["notebooks"]["environment"];
    assert_eq!(text(&notebooks["TESSERA_ISSUER"]), issuer);
    let (clients, audiences) = (compose.clients, compose.tokens.allowed_audiences);
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.issuer = Some(issuer.clone());
        settings.clients = clients.clone();
        settings.tokens.allowed_audiences = audiences.clone();
    })
    .await;

    let response = app
        .client
        .get(app.url("/login"))
        .query(&[
            ("client_id", "notebooks"),
            ("return_to", "http://localhost:8081/app"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(r#"action="http://localhost:8080/login""#),
        "{page}"
    );
    assert!(
        page.contains(r#"href="http://localhost:8080/static/tessera.css""#),
        "{page}"
    );
}

/// The build context keeps what the build reads: the files the Dockerfile
/// copies, and what the crates read at compile time (the templates, the
/// default stylesheet, the migrations).
#[test]
fn the_build_context_keeps_what_the_build_reads() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_matches('/').to_owned())
        .collect();
    let mut needed: Vec<String> = ["src", "crates", "templates", "static/tessera.css"]
        .into_iter()
        .chain(["migrations/postgres", "migrations/sqlite"])
        .map(str::to_owned)
        .collect();
    for (_, keyword, args) in &Dockerfile::read().instructions {
        if keyword == "COPY" && !args.starts_with("--from") {
            let words: Vec<&str> = args.split_whitespace().collect();
            needed.extend(words[..words.len() - 1].iter().map(|w| (*w).to_owned()));
        }
    }
    for path in needed.iter().filter(|path| *path != ".") {
        assert!(repo().join(path).exists(), "{path} is missing");
        let mut prefix = PathBuf::new();
        for part in Path::new(path) {
            prefix.push(part);
            let prefix = prefix.to_str().unwrap();
            assert!(
                !ignored.iter().any(|pattern| pattern == prefix),
                ".dockerignore leaves {path} out of the build context"
            );
        }
    }
}
