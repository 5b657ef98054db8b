//! Downloading a file from a customer-given URL: an agent's attachment
//! (Chatwoot's `data_url` redirects to the file's storage) or a `mediaUrl`
//! to send. Redirects are followed by hand so the address guard sees every
//! hop (IP literals here, names in the client's resolver), and the size is
//! bounded.

use std::time::Duration;

use reqwest::{StatusCode, header};

use crate::client::ChatwootHttp;

const MAX_REDIRECTS: usize = 5;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A downloaded file.
pub struct Download {
    pub data: Vec<u8>,
    pub mimetype: String,
    pub file_name: String,
}

/// Why a download failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth trying again (network, server error).
    Transient { error: String },
    /// Will not work (bad URL, forbidden address, gone, too large).
    Rejected { error: String },
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Self::Transient { error } | Self::Rejected { error } => error,
        }
    }
}

/// Guarded, bounded downloads.
#[derive(Clone)]
pub struct Downloader {
    http: ChatwootHttp,
    limit: usize,
}

impl Downloader {
    pub fn new(http: ChatwootHttp, limit: usize) -> Self {
        Self { http, limit }
    }

    pub async fn fetch(&self, data_url: &str) -> Result<Download, Failure> {
        let mut url = url::Url::parse(data_url).map_err(|e| Failure::Rejected {
            error: format!("URL {data_url} is invalid: {e}"),
        })?;
        for _ in 0..=MAX_REDIRECTS {
            self.http
                .policy()
                .check_url(&url)
                .map_err(|p| Failure::Rejected {
                    error: format!("URL points at {p}"),
                })?;
            let response = self
                .http
                .raw()
                .get(url.clone())
                .timeout(DOWNLOAD_TIMEOUT)
                .send()
                .await
                .map_err(|e| Failure::Transient {
                    error: format!("downloading the file: {e}"),
                })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Failure::Rejected {
                        error: "redirect without a Location".to_owned(),
                    })?;
                url = url.join(location).map_err(|e| Failure::Rejected {
                    error: format!("redirect to an invalid URL: {e}"),
                })?;
                continue;
            }
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Err(Failure::Rejected {
                    error: "the file no longer exists in Chatwoot".to_owned(),
                });
            }
            if !status.is_success() {
                return Err(Failure::Transient {
                    error: format!("downloading the file: HTTP {}", status.as_u16()),
                });
            }
            let mimetype = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let data = self.read_limited(response).await?;
            return Ok(Download {
                data,
                mimetype,
                file_name: file_name(data_url),
            });
        }
        Err(Failure::Rejected {
            error: format!("URL redirects more than {MAX_REDIRECTS} times"),
        })
    }

    async fn read_limited(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
        let limit = self.limit;
        let mut data = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Transient {
            error: format!("downloading the file: {e}"),
        })? {
            if data.len() + chunk.len() > limit {
                return Err(Failure::Rejected {
                    error: format!("the file is larger than {limit} bytes"),
                });
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }
}

/// The last path segment of Chatwoot's URL, which is the file's name.
fn file_name(data_url: &str) -> String {
    url::Url::parse(data_url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "attachment".to_owned())
}
