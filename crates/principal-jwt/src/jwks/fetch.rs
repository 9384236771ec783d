//! The one capped HTTP GET used for JWKS documents and discovery metadata.

use std::time::Duration;

use http::{HeaderMap, StatusCode, header};

use super::FetchError;

/// Limits applied to every fetch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_body_bytes: usize,
}

/// A successful answer: `200` with its body, or `304 Not Modified`.
#[derive(Debug)]
pub(crate) enum Answer {
    Body { headers: HeaderMap, body: Vec<u8> },
    NotModified { headers: HeaderMap },
}

/// GETs `url` with a time limit (body included), a body cap and no redirects.
///
/// `if_none_match` is sent as a conditional request; a `304` is only accepted
/// when one was sent.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &reqwest::Url,
    accept: &'static str,
    if_none_match: Option<&str>,
    limits: Limits,
) -> Result<Answer, FetchError> {
    let request = async {
        let mut request = client
            .get(url.clone())
            .header(header::ACCEPT, accept)
            .timeout(limits.timeout);
        if let Some(etag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(transport_error)?;
        read(
            response,
            url,
            if_none_match.is_some(),
            limits.max_body_bytes,
        )
        .await
    };
    tokio::time::timeout(limits.timeout, request)
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

async fn read(
    response: reqwest::Response,
    url: &reqwest::Url,
    conditional: bool,
    cap: usize,
) -> Result<Answer, FetchError> {
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        if !conditional {
            return Err(FetchError::Status(status.as_u16()));
        }
        return Ok(Answer::NotModified {
            headers: response.headers().clone(),
        });
    }
    // A client that follows redirects may have been passed in; refuse the result.
    if status.is_redirection() || response.url() != url {
        return Err(FetchError::Redirected);
    }
    if status != StatusCode::OK {
        return Err(FetchError::Status(status.as_u16()));
    }

    let headers = response.headers().clone();
    let body = read_capped(response, cap).await?;
    Ok(Answer::Body { headers, body })
}

pub(crate) fn transport_error(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Transport(error.without_url().to_string())
    }
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(FetchError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > cap {
            return Err(FetchError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `max-age` of a `Cache-Control` header; `no-cache` and `no-store` count
/// as zero. `None` when the header says nothing about freshness.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                let secs = secs.trim_matches('"').parse::<u64>().ok();
                found = found.or(secs.map(Duration::from_secs));
            }
        }
    }
    found
}

/// The `ETag` of an answer, if it is a well-formed header value.
pub(crate) fn etag(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::ETAG)?.to_str().ok()?;
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::CACHE_CONTROL, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&["public"])), None);
        assert_eq!(
            max_age(&headers(&["public, max-age=300"])),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age(&headers(&["Max-Age=7", "must-revalidate"])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            max_age(&headers(&["max-age=300, no-store"])),
            Some(Duration::ZERO)
        );
        assert_eq!(max_age(&headers(&["max-age=soon"])), None);
    }
}
