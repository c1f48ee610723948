//! GitHub's secret-scanning partner format: the report body and the label array.

use keys_domain::use_cases::{LabelledToken, ReportedToken, TokenLabel};
use serde::{Deserialize, Serialize};

/// One match as GitHub posts it. `url` and `source` are optional: they only go into the
/// trail and the email.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReportedMatch {
    token: String,
    #[serde(rename = "type")]
    token_type: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

/// Reads the (already verified) body: a JSON array of matches.
///
/// # Errors
/// A message for the 400 when the body is not such an array; it never quotes a token.
pub fn parse_report(body: &[u8]) -> Result<Vec<ReportedToken>, String> {
    let matches: Vec<ReportedMatch> = serde_json::from_slice(body).map_err(|e| {
        // serde's message may quote a value, which may be a key: say only where it went wrong.
        format!(
            "the body must be a JSON array of {{\"token\", \"type\", \"url\", \"source\"}} objects (error at line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    Ok(matches
        .into_iter()
        .map(|m| ReportedToken {
            token: m.token,
            token_type: m.token_type,
            url: m.url.unwrap_or_default(),
            source: m.source.unwrap_or_default(),
        })
        .collect())
}

/// One entry of the answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenLabelObject<'a> {
    pub token_hash: &'a str,
    pub token_type: &'a str,
    pub label: &'static str,
}

impl<'a> TokenLabelObject<'a> {
    #[must_use]
    pub fn of(t: &'a LabelledToken) -> Self {
        Self {
            token_hash: &t.token_hash,
            token_type: &t.token_type,
            label: match t.label {
                TokenLabel::TruePositive => "true_positive",
                TokenLabel::FalsePositive => "false_positive",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_github_s_shape_and_refuses_others_without_quoting() {
        let ok = parse_report(
            br#"[{"token":"t1","type":"jobtactics_api_key","url":"https://github.com/x","source":"content"},{"token":"t2","type":"x"}]"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].url, "https://github.com/x");
        assert_eq!(ok[1].source, "");
        assert!(parse_report(b"[]").unwrap().is_empty());
        for bad in [
            &b"{}"[..],
            b"[{\"type\":\"x\"}]",
            b"[{\"token\":5,\"type\":\"x\"}]",
            b"not json",
            b"",
        ] {
            let e = parse_report(bad).unwrap_err();
            assert!(e.contains("JSON array"), "{e}");
        }
        let e = parse_report(br#"[{"token":"jt_sk_secretvalue","type":7}]"#).unwrap_err();
        assert!(!e.contains("jt_sk_secretvalue"));
    }
}
