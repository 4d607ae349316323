//! Feature: deployment (the Dockerfile, docker-compose.yml, the stand-in images).
//!
//! docker-compose.yml, the Dockerfile and their stand-in images, checked
//! against the code. `scripts/compose-e2e.sh` runs the stack for real in CI;
//! these checks are the quick ones that run everywhere, `cargo test`
//! included: the production settings compose gives each service must pass
//! that service's own validation, and ports, binaries, health checks,
//! volumes, start order and image variables must match what the code serves
//! and what CI substitutes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_norway::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn compose() -> Value {
    let mut compose: Value = serde_norway::from_str(
        &std::fs::read_to_string(workspace().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    // `<<: *build` merge keys, as Compose applies them.
    compose.apply_merge().unwrap();
    compose
}

fn dockerfile() -> String {
    std::fs::read_to_string(workspace().join("Dockerfile")).unwrap()
}

/// `${VAR:-default}` and `${VAR-default}` as shipped: the defaults.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${") + start;
        let inner = &rest[start + 2..end];
        let default = inner
            .split_once(":-")
            .or_else(|| inner.split_once('-'))
            .map_or("", |(_, d)| d);
        assert!(
            !inner.contains(":?"),
            "required variables would stop `docker compose up`: {inner}"
        );
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    &compose["services"][name]
}

fn environment(compose: &Value, name: &str) -> HashMap<String, String> {
    service(compose, name)["environment"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => panic!("{name}: unexpected value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), interpolate(&value))
        })
        .collect()
}

