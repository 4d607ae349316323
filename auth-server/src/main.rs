use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use auth_server::config::Settings;
use auth_server::startup::Application;
use auth_server::{db, signing, telemetry};
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
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
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
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("auth-server: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.is_production());
    match run(cli.command.unwrap_or(Command::Serve), settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("auth-server: {e:#}");
            ExitCode::FAILURE
        }
    }
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
        Command::Keygen { out } => {
            let kid = signing::write_new_key(&out)?;
            eprintln!(
                "wrote a new Ed25519 signing key to {} (kid {kid})",
                out.display()
            );
            Ok(())
        }
        Command::Users { command } => {
            let (email, role, grant) = match command {
                UsersCommand::GrantRole { email, role } => (email, role, true),
                UsersCommand::RevokeRole { email, role } => (email, role, false),
            };
            set_role(&settings, &email, &role, grant)
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        tracing::info!(port = app.port(), "auth-server listening");
        app.run_until_stopped().await.context("serving")
    })
}

fn set_role(settings: &Settings, email: &str, role: &str, grant: bool) -> anyhow::Result<()> {
    use diesel::Connection;
    let email = email.trim().to_lowercase();
    let role = role.trim();
    anyhow::ensure!(
        !role.is_empty()
            && role.len() <= 64
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "a role is 1 to 64 letters, digits, `_` or `-`"
    );
    let mut conn = diesel::PgConnection::establish(settings.database.url.expose_secret())
        .context("connecting to the database")?;
    let user = db::users::set_role(&mut conn, &email, role, grant)?
        .with_context(|| format!("no user has the email {email}"))?;
    eprintln!("{}: roles are now [{}]", user.email, user.roles.join(", "));
    eprintln!("access tokens already issued keep their old roles until they expire");
    Ok(())
}
