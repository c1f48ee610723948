//! Seeds a store for the `just bench` load run: USERS users with KEYS keys each, through the
//! same use cases the API uses, and writes the full keys (one per line) to OUT and the user
//! ids (one per line) to OUT.users. Each user has 10^9 credits, so paid-path rounds never run
//! out. One more user holds two more keys: OUT.controlled, a key with all four controls set
//! (an expiry 300 days ahead, loopback networks, a monthly limit of 10^12 and three scopes that
//! still render), and OUT.limited, a key with only a monthly limit (10^12), for the rows that
//! measure what the controls cost.
//!
//! `cargo run --release -p api-actix --example bench_seed -- DATABASE_URL USERS KEYS OUT`
//!
//! The keys file is a bench artefact in a temp dir: it holds live credentials of a throwaway
//! database and is deleted by the bench script.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use adapters_inprocess::NoOtherInstances;
use adapters_postgres::DbStore;
use anyhow::Context as _;
use keys_domain::GrantAmount;
use keys_domain::KeyName;
use keys_domain::allowed_networks::AllowedNetworks;
use keys_domain::api_key::KeyLimits;
use keys_domain::key_controls::KeyControls;
use keys_domain::monthly_spend::MonthlyCreditLimit;
use keys_domain::ports::{Clock as _, SystemClock};
use keys_domain::random::OsRandom;
use keys_domain::scope::Scopes;
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
                    KeyControls::default(),
                )
                .await?;
            writeln!(file, "{}", issued.secret.expose())?;
        }
    }
    file.flush()?;
    ids.flush()?;

    let owner = user_service
        .create(
            &format!("bench-{run}-controls@example.com"),
            GrantAmount::new(1_000_000_000).ok(),
        )
        .await?;
    let limit = MonthlyCreditLimit::new(MonthlyCreditLimit::MAX).ok();
    let controlled = KeyControls {
        expires_at: Some(SystemClock.now().plus(Duration::from_secs(300 * 86_400))),
        allowed_networks: AllowedNetworks::parse(["127.0.0.0/8", "::1/128"]).ok(),
        monthly_credit_limit: limit,
        scopes: Scopes::parse(["credits:read", "documents:read", "documents:write"])?,
    };
    let limited = KeyControls {
        monthly_credit_limit: limit,
        ..KeyControls::default()
    };
    for (name, controls) in [("controlled", controlled), ("limited", limited)] {
        let issued = key_service
            .issue(
                &owner.id,
                KeyName::parse(&format!("bench-{name}"))?,
                controls,
            )
            .await?;
        std::fs::write(
            format!("{out}.{name}"),
            format!("{}\n", issued.secret.expose()),
        )?;
    }
    Ok(())
}
