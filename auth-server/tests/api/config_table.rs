//! Contract § Configuration: the book's table of variables against the code.
//!
//! Configuration: the one table of `docs/src/configuration.md` against the
//! variables the services' settings really read, in development and in
//! production, so the book cannot drift from the code.
//!
//! Each service's settings are built through a lookup that records every
//! name asked for: the auth server's `Settings::from_lookup`,
//! `resource-guard`'s `GuardSettings::from_lookup`, and the resource API's
//! `Settings::from_lookup` (whose own variables are those it reads beyond
//! the guard's). Every variable read must be in the table with exactly the
//! services that read it, and every variable in the table must be read by
//! the services it names, or be in [`NOT_THROUGH_SETTINGS`] with a reason.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Variables the table lists that no settings lookup reads, with the
/// services that read them elsewhere and why.
const NOT_THROUGH_SETTINGS: &[(&str, &[&str], &str)] = &[(
    "RUST_LOG",
    &["auth", "api"],
    "read by the logging set-up (tracing's EnvFilter in service_kit::telemetry), before and apart from the settings",
)];

/// 32 random bytes, base64url: what `auth-server secret` writes.
const STRONG_TOKEN: &str = "q7Hc2LxV-9tRk3Wm_ZpE8yN4bJfU1sQaD6gT0oXiK5w";

/// The names a settings constructor asks for, given `vars`; it must accept
/// them (a refusal would stop the reading half-way).
fn reads<T, E: std::fmt::Display>(
    what: &str,
    vars: &[(&str, &str)],
    build: impl FnOnce(&dyn Fn(&str) -> Option<String>) -> Result<T, E>,
) -> BTreeSet<String> {
    let values: HashMap<&str, &str> = vars.iter().copied().collect();
    let asked = RefCell::new(BTreeSet::new());
    let lookup = |name: &str| {
        asked.borrow_mut().insert(name.to_owned());
        values.get(name).map(|v| (*v).to_owned())
    };
    if let Err(e) = build(&lookup) {
        panic!("{what}: the settings were refused, so not every variable was read: {e}");
    }
    asked.into_inner()
}

fn auth_reads() -> BTreeSet<String> {
    let production = [
        ("APP_ENV", "production"),
        ("SIGNING_KEY_FILE", "/keys/signing.pem"),
        ("REFRESH_TOKEN_KEY_FILE", "/keys/refresh-token-key"),
        ("INTERNAL_API_TOKEN", STRONG_TOKEN),
        ("SMTP_URL", "smtps://user:pass@smtp.example.com"),
        ("PUBLIC_URL", "https://app.example.com"),
        ("WEBAUTHN_RP_ID", "example.com"),
        ("DATABASE_URL", "postgres://auth@127.0.0.1:5432/auth"),
    ];
    let build = |lookup: &dyn Fn(&str) -> Option<String>| {
        auth_server::config::Settings::from_lookup(lookup)
    };
    let mut names = reads("auth-server, development", &[], build);
    names.extend(reads("auth-server, production", &production, build));
    names
}

fn guard_production() -> [(&'static str, &'static str); 3] {
    [
        ("APP_ENV", "production"),
        ("INTERNAL_API_TOKEN", STRONG_TOKEN),
        ("JWT_AUDIENCE", "orders-api"),
    ]
}

fn guard_reads() -> BTreeSet<String> {
    let build = |lookup: &dyn Fn(&str) -> Option<String>| {
        resource_guard::GuardSettings::from_lookup(lookup)
    };
    let mut names = reads("resource-guard, development", &[], build);
    names.extend(reads(
        "resource-guard, production",
        &guard_production(),
        build,
    ));
    names
}

fn api_reads() -> BTreeSet<String> {
    let build = |lookup: &dyn Fn(&str) -> Option<String>| {
        resource_api::config::Settings::from_lookup(lookup)
    };
    let mut names = reads("resource-api, development", &[], build);
    names.extend(reads(
        "resource-api, production",
        &guard_production(),
        build,
    ));
    names
}

/// The table's rows: each variable named in the first column (in
/// backticks), with the services of the second column.
fn table() -> Vec<(String, BTreeSet<String>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/src/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|line| !line.starts_with("| variable | service | default | meaning |"));
    assert!(
        lines.next().is_some(),
        "{} has no table headed `| variable | service | default | meaning |`",
        path.display()
    );
    let mut rows = Vec::new();
    for line in lines.skip(1).take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert!(cells.len() >= 4, "a row of four cells: {line}");
        let services: BTreeSet<String> = cells[1].split(',').map(|s| s.trim().to_owned()).collect();
        for service in &services {
            assert!(
                ["auth", "api", "guard"].contains(&service.as_str()),
                "the service `{service}` is none of auth, api, guard: {line}"
            );
        }
        let names: Vec<String> = cells[0]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(!names.is_empty(), "a row naming no variable: {line}");
        for name in names {
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "`{name}` is not a variable name: {line}"
            );
            rows.push((name, services.clone()));
        }
    }
    assert!(
        rows.len() > 50,
        "the table was cut short: {} variables",
        rows.len()
    );
    rows
}

#[test]
fn the_configuration_table_names_every_variable_and_only_those() {
    let auth = auth_reads();
    let guard = guard_reads();
    let api_all = api_reads();
    let missing_from_api: Vec<_> = guard.difference(&api_all).collect();
    assert!(
        missing_from_api.is_empty(),
        "the resource API reads its token settings through the guard: {missing_from_api:?}"
    );

    // What the code says: each variable, and the services that read it.
    let mut code: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (service, names) in [("auth", &auth), ("guard", &guard)] {
        for name in names {
            code.entry(name.clone())
                .or_default()
                .insert(service.to_owned());
        }
    }
    for name in api_all.difference(&guard) {
        code.entry(name.clone())
            .or_default()
            .insert("api".to_owned());
    }
    for (name, services, reason) in NOT_THROUGH_SETTINGS {
        assert!(
            !code.contains_key(*name),
            "{name} is read through the settings now: drop it from NOT_THROUGH_SETTINGS ({reason})"
        );
        code.insert(
            (*name).to_owned(),
            services.iter().map(|s| (*s).to_owned()).collect(),
        );
    }

    let mut table_services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, services) in table() {
        if table_services.insert(name.clone(), services).is_some() {
            problems.push(format!("{name} is in the table twice"));
        }
    }
    for (name, services) in &code {
        match table_services.get(name) {
            None => problems.push(format!(
                "{name} is read by {services:?} but missing from the table"
            )),
            Some(listed) if listed != services => problems.push(format!(
                "{name}: the table says {listed:?}, the code reads it in {services:?}"
            )),
            Some(_) => {}
        }
    }
    for name in table_services.keys() {
        if !code.contains_key(name) {
            problems.push(format!(
                "{name} is in the table, but no service reads it (a misspelling, or a variable removed?)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/src/configuration.md and the code disagree:\n  {}",
        problems.join("\n  ")
    );
}
