use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use auth_server::accounts::email::Email;
use auth_server::config::Settings;
use auth_server::db::models::ClientInfo;
use auth_server::db::{self, Database};
use auth_server::keys::signing;
use auth_server::service::signing_keys::KeyStore;
use auth_server::service::{ServiceError, admin, paging};
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

/// Every change is recorded in the audit trail with no acting user (the
/// CLI), and reaches the APIs through the revocation feed within a second.
/// Users are named by a bare address (trimmed, any case), as at the API.
#[derive(Subcommand)]
enum UsersCommand {
    /// List users (id, e-mail, roles, disabled), in e-mail order.
    List {
        /// Only those whose e-mail holds this text.
        #[arg(long)]
        query: Option<String>,
    },
    /// Disable a user: every session revoked, login refused.
    Disable { email: Email },
    /// Enable a disabled user again.
    Enable { email: Email },
    /// Remove every second factor of a user who lost them (TOTP, recovery
    /// codes): every session revoked, the owner told by mail.
    ResetMfa { email: Email },
    /// Delete a user, its sessions and tokens (its audit events stay).
    Delete { email: Email },
    /// Give a user a role (such as `admin`).
    GrantRole { email: Email, role: String },
    /// Take a role from a user.
    RevokeRole { email: Email, role: String },
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
            actix_web::rt::System::new().block_on(users(&settings, command))
        }
        Command::Keys { command } => keys(&settings, command),
    }
}

fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let database = Database::new(&settings.database, 1)?;
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

async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let database = Database::new(&settings.database, 1)?;
    let cx = admin::Context::new(&database, &settings.tokens);
    let cli = ClientInfo::default();
    let id_of = |email: Email| {
        let database = &database;
        async move {
            match admin::id_by_email(database, email.clone()).await {
                Ok(id) => Ok((id, email)),
                Err(ServiceError::NotFound(_)) => anyhow::bail!("no user has the email {email}"),
                Err(e) => Err(anyhow::Error::new(e).context("finding the user")),
            }
        }
    };
    match command {
        UsersCommand::List { query } => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let mut cursor = None;
            loop {
                let page =
                    admin::list_users(&database, query.clone(), cursor, admin::MAX_LIMIT).await?;
                for listed in &page.items {
                    let user = &listed.user;
                    writeln!(
                        out,
                        "{}\t{}\t[{}]{}{}",
                        user.id,
                        user.email,
                        user.roles.join(", "),
                        if user.disabled_at.is_some() {
                            "\tdisabled"
                        } else {
                            ""
                        },
                        if listed.has_second_factor {
                            "\tmfa"
                        } else {
                            ""
                        }
                    )?;
                }
                match page.next_cursor {
                    // Read back, or the listing would start over.
                    Some(next) => {
                        cursor = Some(
                            paging::decode(&next)
                                .context("the next page's cursor does not read")?,
                        );
                    }
                    None => break,
                }
            }
        }
        UsersCommand::Disable { email } => {
            let (id, email) = id_of(email).await?;
            admin::disable(&cx, None, id, cli).await.map_err(explain)?;
            eprintln!("{email}: disabled; every session revoked");
        }
        UsersCommand::Enable { email } => {
            let (id, email) = id_of(email).await?;
            admin::enable(&cx, None, id, cli).await.map_err(explain)?;
            eprintln!("{email}: enabled");
        }
        UsersCommand::ResetMfa { email } => {
            let (id, email) = id_of(email).await?;
            admin::reset_mfa(&cx, None, id, cli)
                .await
                .map_err(explain)?;
            eprintln!("{email}: second factors removed; every session revoked");
        }
        UsersCommand::Delete { email } => {
            let (id, email) = id_of(email).await?;
            admin::delete(&cx, None, id, cli).await.map_err(explain)?;
            eprintln!("{email}: deleted, with its sessions and tokens");
        }
        UsersCommand::GrantRole { email, role } => {
            change_role(&cx, id_of(email).await?, role, true).await?;
        }
        UsersCommand::RevokeRole { email, role } => {
            change_role(&cx, id_of(email).await?, role, false).await?;
        }
    }
    Ok(())
}

async fn change_role(
    cx: &admin::Context<'_>,
    (id, email): (uuid::Uuid, Email),
    role: String,
    grant: bool,
) -> anyhow::Result<()> {
    let mut checked = admin::check_roles(vec![role.trim().to_owned()]).map_err(explain)?;
    let role = checked.pop().unwrap_or_default();
    let change = if grant {
        admin::RolesChange::Grant(role)
    } else {
        admin::RolesChange::Revoke(role)
    };
    let user = admin::change_roles(cx, None, id, change, ClientInfo::default())
        .await
        .map_err(explain)?;
    eprintln!("{email}: roles are now [{}]", user.roles.join(", "));
    if grant {
        eprintln!(
            "access tokens issued before keep their roles; a refresh or login carries the grant"
        );
    } else {
        eprintln!(
            "access tokens issued before are refused from now on; a refresh gets the new roles"
        );
    }
    Ok(())
}

/// What the operator is told when a change is refused.
fn explain(error: ServiceError) -> anyhow::Error {
    match error {
        ServiceError::NotFound(_) => anyhow::anyhow!("no such user"),
        ServiceError::LastAdmin => anyhow::anyhow!(
            "refused: this is the last enabled administrator (grant `admin` to another user first)"
        ),
        ServiceError::Invalid(_, problem) => anyhow::anyhow!("invalid role: {problem}"),
        e => anyhow::Error::new(e),
    }
}
