//! Paged lists (`docs/api.md`, "Lists"): the `limit`, `starting_after` and `status` query parameters, and the
//! `{"data": [...], "has_more": …}` body.

use actix_web::HttpRequest;
use keys_domain::{KeyStatus, ListError, PageLimit, PageRequest};
use serde::Serialize;

use crate::error::ApiError;

/// The query parameters of a list, validated. Unknown parameters are ignored; a parameter
/// given twice is refused, since either reading of it could surprise the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub limit: PageLimit,
    /// As sent: an id, or a ledger cursor (each list parses its own).
    pub starting_after: Option<String>,
    /// Only for `GET /api/v1/keys`; `None` elsewhere or when absent.
    pub status: Option<KeyStatus>,
}

/// Which parameters a list takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Plain,
    WithStatus,
}

impl ListParams {
    /// Reads the request's query string.
    ///
    /// # Errors
    /// `invalid_request` naming `limit`, `starting_after` or `status`.
    pub fn from_request(req: &HttpRequest, kind: ListKind) -> Result<Self, ApiError> {
        Self::parse(req.query_string(), kind)
    }

    /// # Errors
    /// As [`ListParams::from_request`].
    pub fn parse(query: &str, kind: ListKind) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::invalid("the query string is not valid URL encoding"))?;
        let mut params = Self {
            limit: PageLimit::DEFAULT,
            starting_after: None,
            status: None,
        };
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &pairs {
            let name = match name.as_str() {
                "limit" => "limit",
                "starting_after" => "starting_after",
                "status" if kind == ListKind::WithStatus => "status",
                _ => continue,
            };
            if seen.contains(&name) {
                return Err(ApiError::invalid_field(
                    name,
                    format!("{name} must be given at most once"),
                ));
            }
            seen.push(name);
            match name {
                "limit" => params.limit = parse_limit(value)?,
                // Empty is the same as absent (the contract), so a client that fills the
                // parameter from an empty previous cursor reads the first page.
                "starting_after" => {
                    params.starting_after = Some(value.clone()).filter(|v| !v.is_empty());
                }
                _ => {
                    params.status = Some(KeyStatus::parse(value).ok_or_else(|| {
                        ApiError::invalid_field(
                            "status",
                            "status must be one of active, expiring, revoked, expired",
                        )
                    })?);
                }
            }
        }
        Ok(params)
    }

    /// The page to read, with `starting_after` read by `cursor`.
    ///
    /// # Errors
    /// `invalid_request` naming `starting_after` when `cursor` refuses it.
    pub fn page<C, E>(
        &self,
        cursor: impl FnOnce(&str) -> Result<C, E>,
    ) -> Result<PageRequest<C>, ApiError> {
        let after = match &self.starting_after {
            None => None,
            Some(text) => Some(cursor(text).map_err(|_| unknown_cursor())?),
        };
        Ok(PageRequest {
            limit: self.limit,
            after,
        })
    }
}

fn parse_limit(value: &str) -> Result<PageLimit, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .and_then(|n| PageLimit::new(n).ok())
        .ok_or_else(|| {
            ApiError::invalid_field("limit", "limit must be a whole number from 1 to 100")
        })
}

fn unknown_cursor() -> ApiError {
    ApiError::invalid_field(
        "starting_after",
        "starting_after must be the id (or, for the ledger, the cursor) of an item of this list",
    )
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::UnknownCursor => unknown_cursor(),
            ListError::Store(s) => s.into(),
        }
    }
}

/// `{"data": [...], "has_more": true|false}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PageOf<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<ListParams, ApiError>) -> String {
        match r {
            Err(ApiError::InvalidRequest { field: Some(f), .. }) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_valid_values() {
        let p = ListParams::parse("", ListKind::WithStatus).unwrap();
        assert_eq!(p.limit, PageLimit::DEFAULT);
        assert_eq!((p.starting_after, p.status), (None, None));
        let p = ListParams::parse(
            "limit=100&starting_after=key_1&status=revoked&x=1",
            ListKind::WithStatus,
        )
        .unwrap();
        assert_eq!(p.limit.get(), 100);
        assert_eq!(p.starting_after.as_deref(), Some("key_1"));
        assert_eq!(p.status, Some(KeyStatus::Revoked));
        // `status` means nothing on other lists.
        let p = ListParams::parse("status=bogus", ListKind::Plain).unwrap();
        assert_eq!(p.status, None);
    }

    #[test]
    fn bad_values_name_their_field() {
        for q in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1&limit=2",
        ] {
            assert_eq!(field(ListParams::parse(q, ListKind::Plain)), "limit", "{q}");
        }
        for q in ["status=Active", "status=", "status=deleted"] {
            assert_eq!(
                field(ListParams::parse(q, ListKind::WithStatus)),
                "status",
                "{q}"
            );
        }
        // Empty is the same as absent; twice is still refused.
        let p = ListParams::parse("starting_after=", ListKind::Plain).unwrap();
        assert_eq!(p.starting_after, None);
        assert_eq!(
            field(ListParams::parse(
                "starting_after=&starting_after=",
                ListKind::Plain
            )),
            "starting_after"
        );
    }
}
