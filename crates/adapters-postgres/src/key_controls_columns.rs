//! A key's controls as the `api_keys` columns hold them: NULL for a control not set.

use keys_domain::Timestamp;
use keys_domain::allowed_networks::AllowedNetworks;
use keys_domain::key_controls::KeyControls;
use keys_domain::monthly_spend::MonthlyCreditLimit;
use keys_domain::ports::StoreError;
use keys_domain::scope::Scopes;

/// `(expires_at, allowed_networks, monthly_credit_limit, scopes)`.
pub(crate) type ControlColumns = (Option<i64>, Option<String>, Option<i64>, Option<String>);

/// The columns of `controls`; every scope stores as NULL.
pub(crate) fn control_columns(controls: &KeyControls) -> ControlColumns {
    (
        controls.expires_at.map(Timestamp::as_millis),
        controls
            .allowed_networks
            .as_ref()
            .map(AllowedNetworks::to_stored),
        controls.monthly_credit_limit.map(|l| l.credits().as_i64()),
        (!controls.scopes.is_all()).then(|| controls.scopes.to_stored()),
    )
}

/// The controls stored in a key row's columns.
///
/// # Errors
/// `Internal` naming the key when a column does not decode.
pub(crate) fn stored_controls(
    key: &str,
    columns: ControlColumns,
) -> Result<KeyControls, StoreError> {
    let (expires_at, networks, limit, scopes) = columns;
    let corrupt = |what: &str| StoreError::Internal(format!("key {key} has corrupt {what}"));
    Ok(KeyControls {
        expires_at: expires_at.map(Timestamp::from_millis),
        allowed_networks: networks
            .map(|n| AllowedNetworks::from_stored(&n).ok_or_else(|| corrupt("allowed_networks")))
            .transpose()?,
        monthly_credit_limit: limit
            .map(|n| {
                MonthlyCreditLimit::from_stored(n).ok_or_else(|| corrupt("monthly_credit_limit"))
            })
            .transpose()?,
        scopes: scopes
            .map(|s| Scopes::from_stored(&s).ok_or_else(|| corrupt("scopes")))
            .transpose()?
            .unwrap_or(Scopes::ALL),
    })
}