/// `name:/mount[:ro]` volumes of a service, as mount point → volume.
fn volumes(compose: &Value, name: &str) -> HashMap<String, String> {
    service(compose, name)["volumes"]
        .as_sequence()
        .map(|volumes| {
            volumes
                .iter()
                .map(|v| {
                    let mut parts = v.as_str().unwrap().split(':');
                    let source = parts.next().unwrap().to_owned();
                    (parts.next().unwrap().to_owned(), source)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Files the compose file's settings point at, stood in for by temporary
/// ones (the `init` step creates them in a deployment).
fn with_stand_ins(mut env: HashMap<String, String>, dir: &Path) -> HashMap<String, String> {
    for variable in ["INTERNAL_API_TOKEN_FILE", "DATABASE_PASSWORD_FILE"] {
        if let Some(path) = env.get_mut(variable) {
            let stand_in = dir.join(variable);
            // 32 random bytes, base64url, as `auth-server secret` writes them.
            std::fs::write(&stand_in, "q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w\n").unwrap();
            *path = stand_in.to_str().unwrap().to_owned();
        }
    }
    env
}

/// `[address:]host:container` port mappings of a service as shipped
/// (none when it publishes none).
fn published(compose: &Value, name: &str) -> Vec<String> {
    service(compose, name)["ports"]
        .as_sequence()
        .map(|_| strings(&service(compose, name)["ports"]))
        .unwrap_or_default()
        .iter()
        .map(|p| interpolate(p))
        .collect()
}

fn published_container_ports(compose: &Value, name: &str) -> Vec<u16> {
    published(compose, name)
        .iter()
        .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
        .collect()
}

/// The port of a `host:port` bind address or URL.
fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("a port in {address}"))
}

/// `ARG NAME=default` of the Dockerfile, with earlier arguments substituted
/// as BuildKit does.
fn dockerfile_arg(dockerfile: &str, name: &str) -> String {
    let mut args: Vec<(String, String)> = Vec::new();
    for line in dockerfile.lines() {
        if let Some((key, value)) = line.strip_prefix("ARG ").and_then(|l| l.split_once('=')) {
            let value = args.iter().fold(value.to_owned(), |v, (k, d)| {
                v.replace(&format!("${{{k}}}"), d)
            });
            args.push((key.to_owned(), value));
        }
    }
    args.into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("ARG {name}= in the Dockerfile"))
        .1
}

fn depends_on(compose: &Value, name: &str, on: &str) -> String {
    service(compose, name)["depends_on"][on]["condition"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} depends on {on}"))
        .to_owned()
}

/// The `FROM … AS target` stage's lines, up to the next stage.
fn stage(dockerfile: &str, target: &str) -> String {
    let marker = format!(" AS {target}");
    let start = dockerfile
        .lines()
        .position(|l| l.starts_with("FROM ") && l.ends_with(&marker))
        .unwrap_or_else(|| panic!("stage {target}"));
    dockerfile
        .lines()
        .skip(start)
        .take_while({
            let mut first = true;
            move |l| std::mem::take(&mut first) || !l.starts_with("FROM ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_auth_server_accepts_its_production_settings() {
    let compose = compose();
    let dir = TempDir::new();
    let raw = environment(&compose, "auth-server");
    let env = with_stand_ins(raw.clone(), &dir.0);
    assert_eq!(env["APP_ENV"], "production");
    let settings = auth_server::config::Settings::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(settings.is_production());
    assert!(settings.http.cookie_secure);

    // Ports: bound, exposed, published; the internal listener bound for
    // the compose network only.
    assert_eq!(settings.http.bind.port(), 8080);
    assert!(published_container_ports(&compose, "auth-server").contains(&8080));
    assert!(stage(&dockerfile(), "auth-server").contains("EXPOSE 8080"));
    assert_eq!(
        settings.internal_api.bind,
        "0.0.0.0:9080".parse::<SocketAddr>().unwrap(),
        "reachable by the resource API's container"
    );
    assert_eq!(
        published_container_ports(&compose, "auth-server"),
        [8080],
        "the internal listener is never published"
    );

    // Mail goes to the mail service's SMTP port; its links to the web app.
    assert_eq!(env["SMTP_URL"], "smtp://mail:1025");
    assert!(service(&compose, "mail").is_mapping(), "a mail service");
    assert_eq!(env["PUBLIC_URL"], "http://localhost:3000");
    assert!(published(&compose, "web").contains(&"127.0.0.1:3000:8080".to_owned()));

    // Production mode with the opt-outs a local demo needs, and no others;
    // each named where a reader of the compose file and the README looks.
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let compose_text = std::fs::read_to_string(workspace().join("docker-compose.yml")).unwrap();
    let opt_outs: Vec<&String> = env.keys().filter(|k| k.starts_with("ALLOW_")).collect();
    assert_eq!(opt_outs.len(), 2, "{opt_outs:?}");
    for opt_out in [
        "ALLOW_PLAINTEXT_SMTP",
        "ALLOW_HTTP_PUBLIC_URL",
        "DATABASE_ALLOW_UNVERIFIED_TLS",
    ] {
        assert_eq!(env[opt_out], "true", "{opt_out}");
        assert!(readme.contains(opt_out), "the README says why {opt_out}");
        assert!(
            compose_text.contains(&format!("#   {opt_out}=true")),
            "docker-compose.yml says why {opt_out}"
        );
    }

    // The signing key and the token are where init writes them, on volumes
    // the auth server mounts.
    let init = service(&compose, "init")["command"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let auth_volumes = volumes(&compose, "auth-server");
    let init_volumes = volumes(&compose, "init");
    for variable in [
        "SIGNING_KEY_FILE",
        "REFRESH_TOKEN_KEY_FILE",
        "INTERNAL_API_TOKEN_FILE",
    ] {
        let path = &raw[variable];
        assert!(
            init.contains(&format!("--out {path} --if-missing")),
            "init creates {path}"
        );
        let mount = Path::new(path).parent().unwrap().to_str().unwrap();
        assert_eq!(
            auth_volumes.get(mount),
            init_volumes.get(mount),
            "{variable}: the same volume at {mount}"
        );
        assert!(
            auth_volumes.contains_key(mount),
            "{variable}: {mount} is mounted"
        );
    }
}

#[test]
fn the_services_connect_as_the_databases_owner_with_a_generated_password() {
    let compose = compose();
    let dir = TempDir::new();
    let raw = environment(&compose, "auth-server");
    let env = with_stand_ins(raw.clone(), &dir.0);
    let settings = auth_server::config::Settings::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("{e}"));
    // Not the superuser, and no password in the URL or with a default: the
    // file init generates, on a volume postgres and the auth server share.
    assert_eq!(raw["DATABASE_URL"], "postgres://auth@postgres:5432/auth");
    assert_eq!(
        settings.database.rotation.get_password(),
        Some(&b"q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w"[..])
    );
    let postgres = environment(&compose, "postgres");
    assert!(
        !postgres.contains_key("POSTGRES_USER") && !postgres.contains_key("POSTGRES_PASSWORD"),
        "the superuser is the image's `postgres`, its password generated: {postgres:?}"
    );
    let init = service(&compose, "init")["command"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let password_file = &raw["DATABASE_PASSWORD_FILE"];
    let superuser_file = &postgres["POSTGRES_PASSWORD_FILE"];
    for (path, services) in [
        (password_file, &["auth-server", "postgres"][..]),
        (superuser_file, &["postgres"][..]),
    ] {
        assert!(
            init.contains(&format!("--out {path} --if-missing")),
            "init creates {path}"
        );
        let mount = Path::new(path).parent().unwrap().to_str().unwrap();
        let volume = volumes(&compose, "init")[mount].clone();
        for name in ["auth-server", "resource-api", "postgres", "web", "mail"] {
            let mounted = volumes(&compose, name).values().any(|v| *v == volume);
            assert_eq!(
                mounted,
                services.contains(&name),
                "{path}: mounted in {name}?"
            );
        }
    }
    assert_eq!(
        depends_on(&compose, "postgres", "init"),
        "service_completed_successfully"
    );

    // The first start's script makes `auth` the owner of `auth` and nothing
    // more, with the generated password.
    let initdb = volumes(&compose, "postgres")["/docker-entrypoint-initdb.d"].clone();
    let script = std::fs::read_to_string(
        workspace()
            .join(initdb.trim_start_matches("./"))
            .join("10-auth-owner.sql"),
    )
    .unwrap();
    assert!(script.contains(&format!("`cat {password_file}`")));
    assert!(script.contains("CREATE ROLE auth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"));
    assert!(script.contains("CREATE DATABASE auth OWNER auth;"));
}

#[test]
fn the_demo_s_web_server_and_mail_catcher_do_not_run_as_root() {
    let compose = compose();
    for name in ["web", "mail"] {
        let user = service(&compose, name)["user"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: a user"));
        let uid = user.split(':').next().unwrap();
        assert!(
            uid.parse::<u32>().is_ok_and(|uid| uid != 0),
            "{name}: a numeric uid other than root's: {user}"
        );
    }
    // Unprivileged nginx: its own configuration, a port above 1024, pid and
    // temporary files where uid 101 may write.
    let web = volumes(&compose, "web");
    let conf = std::fs::read_to_string(
        workspace().join(web["/etc/nginx/nginx.conf"].trim_start_matches("./")),
    )
    .unwrap();
    assert!(conf.contains("listen 8080;"));
    assert!(conf.contains("pid /tmp/nginx.pid;"));
    assert!(conf.contains("client_body_temp_path /tmp/"));
    assert_eq!(published_container_ports(&compose, "web"), [8080]);
}

#[test]
fn the_resource_api_accepts_its_production_settings_and_never_sees_the_signing_key() {
    let compose = compose();
    let dir = TempDir::new();
    let raw = environment(&compose, "resource-api");
    let env = with_stand_ins(raw.clone(), &dir.0);
    assert_eq!(env["APP_ENV"], "production");
    let settings = resource_api::config::Settings::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(settings.production);
    assert_eq!(settings.bind.port(), 8081);
    assert_eq!(
        published_container_ports(&compose, "resource-api"),
        [8081],
        "the internal listener is never published"
    );
    assert_eq!(settings.internal_bind.port(), 9081);
    assert!(stage(&dockerfile(), "resource-api").contains("EXPOSE 8081"));
    assert_eq!(
        settings.guard.auth_url, "http://auth-server:8080",
        "the auth-server service and its bound port"
    );
    let auth_internal = environment(&compose, "auth-server")["AUTH_INTERNAL_BIND"].clone();
    assert_eq!(
        settings.guard.auth_internal_url,
        format!(
            "http://auth-server:{}",
            auth_internal.rsplit(':').next().unwrap()
        ),
        "the auth-server service and its internal port"
    );
    // The suite in URL mode reads the same internal listeners.
    let e2e = environment(&compose, "e2e");
    assert_eq!(e2e["AUTH_INTERNAL_URL"], settings.guard.auth_internal_url);
    assert_eq!(
        e2e["API_INTERNAL_URL"],
        format!("http://resource-api:{}", settings.internal_bind.port())
    );

    let auth = environment(&compose, "auth-server");
    // The revocation feed from the auth server's internal listener; the
    // API's own internal listener (metrics) unpublished.
    assert_eq!(
        raw["AUTH_INTERNAL_URL"],
        format!(
            "http://auth-server:{}",
            port_of(&auth["AUTH_INTERNAL_BIND"])
        )
    );
    let internal = port_of(&raw["API_INTERNAL_BIND"]);
    assert_ne!(internal, 8081);
    assert!(!published_container_ports(&compose, "resource-api").contains(&internal));
    assert_eq!(
        raw["REVOCATION_MAX_STALENESS"], "30s",
        "the contract's default, unless a run sets REVOCATION_MAX_STALENESS"
    );
    for shared in [
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "ALLOWED_ORIGINS",
        "INTERNAL_API_TOKEN_FILE",
    ] {
        assert_eq!(
            raw.get(shared),
            auth.get(shared),
            "{shared} agrees on both services"
        );
    }
    let api_volumes = volumes(&compose, "resource-api");
    let token_mount = Path::new(&raw["INTERNAL_API_TOKEN_FILE"])
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api_volumes.get(&token_mount),
        volumes(&compose, "auth-server").get(&token_mount)
    );
    let signing_mount = Path::new(&auth["SIGNING_KEY_FILE"])
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let signing_volume = &volumes(&compose, "auth-server")[&signing_mount];
    assert!(
        !api_volumes.values().any(|v| v == signing_volume),
        "the resource API holds no key that can sign"
    );
}

#[test]
fn services_start_in_order_and_check_their_health_with_the_right_binaries() {
    let compose = compose();
    assert_eq!(
        depends_on(&compose, "auth-server", "postgres"),
        "service_healthy"
    );
    assert_eq!(
        depends_on(&compose, "auth-server", "init"),
        "service_completed_successfully"
    );
    assert_eq!(
        depends_on(&compose, "auth-server", "mail"),
        "service_healthy"
    );
    assert_eq!(
        strings(&service(&compose, "mail")["healthcheck"]["test"]),
        ["CMD", "/mailpit", "readyz"],
        "Mailpit's own health check (the stand-in has it too)"
    );
    assert_eq!(
        depends_on(&compose, "resource-api", "auth-server"),
        "service_healthy"
    );
    assert_eq!(
        depends_on(&compose, "web", "resource-api"),
        "service_healthy"
    );
    assert_eq!(
        depends_on(&compose, "e2e", "resource-api"),
        "service_healthy"
    );
    assert_eq!(strings(&service(&compose, "e2e")["profiles"]), ["test"]);

    let dockerfile = dockerfile();
    for name in ["auth-server", "resource-api"] {
        // The binary is the workspace's, installed where compose calls it.
        let binary = format!("/usr/local/bin/{name}");
        let stage = stage(&dockerfile, name);
        assert!(
            stage.contains(&format!("COPY --from=build /out/{name} {binary}")),
            "{name}: {stage}"
        );
        assert!(dockerfile.contains(&format!(
            "install -D --strip -m 0755 target/release/{name} /out/{name}"
        )));
        assert!(workspace().join(name).join("src/main.rs").exists());
        let health = format!(r#"CMD ["{binary}", "healthcheck"]"#);
        assert!(stage.contains(&health), "{name}: Dockerfile health check");
        assert_eq!(
            strings(&service(&compose, name)["healthcheck"]["test"]),
            ["CMD", binary.as_str(), "healthcheck"]
        );
        assert!(stage.contains(&format!("ENTRYPOINT [\"{binary}\"]")));
        assert_eq!(
            service(&compose, name)["build"]["target"].as_str(),
            Some(name)
        );
    }
    assert_eq!(
        service(&compose, "init")["build"]["target"].as_str(),
        Some("auth-server")
    );
    assert_eq!(
        service(&compose, "e2e")["build"]["target"].as_str(),
        Some("e2e")
    );
    // The e2e image runs this very test binary, built from this package.
    assert!(dockerfile.contains("FROM build AS e2e-build"));
    assert!(
        stage(&dockerfile, "e2e-build").contains(&format!(
            "cargo test --release --locked -p {} --test e2e --no-run",
            env!("CARGO_PKG_NAME")
        )),
        "the e2e-build stage builds this package's e2e tests"
    );
    assert!(workspace_members().contains(&"stack-tests".to_owned()));
    assert!(workspace().join("stack-tests/tests/e2e/main.rs").exists());
    let e2e = stage(&dockerfile, "e2e");
    assert!(dockerfile.contains("FROM runtime AS e2e"));
    assert!(
        e2e.lines().any(|l| l == "WORKDIR /src/stack-tests"),
        "the e2e stage starts in this package's folder: {e2e}"
    );
}

#[test]
fn postgres_is_pinned_checked_and_persistent_and_the_runtime_is_small_and_unprivileged() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    let image = interpolate(postgres["image"].as_str().unwrap());
    let image = image.as_str();
    let tag = image.strip_prefix("postgres:").expect("the official image");
    assert!(
        tag.split(['.', '-']).next().unwrap().parse::<u32>().is_ok(),
        "a pinned major version: {image}"
    );
    assert!(
        strings(&postgres["healthcheck"]["test"])
            .join(" ")
            .contains("pg_isready")
    );
    let pgdata = &volumes(&compose, "postgres")["/var/lib/postgresql/data"];
    for volume in [pgdata.as_str(), "signing-key", "internal-token"] {
        assert!(
            compose["volumes"]
                .as_mapping()
                .unwrap()
                .contains_key(volume),
            "named volume {volume}"
        );
    }
    assert!(
        environment(&compose, "auth-server")["ALLOWED_ORIGINS"]
            .split(',')
            .any(|o| o == "http://localhost:3000")
    );

    let runtime = stage(&dockerfile(), "runtime");
    assert_eq!(
        runtime.lines().next().unwrap(),
        "FROM ${DEBIAN_IMAGE} AS runtime"
    );
    assert!(
        dockerfile_arg(&dockerfile(), "DEBIAN_IMAGE").contains("-slim"),
        "a slim runtime"
    );
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "non-root: {user}"
    );
    assert!(
        !runtime.contains("curl"),
        "no tools the binaries do not need"
    );
}

#[actix_web::test]
async fn the_healthcheck_probe_speaks_to_the_real_health_route() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/healthz",
            actix_web::web::get().to(resource_api::handlers::healthz),
        )
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let probed = actix_web::web::block(move || service_kit::probe::http_ok(addr, "/healthz"))
        .await
        .unwrap();
    assert_eq!(probed, Ok(()));
    let missing = actix_web::web::block(move || service_kit::probe::http_ok(addr, "/nope"))
        .await
        .unwrap();
    assert!(missing.is_err());
    handle.stop(false).await;
    let unspecified = SocketAddr::from(([0, 0, 0, 0], addr.port()));
    assert!(
        service_kit::probe::http_ok(unspecified, "/healthz").is_err(),
        "stopped"
    );
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("deployment-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn only_the_public_ports_are_published() {
    // Not PostgreSQL (the host may run its own on 5432), not SMTP, not the
    // internal listeners; and on loopback unless PUBLISH_ADDRESS says
    // otherwise (the mail inbox always: it shows reset links).
    let compose = compose();
    let mut ports: Vec<(String, String)> = compose["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|name| name.as_str().unwrap())
        .flat_map(|name| {
            published(&compose, name)
                .into_iter()
                .map(move |p| (name.to_owned(), p))
        })
        .collect();
    ports.sort();
    let expected = [
        ("auth-server", "127.0.0.1:8080:8080"),
        ("mail", "127.0.0.1:8025:8025"),
        ("resource-api", "127.0.0.1:8081:8081"),
        ("web", "127.0.0.1:3000:8080"),
    ]
    .map(|(s, p)| (s.to_owned(), p.to_owned()));
    assert_eq!(ports, expected);
}

#[test]
fn third_party_images_default_to_the_official_ones_and_ci_substitutes_them_by_variables() {
    let compose = compose();
    let dockerfile = dockerfile();
    assert!(
        !dockerfile.lines().any(|l| l.starts_with("# syntax")),
        "a syntax line makes BuildKit pull a frontend image"
    );
    assert!(dockerfile.contains("FROM ${RUST_IMAGE} AS build"));
    assert_eq!(
        dockerfile_arg(&dockerfile, "RUST_IMAGE"),
        format!(
            "rust:{}-slim-bookworm",
            dockerfile_arg(&dockerfile, "RUST_VERSION")
        )
    );
    // Every build passes the base images on, defaulting to the Dockerfile's.
    for name in ["init", "auth-server", "resource-api", "e2e"] {
        for arg in ["RUST_IMAGE", "DEBIAN_IMAGE"] {
            assert_eq!(
                service(&compose, name)["build"]["args"][arg].as_str(),
                Some(format!("${{{arg}:-{}}}", dockerfile_arg(&dockerfile, arg)).as_str()),
                "{name}: build argument {arg}"
            );
        }
    }
    // Third-party services: `${VARIABLE:-official image}`, pinned.
    for (name, variable, official) in [
        ("postgres", "POSTGRES_IMAGE", "postgres:"),
        ("web", "WEB_IMAGE", "nginx:"),
        ("mail", "MAIL_IMAGE", "axllent/mailpit:"),
    ] {
        let image = service(&compose, name)["image"].as_str().unwrap();
        let default = image
            .strip_prefix(&format!("${{{variable}:-"))
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{name}: the image through ${variable}: {image}"));
        assert!(default.starts_with(official), "{name}: {default}");
        let tag = default.rsplit(':').next().unwrap();
        assert!(
            tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{name}: a pinned tag: {default}"
        );
    }
    // CI's stand-ins: exactly those variables, local images only, the Rust
    // one of the Dockerfile's version.
    let stand_ins = std::fs::read_to_string(workspace().join("docker/stand-ins.env")).unwrap();
    let set: HashMap<&str, &str> = stand_ins
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').unwrap())
        .collect();
    let mut names: Vec<_> = set.keys().copied().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "DEBIAN_IMAGE",
            "MAIL_IMAGE",
            "POSTGRES_IMAGE",
            "RUST_IMAGE",
            "WEB_IMAGE"
        ]
    );
    assert!(set.values().all(|v| v.starts_with("local/")), "{set:?}");
    assert!(
        set["RUST_IMAGE"].contains(&format!(
            ":{}-",
            dockerfile_arg(&dockerfile, "RUST_VERSION")
        )),
        "the Rust stand-in is the Dockerfile's RUST_VERSION"
    );
}

/// The workspace's members, from Cargo.toml's `members = [...]` (on one
/// line or several; `dir/*` expanded to the folders holding a Cargo.toml).
fn workspace_members() -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let start = manifest
        .lines()
        .position(|l| l.trim_start().starts_with("members"))
        .expect("a members list");
    let rest = manifest.lines().skip(start).collect::<Vec<_>>().join("\n");
    let list = &rest[rest.find('[').unwrap() + 1..rest.find(']').unwrap()];
    let mut members = Vec::new();
    for entry in list.split('"').skip(1).step_by(2) {
        match entry.strip_suffix("/*") {
            Some(dir) => {
                for folder in std::fs::read_dir(workspace().join(dir)).unwrap() {
                    let path = folder.unwrap().path();
                    if path.join("Cargo.toml").exists() {
                        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                        members.push(format!("{dir}/{name}"));
                    }
                }
            }
            None => members.push(entry.to_owned()),
        }
    }
    members
}

/// Whether a .dockerignore pattern leaves `path` out: `*` within a path
/// segment, `**` across segments; a pattern naming a folder covers what is
/// under it.
fn ignored(pattern: &str, path: &str) -> bool {
    fn wildcard(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| wildcard(rest, &s[i..])),
            Some((c, rest)) => s.first() == Some(c) && wildcard(rest, &s[1..]),
        }
    }
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match (p.split_first(), s.split_first()) {
            (None, _) => true,
            (Some((&"**", rest)), _) => {
                segments(rest, s) || (!s.is_empty() && segments(p, &s[1..]))
            }
            (Some(_), None) => false,
            (Some((first, rest)), Some((name, names))) => {
                wildcard(first.as_bytes(), name.as_bytes()) && segments(rest, names)
            }
        }
    }
    let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments(&pattern, &path)
}

