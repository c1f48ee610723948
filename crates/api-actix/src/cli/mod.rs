//! The command line (`docs/api.md`, "Running it"): `serve` (default), `migrate [--status]`,
//! `users create`, `tokens issue`, `credits grant`, `keys list`, `keys revoke`. Settings come from
//! environment variables (flags override them); flags only the server uses are `serve`'s.

mod load;
mod run;
mod schema;

pub use load::{Loaded, Refusal, load, start_up_warnings};
pub use run::run_operator_command;
pub use schema::{
    Cli, Command, CreditsCommand, InitialCredits, KeysCommand, RevokeReason, ServeArgs,
    TokensCommand, UsersCommand,
};
