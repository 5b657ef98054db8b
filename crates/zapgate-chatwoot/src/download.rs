//! Downloading a file from a customer-given URL: an agent's attachment
//! (Chatwoot's `data_url` redirects to the file's storage) or a `mediaUrl`
//! to send. Redirects are followed by hand so the address guard sees every
//! hop (IP literals here, names in the client's resolver), and the size is
//! bounded: past the limit a file is refused ([`Downloader::fetch`]), or
//! only its beginning is read ([`Downloader::fetch_head`], for a web page
//! whose `<head>` is all a link preview needs).

use std::time::Duration;

use reqwest::{StatusCode, header};

use crate::{
    client::{self, ChatwootError, ChatwootHttp},
    guard::AddressPolicy,
};

const MAX_REDIRECTS: usize = 5;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A downloaded file.
pub struct Download {
    pub data: Vec<u8>,
    pub mimetype: String,
    pub file_name: String,
    /// Where the file was found, after redirects: what a relative link in
    /// it is relative to.
    pub url: url::Url,
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

/// What to do with a file larger than the limit.
#[derive(Clone, Copy)]
enum Overflow {
    Refuse,
    /// Keep the first bytes, read no more.
    Truncate,
}

impl Downloader {
    pub fn new(http: ChatwootHttp, limit: usize) -> Self {
        Self { http, limit }
    }

    /// The same client with another size limit.
    pub fn with_limit(&self, limit: usize) -> Self {
        Self {
            http: self.http.clone(),
            limit,
        }
    }

    /// The whole file; one larger than the limit is refused.
    pub async fn fetch(&self, data_url: &str) -> Result<Download, Failure> {
        self.fetch_bounded(data_url, Overflow::Refuse).await
    }

    /// At most the first `limit` bytes of the file: the rest is never read.
    pub async fn fetch_head(&self, data_url: &str) -> Result<Download, Failure> {
        self.fetch_bounded(data_url, Overflow::Truncate).await
    }

    async fn fetch_bounded(&self, data_url: &str, overflow: Overflow) -> Result<Download, Failure> {
        let mut url = url::Url::parse(data_url).map_err(|e| Failure::Rejected {
            error: format!("URL {data_url} is invalid: {e}"),
        })?;
        for _ in 0..=MAX_REDIRECTS {
            checked(self.http.policy(), &url)?;
            let response = self
                .http
                .raw()
                .get(url.clone())
                .timeout(DOWNLOAD_TIMEOUT)
                .send()
                .await
                .map_err(|e| match client::classify(e) {
                    // A name resolving to a forbidden address, refused by
                    // the guard's resolver: no retry will change that.
                    ChatwootError::Private(p) => Failure::Rejected {
                        error: format!("URL points at {p}"),
                    },
                    other => Failure::Transient {
                        error: format!("downloading the file: {other}"),
                    },
                })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok());
                url = next_hop(&url, location)?;
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
            let data = self.read_limited(response, overflow).await?;
            return Ok(Download {
                data,
                mimetype,
                file_name: file_name(data_url),
                url,
            });
        }
        Err(Failure::Rejected {
            error: format!("URL redirects more than {MAX_REDIRECTS} times"),
        })
    }

    async fn read_limited(
        &self,
        mut response: reqwest::Response,
        overflow: Overflow,
    ) -> Result<Vec<u8>, Failure> {
        let limit = self.limit;
        let mut data = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Transient {
            error: format!("downloading the file: {e}"),
        })? {
            if data.len() + chunk.len() > limit {
                if let Overflow::Truncate = overflow {
                    let room = limit - data.len();
                    data.extend_from_slice(&chunk[..room]);
                    // Dropping the response closes the connection: the
                    // rest is never read.
                    return Ok(data);
                }
                return Err(Failure::Rejected {
                    error: format!("the file is larger than {limit} bytes"),
                });
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }
}

/// Where a redirect from `from` leads; checked by the next turn of the loop.
fn next_hop(from: &url::Url, location: Option<&str>) -> Result<url::Url, Failure> {
    let location = location.ok_or_else(|| Failure::Rejected {
        error: "redirect without a Location".to_owned(),
    })?;
    from.join(location).map_err(|e| Failure::Rejected {
        error: format!("redirect to an invalid URL: {e}"),
    })
}

/// Every hop passes the guard before it is requested: an IP literal here,
/// a name in the client's resolver when it connects.
fn checked(policy: AddressPolicy, url: &url::Url) -> Result<(), Failure> {
    policy.check_url(url).map_err(|p| Failure::Rejected {
        error: format!("URL points at {p}"),
    })
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

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A file server on loopback: `/file` answers, `/to-literal` and
    /// `/to-name` redirect to `/file` by loopback IP and by `localhost`.
    async fn file_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = vec![0u8; 4096];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let response = match path.as_str() {
                    "/file" => {
                        count.fetch_add(1, Ordering::SeqCst);
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                            .to_owned()
                    }
                    "/big" => "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: 10\r\nconnection: close\r\n\r\n<head>....".to_owned(),
                    "/to-literal" => format!(
                        "HTTP/1.1 302 Found\r\nlocation: http://{addr}/file\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    ),
                    _ => format!(
                        "HTTP/1.1 302 Found\r\nlocation: http://localhost:{}/file\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        addr.port()
                    ),
                };
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (addr, served)
    }

    #[tokio::test]
    async fn a_redirect_to_a_private_address_is_refused_at_its_hop() {
        let (addr, served) = file_server().await;
        let strict = AddressPolicy {
            allow_private: false,
        };
        // `files.example.com` plays a public host (it skips the guard).
        let downloader = Downloader::new(
            ChatwootHttp::resolving(strict, "files.example.com", addr),
            1024,
        );
        let public = format!("http://files.example.com:{}", addr.port());
        let first_hop = downloader.fetch(&format!("{public}/file")).await;
        assert_eq!(first_hop.ok().map(|d| d.data), Some(b"ok".to_vec()));

        for (path, refused) in [
            ("/to-literal", "127.0.0.1"),
            ("/to-name", "private address"),
        ] {
            match downloader.fetch(&format!("{public}{path}")).await {
                Err(Failure::Rejected { error }) => {
                    assert!(error.contains("private address"), "{path}: {error}");
                    assert!(error.contains(refused), "{path}: {error}");
                }
                Err(other) => panic!("{path}: not refused for good: {other:?}"),
                Ok(_) => panic!("{path}: the redirect to loopback was followed"),
            }
        }
        assert_eq!(
            served.load(Ordering::SeqCst),
            1,
            "a redirect reached the file"
        );
    }

    #[tokio::test]
    async fn a_head_fetch_keeps_the_first_bytes_where_a_fetch_refuses() {
        let (addr, _) = file_server().await;
        let open = AddressPolicy {
            allow_private: true,
        };
        let http = ChatwootHttp::new(open, std::time::Duration::from_secs(10), false).unwrap();
        let downloader = Downloader::new(http, 1024).with_limit(6);
        let url = format!("http://{addr}/big");
        match downloader.fetch(&url).await {
            Err(Failure::Rejected { error }) => assert!(error.contains("larger than 6"), "{error}"),
            other => panic!("not refused: {:?}", other.map(|d| d.data)),
        }
        let head = downloader.fetch_head(&url).await.unwrap();
        assert_eq!(head.data, b"<head>");
        assert_eq!(head.mimetype, "text/html");
        assert_eq!(head.url.as_str(), url);
    }
}
