//! docker-compose.yml and the Dockerfile, checked against the code. No Docker
//! engine runs here, so this is what keeps them honest: the production
//! settings they give each service must pass that service's own validation,
//! and ports, binaries, health checks, volumes and start order must match
//! what the code serves.

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
    serde_norway::from_str(
        &std::fs::read_to_string(workspace().join("docker-compose.yml")).unwrap(),
    )
    .unwrap()
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
    if let Some(path) = env.get_mut("INTERNAL_API_TOKEN_FILE") {
        let stand_in = dir.join("internal-api-token");
        std::fs::write(&stand_in, "0123456789abcdef0123456789abcdef0123456789a\n").unwrap();
        *path = stand_in.to_str().unwrap().to_owned();
    }
    env
}

fn published_container_ports(compose: &Value, name: &str) -> Vec<u16> {
    strings(&service(compose, name)["ports"])
        .iter()
        .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
        .collect()
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

    // The database is the postgres service's, with its credentials.
    let postgres = environment(&compose, "postgres");
    let expected = format!(
        "postgres://{}:{}@postgres:5432/{}",
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
    );
    assert_eq!(env["DATABASE_URL"], expected);

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
        settings.auth_url, "http://auth-server:8080",
        "the auth-server service and its bound port"
    );
    let auth_internal = environment(&compose, "auth-server")["AUTH_INTERNAL_BIND"].clone();
    assert_eq!(
        settings.auth_internal_url,
        format!(
            "http://auth-server:{}",
            auth_internal.rsplit(':').next().unwrap()
        ),
        "the auth-server service and its internal port"
    );
    // The suite in URL mode reads the same internal listeners.
    let e2e = environment(&compose, "e2e");
    assert_eq!(e2e["AUTH_INTERNAL_URL"], settings.auth_internal_url);
    assert_eq!(
        e2e["API_INTERNAL_URL"],
        format!("http://resource-api:{}", settings.internal_bind.port())
    );

    let auth = environment(&compose, "auth-server");
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
            "install -D -m 0755 target/release/{name} /out/{name}"
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
    assert!(dockerfile.contains("FROM build AS e2e"));
}

#[test]
fn postgres_is_pinned_checked_and_persistent_and_the_runtime_is_small_and_unprivileged() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    let image = postgres["image"].as_str().unwrap();
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
    assert_eq!(published_container_ports(&compose, "web"), [80]);
    assert!(strings(&service(&compose, "web")["ports"]).contains(&"3000:80".to_owned()));
    assert!(
        environment(&compose, "auth-server")["ALLOWED_ORIGINS"]
            .split(',')
            .any(|o| o == "http://localhost:3000")
    );

    let runtime = stage(&dockerfile(), "runtime");
    assert!(
        runtime.lines().next().unwrap().contains("-slim"),
        "a slim runtime: {runtime}"
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
fn the_image_build_sees_every_workspace_member() {
    // Cargo loads the whole workspace even to build two packages: a member
    // whose manifest the dependency stage does not copy (and stub) breaks
    // `docker build`.
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let members_line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("a members list");
    let members: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    assert!(members.contains(&"auth-server") && members.contains(&"resource-api"));
    let dockerfile = dockerfile();
    let build = stage(&dockerfile, "build");
    for member in members {
        assert!(
            build.contains(&format!("COPY {member}/Cargo.toml {member}/")),
            "the build stage copies {member}/Cargo.toml"
        );
        assert!(
            build.contains(&format!("{member}/src")),
            "the build stage stubs {member}'s sources"
        );
    }
}
