//! `neighborbid-web`: the REST and WebSocket front, plus the operator commands that need its schema.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{Parser, Subcommand};
use neighborbid_shared::config::Config;
use neighborbid_shared::{db, telemetry, users};

/// glibc's allocator keeps the memory of password hashing (~19 MiB each, on varying threads) long
/// after it is freed; mimalloc returns it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// NeighborBid's HTTP API (Swagger UI at /docs) and live auction WebSocket.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an operator account; the password comes from ADMIN_PASSWORD or, when that is unset,
    /// the first line of standard input. An existing username is refused unless --promote is given.
    CreateAdmin {
        /// The operator's username.
        #[arg(long)]
        username: String,
        /// The operator's email address.
        #[arg(long)]
        email: String,
        /// Take over an existing account with this username: make it an operator, set the given
        /// password and email, and sign out all of its sessions. Only for an account you know is
        /// yours; anyone could have signed the name up first.
        #[arg(long)]
        promote: bool,
    },
    /// Load demo users (and their wallets and auctions once those exist); running it again changes nothing.
    SeedDemo,
    /// Print the OpenAPI document that the server serves at /openapi.json.
    Openapi,
    /// Check every ledger invariant and print the report as JSON; exits 1 when any is broken.
    Audit,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    let _telemetry = telemetry::init("neighborbid-web", &config);
    let pool = db::connect(&config).context("failed to configure the database pool")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            db::migrate(&pool).await.context("failed to apply migrations")?;
            neighborbid_web::serve(config, pool).await
        }
        Command::Migrate => {
            db::migrate(&pool).await.context("failed to apply migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin { username, email, promote } => {
            let password = admin_password()?;
            let new = users::NewUser::parse(&username, &email, password, None)?;
            let password_hash = users::hash_password(new.password.expose()).await?;
            let existing = if promote { users::ExistingAccount::Promote } else { users::ExistingAccount::Refuse };
            let mut conn = pool.acquire().await.context("failed to connect to the database")?;
            let admin = match users::create_admin(&mut conn, &new, &password_hash, existing).await {
                Err(users::UserError::UsernameTaken) => anyhow::bail!(
                    "an account named {username:?} exists already; pass --promote only if it is yours \
                     (it becomes an operator with this password and email, and all its sessions end)"
                ),
                other => other?,
            };
            println!("admin {} (id {}) is ready", admin.username, admin.id);
            Ok(())
        }
        Command::SeedDemo => neighborbid_web::demo::seed(&pool).await,
        Command::Audit => {
            let mut conn = pool.acquire().await.context("failed to connect to the database")?;
            let report = neighborbid_shared::ledger::audit::audit(&mut conn).await.context("audit failed")?;
            // Kept as the last audit, which the operator console shows.
            neighborbid_shared::ledger::audit::record_last(&mut conn, &report)
                .await
                .context("failed to keep the audit's result")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", neighborbid_web::openapi_json());
            Ok(())
        }
    }
}

fn admin_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("ADMIN_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("admin password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("failed to read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
