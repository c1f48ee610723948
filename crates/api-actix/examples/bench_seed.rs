//! Seeds a store for the `just bench` load run: USERS users with KEYS keys each, through the
//! same use cases the API uses, and writes the full keys (one per line) to OUT and the user
//! ids (one per line) to OUT.users. Each user has 10^9 credits, so paid-path rounds never run
//! out.
//!
//! `cargo run --release -p api-actix --example bench_seed -- DATABASE_URL USERS KEYS OUT`
//!
//! The keys file is a bench artefact in a temp dir: it holds live credentials of a throwaway
//! database and is deleted by the bench script.

use std::io::Write as _;
use std::sync::Arc;

use adapters_inprocess::NoOtherInstances;
use adapters_postgres::DbStore;
use anyhow::Context as _;
use keys_domain::GrantAmount;
use keys_domain::KeyName;
use keys_domain::api_key::KeyLimits;
use keys_domain::ports::SystemClock;
use keys_domain::random::OsRandom;
use keys_domain::use_cases::{KeyService, UserService};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, users, keys, out] = args.as_slice() else {
        anyhow::bail!("usage: bench_seed DATABASE_URL USERS KEYS_PER_USER OUT");
    };
    let users: usize = users.parse().context("USERS")?;
    let keys: usize = keys.parse().context("KEYS_PER_USER")?;
    let store = Arc::new(DbStore::connect(url)?);
    store.run_migrations()?;
    let user_service = UserService {
        accounts: store.clone(),
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
    };
    let key_service = KeyService {
        store: store.clone(),
        notifier: Arc::new(NoOtherInstances),
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        limits: KeyLimits::default(),
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut ids = std::io::BufWriter::new(std::fs::File::create(format!("{out}.users"))?);
    let run = std::process::id();
    for u in 0..users {
        let user = user_service
            .create(
                &format!("bench-{run}-{u}@example.com"),
                GrantAmount::new(1_000_000_000).ok(),
            )
            .await?;
        writeln!(ids, "{}", user.id.as_str())?;
        for k in 0..keys {
            let issued = key_service
                .issue(
                    &user.id,
                    KeyName::parse(&format!("bench-{k}"))?,
                    keys_domain::key_controls::KeyControls::default(),
                )
                .await?;
            writeln!(file, "{}", issued.secret.expose())?;
        }
    }
    file.flush()?;
    ids.flush()?;
    Ok(())
}
