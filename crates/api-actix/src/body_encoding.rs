//! Request bodies are never decompressed (docs/api.md): a 33 KB zstd body inflated to 1 GiB
//! before the 64 KiB limit applied. actix-web is built without its decoders, and a body sent
//! with a `Content-Encoding` other than `identity` is refused with 415 before it is read.

use actix_web::http::header::{CONTENT_ENCODING, HeaderMap};

use crate::error::ApiError;

/// # Errors
/// `unsupported_media_type` when any `Content-Encoding` value names a coding.
pub fn refuse_encoded_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let encoded = headers.get_all(CONTENT_ENCODING).any(|value| {
        value.to_str().map_or(true, |v| {
            v.split(',')
                .map(str::trim)
                .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
        })
    });
    if encoded {
        Err(ApiError::UnsupportedMediaType)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CONTENT_ENCODING, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_identity_passes() {
        assert!(refuse_encoded_body(&with(&[])).is_ok());
        assert!(refuse_encoded_body(&with(&["identity"])).is_ok());
        assert!(refuse_encoded_body(&with(&["Identity"])).is_ok());
        for coding in [
            &["gzip"][..],
            &["zstd"],
            &["br"],
            &["identity, gzip"],
            &["identity", "deflate"],
        ] {
            assert!(
                matches!(
                    refuse_encoded_body(&with(coding)),
                    Err(ApiError::UnsupportedMediaType)
                ),
                "{coding:?}"
            );
        }
    }
}
