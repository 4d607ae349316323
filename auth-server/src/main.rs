use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use auth_server::config::Settings;
use auth_server::db::{self, Database};
use auth_server::service::signing_keys::KeyStore;
use auth_server::service::{self, ServiceError};
use auth_server::signing;
use auth_server::startup::Application;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(
    name = "auth-server",
    version,
    about = "Users, sessions and rotating refresh tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a new Ed25519 signing key (PKCS#8 PEM) to a file.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Succeed without writing when the file already holds a valid key.
        #[arg(long)]
        if_missing: bool,
    },
    /// Write a new random secret (for INTERNAL_API_TOKEN_FILE) to a file.
    Secret {
        #[arg(long)]
        out: PathBuf,
        /// Succeed without writing when the file already exists.
        #[arg(long)]
        if_missing: bool,
    },
    /// Exit 0 when this server's /healthz answers 200 (container health checks).
    Healthcheck,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The signing keys kept in the database (KEY_ENCRYPTION_KEY_FILE).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the keys: when each is published, signs and is retired.
    List,
    /// Publish a next key now; it signs SIGNING_KEY_PUBLISH_AHEAD later.
    Rotate {
        /// Sign with the new key at once (a leaked key). APIs that have not
        /// fetched the JWKS since refuse its tokens until they do: those on
        /// resource-guard refetch on an unknown kid within seconds.
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Give a user a role (such as `admin`).
    GrantRole { email: String, role: String },
    /// Take a role from a user.
    RevokeRole { email: String, role: String },
}

fn main() -> ExitCode {
    // `.env` is for development; in production the environment is set.
    let _ = dotenvy::dotenv();
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    // Writing key material needs no configuration: it runs before any exists.
    let result = match command {
        Command::Keygen { out, if_missing } => keygen(&out, if_missing),
        Command::Secret { out, if_missing } => secret(&out, if_missing),
        command => {
            let settings = match Settings::from_env() {
                Ok(settings) => settings,
                Err(e) => {
                    eprintln!("auth-server: {e}");
                    return ExitCode::from(2);
                }
            };
            service_kit::telemetry::init_tracing(settings.is_production());
            run(command, settings)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("auth-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(out: &Path, if_missing: bool) -> anyhow::Result<()> {
    if if_missing && out.exists() {
        let key = signing::SigningKey::from_pem_file(out)?;
        eprintln!(
            "{} already holds a signing key (kid {}); left as is",
            out.display(),
            key.kid()
        );
        return Ok(());
    }
    let kid = signing::write_new_key(out)?;
    eprintln!(
        "wrote a new Ed25519 signing key to {} (kid {kid})",
        out.display()
    );
    Ok(())
}

fn secret(out: &Path, if_missing: bool) -> anyhow::Result<()> {
    if if_missing && out.exists() {
        eprintln!("{} already exists; left as is", out.display());
        return Ok(());
    }
    signing::write_new_secret(out)?;
    eprintln!("wrote a new secret to {}", out.display());
    Ok(())
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let url = settings.database.url.expose_secret();
            if settings.database.create_if_missing {
                db::create_database_if_missing(url)?;
            }
            db::run_migrations(url)
        }
        Command::Keygen { out, if_missing } => keygen(&out, if_missing),
        Command::Secret { out, if_missing } => secret(&out, if_missing),
        Command::Healthcheck => {
            service_kit::probe::http_ok(settings.http.bind, "/healthz").map_err(anyhow::Error::msg)
        }
        Command::Users { command } => {
            let (email, role, grant) = match command {
                UsersCommand::GrantRole { email, role } => (email, role, true),
                UsersCommand::RevokeRole { email, role } => (email, role, false),
            };
            set_role(&settings, &email, &role, grant)
        }
        Command::Keys { command } => keys(&settings, command),
    }
}

fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let database = Database::new(&settings.database);
    let Some(store) = KeyStore::from_settings(settings, &database)? else {
        anyhow::bail!(
            "the signing keys are not in the database: set KEY_ENCRYPTION_KEY_FILE (and not SIGNING_KEY_FILE, whose key is rotated by hand)"
        );
    };
    let system = actix_web::rt::System::new();
    match command {
        KeysCommand::List => {
            let keys = system
                .block_on(store.list())
                .map_err(|e| anyhow::Error::new(e).context("listing the signing keys"))?;
            let now = chrono::Utc::now();
            // A table for the operator, on stdout (the log goes to stderr).
            let mut out = std::io::stdout().lock();
            writeln!(out, "kid\tstate\tpublish_at\tactivate_at\tretire_at")?;
            for key in keys {
                let state = match key.retire_at {
                    _ if key.publish_at > now => "created",
                    _ if key.activate_at > now => "next",
                    Some(retired) if retired <= now => "retired",
                    _ => "active",
                };
                let retire_at = key
                    .retire_at
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
                writeln!(
                    out,
                    "{}\t{state}\t{}\t{}\t{retire_at}",
                    key.kid,
                    key.publish_at.to_rfc3339(),
                    key.activate_at.to_rfc3339()
                )?;
            }
            Ok(())
        }
        KeysCommand::Rotate { now } => {
            let rotated = system
                .block_on(store.rotate(now))
                .map_err(|e| anyhow::Error::new(e).context("rotating the signing keys"))?;
            match rotated {
                Some(rotated) => {
                    eprintln!(
                        "published signing key {}; it signs from {}",
                        rotated.kid,
                        rotated.activate_at.to_rfc3339()
                    );
                    Ok(())
                }
                None => anyhow::bail!(
                    "a next key is already published and waiting to sign (`auth-server keys list`); `--now` replaces it with one that signs at once"
                ),
            }
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        tracing::info!(
            port = app.port(),
            internal_port = app.internal_port(),
            "auth-server listening"
        );
        app.run_until_stopped().await.context("serving")
    })
}

fn set_role(settings: &Settings, email: &str, role: &str, grant: bool) -> anyhow::Result<()> {
    let email = email.trim().to_lowercase();
    let role = role.trim().to_owned();
    anyhow::ensure!(
        !role.is_empty()
            && role.len() <= 64
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "a role is 1 to 64 letters, digits, `_` or `-`"
    );
    let database = Database::new(&settings.database);
    let changed = actix_web::rt::System::new().block_on(service::users::set_role(
        &database,
        email.clone(),
        role,
        grant,
    ));
    let user = match changed {
        Ok(user) => user,
        Err(ServiceError::NotFound(_)) => anyhow::bail!("no user has the email {email}"),
        Err(e) => return Err(anyhow::Error::new(e).context("changing the user's roles")),
    };
    eprintln!("{}: roles are now [{}]", user.email, user.roles.join(", "));
    eprintln!("access tokens already issued keep their old roles until they expire");
    Ok(())
}