/// Files under `dir` (relative to the workspace), build outputs aside.
fn files_under(dir: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![workspace().join(dir)];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(workspace()).unwrap();
                files.push(relative.to_str().unwrap().to_owned());
            }
        }
    }
    files
}

#[test]
fn the_image_build_sees_every_workspace_member() {
    // Cargo loads the whole workspace even to build two packages, so the
    // build stage copies all of it: a member added to Cargo.toml needs no
    // change to the Dockerfile, as long as .dockerignore leaves it in.
    let members = workspace_members();
    assert!(members.contains(&"auth-server".to_owned()));
    assert!(members.contains(&"resource-api".to_owned()));
    assert!(members.contains(&"stack-tests".to_owned()));
    let build = stage(&dockerfile(), "build");
    assert!(
        build.lines().any(|l| l == "COPY . ."),
        "the build stage copies the workspace: {build}"
    );
    let patterns: Vec<String> = std::fs::read_to_string(workspace().join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(str::to_owned)
        .collect();
    let mut needed: Vec<String> = [
        "Cargo.toml",
        "Cargo.lock",
        "docker-compose.yml",
        "Dockerfile",
    ]
    .map(str::to_owned)
    .to_vec();
    needed.extend(files_under("migrations"));
    for member in &members {
        let files = files_under(member);
        assert!(files.contains(&format!("{member}/Cargo.toml")), "{member}");
        needed.extend(files.into_iter().filter(|f| !f.ends_with(".pem")));
    }
    for path in &needed {
        for pattern in &patterns {
            assert!(
                !ignored(pattern, path),
                ".dockerignore's `{pattern}` leaves {path} out of the image build"
            );
        }
    }
    // And what must not reach the build context stays out of it.
    for kept_out in [
        "target/release/auth-server",
        ".git/config",
        ".env",
        "signing.pem",
        "auth-server/keys/signing.pem",
    ] {
        assert!(
            patterns.iter().any(|p| ignored(p, kept_out)),
            "{kept_out} is left out of the build context"
        );
    }
}
