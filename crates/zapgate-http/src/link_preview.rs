//! Link previews for `message/text` (`linkPreview: true`): the first
//! http(s) link in the text is fetched through the address guard
//! ([`Downloader`], the same guarded and bounded client `mediaUrl` uses),
//! its page's title, description and image are read from the `<head>`,
//! and the image becomes a small JPEG thumbnail. Everything is bounded:
//! [`PAGE_LIMIT`] bytes of HTML, [`IMAGE_LIMIT`] bytes of image,
//! [`PREVIEW_TIME`] in all, [`PREVIEWS_IN_FLIGHT`] at once. A preview is a
//! nicety: whatever fails, the text goes out without one (or without its
//! image), and the reason is logged, not answered.
//!
//! The HTML is read by a small scanner of the `<head>`, not an HTML parser:
//! a preview needs the `<title>` and the attributes of `<meta>` tags, which
//! sit in a flat list before `<body>`. The scanner skips comments, scripts
//! and styles, decodes entities, and never reads past the bytes fetched; a
//! full HTML5 parser (html5ever and its tree) would be a large dependency
//! for those few tags.

use std::{borrow::Cow, io::Cursor, time::Duration};

use image::{ImageReader, Limits, codecs::jpeg::JpegEncoder};
use tokio::{sync::Semaphore, time::Instant};
use zapgate_chatwoot::download::{Download, Downloader};
use zapgate_core::whatsapp::{LinkPreview, Thumbnail};

/// How much of the page is read: its `<head>` comes first.
pub const PAGE_LIMIT: usize = 512 * 1024;
/// The largest image made a thumbnail; a larger one is skipped.
pub const IMAGE_LIMIT: usize = 1024 * 1024;
/// The whole preview (page and image) within this, or what is ready by then.
pub const PREVIEW_TIME: Duration = Duration::from_secs(5);
/// Previews fetched at once by this process; a send beyond them goes
/// without a preview rather than wait.
pub const PREVIEWS_IN_FLIGHT: usize = 16;
/// The thumbnail fits in a square of this side, as WhatsApp's own (Baileys
/// uses 192 too).
const THUMBNAIL_SIDE: u32 = 192;
const THUMBNAIL_QUALITY: u8 = 60;
/// Decoding limits: a small file can claim huge dimensions.
const MAX_DIMENSION: u32 = 8192;
const MAX_DECODE_BYTES: u64 = 32 * 1024 * 1024;
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 1024;

static IN_FLIGHT: Semaphore = Semaphore::const_new(PREVIEWS_IN_FLIGHT);

/// The preview of the first link in `text`, or `None` (no link, or it
/// could not be previewed: logged).
pub async fn for_text(downloader: &Downloader, text: &str) -> Option<LinkPreview> {
    let Some(link) = first_link(text) else {
        tracing::debug!("linkPreview: the text has no http(s) link; sent without a preview");
        return None;
    };
    let url = url::Url::parse(link).ok()?;
    // The host only at info: a link's path or query may carry a secret.
    let host = url.host_str().unwrap_or_default().to_owned();
    let skipped = |what: &str, detail: &str| {
        tracing::info!(%host, "linkPreview: {what}");
        if !detail.is_empty() {
            tracing::debug!(%host, detail, "linkPreview: why");
        }
    };
    let Ok(_permit) = IN_FLIGHT.try_acquire() else {
        skipped("too many previews in flight; sent without one", "");
        return None;
    };
    let deadline = Instant::now() + PREVIEW_TIME;
    let (meta, base) = match tokio::time::timeout_at(deadline, page(downloader, &url)).await {
        Ok(Ok(page)) => page,
        Ok(Err(why)) => {
            skipped("the page could not be read; sent without a preview", &why);
            return None;
        }
        Err(_) => {
            skipped("the page took too long; sent without a preview", "");
            return None;
        }
    };
    let image = meta.image.as_deref().and_then(|i| base.join(i).ok());
    let thumbnail = match image {
        None => None,
        Some(image) => match tokio::time::timeout_at(deadline, thumbnail(downloader, &image)).await
        {
            Ok(Ok(thumbnail)) => Some(thumbnail),
            Ok(Err(why)) => {
                skipped("the image could not be used; sent without it", &why);
                None
            }
            Err(_) => {
                skipped("the image took too long; sent without it", "");
                None
            }
        },
    };
    if meta.title.is_none() && meta.description.is_none() && thumbnail.is_none() {
        skipped(
            "the page has no title, description or image; sent without a preview",
            "",
        );
        return None;
    }
    Some(LinkPreview {
        url: link.to_owned(),
        title: meta.title,
        description: meta.description,
        thumbnail,
    })
}

/// The page's metadata, and the URL its relative links are relative to.
async fn page(downloader: &Downloader, url: &url::Url) -> Result<(PageMeta, url::Url), String> {
    let Download {
        data,
        mimetype,
        url: base,
        ..
    } = downloader
        .with_limit(PAGE_LIMIT)
        .fetch_head(url.as_str())
        .await
        .map_err(|e| e.message().to_owned())?;
    if !matches!(
        mimetype.to_ascii_lowercase().as_str(),
        "text/html" | "application/xhtml+xml"
    ) {
        return Err(format!("the link is {mimetype}, not a web page"));
    }
    Ok((scan(&decode(&data)), base))
}

/// The image at `url` as a thumbnail.
async fn thumbnail(downloader: &Downloader, url: &url::Url) -> Result<Thumbnail, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the image is not an http(s) URL".to_owned());
    }
    let image = downloader
        .with_limit(IMAGE_LIMIT)
        .fetch(url.as_str())
        .await
        .map_err(|e| e.message().to_owned())?;
    // Decoding is CPU work: off the async workers.
    tokio::task::spawn_blocking(move || make_thumbnail(&image.data))
        .await
        .map_err(|e| e.to_string())?
}

/// `data` (PNG, JPEG or WebP) fitted into [`THUMBNAIL_SIDE`], as a JPEG.
pub fn make_thumbnail(data: &[u8]) -> Result<Thumbnail, String> {
    let mut reader = ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| e.to_string())?;
    // JPEG has no alpha: transparent pixels become black unless flattened.
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgba8();
    let mut rgb = image::RgbImage::new(small.width(), small.height());
    for (out, px) in rgb.pixels_mut().zip(small.pixels()) {
        let [r, g, b, a] = px.0;
        let blend =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        *out = image::Rgb([blend(r), blend(g), blend(b)]);
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| e.to_string())?;
    Ok(Thumbnail {
        jpeg: jpeg.into(),
        width: rgb.width(),
        height: rgb.height(),
    })
}

/// The first http(s) link in `text`, as written there (WhatsApp's
/// `matchedText`): from `http://` or `https://` at the start of a word to
/// the next space, less trailing punctuation that ends a sentence.
pub fn first_link(text: &str) -> Option<&str> {
    // ASCII lowercasing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("http") {
        let start = from + at;
        from = start + 4;
        let rest = &lower[start..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            continue;
        }
        if text[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        {
            continue;
        }
        let len = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(text.len() - start);
        let link = trim_link(&text[start..start + len]);
        if url::Url::parse(link).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty())) {
            return Some(link);
        }
    }
    None
}

/// Drops what ends a sentence after a link: `.`, `,`, `!`... and a closing
/// bracket the link did not open.
fn trim_link(mut link: &str) -> &str {
    loop {
        let Some(last) = link.chars().next_back() else {
            return link;
        };
        let opens = |open: char| link.matches(open).count() >= link.matches(last).count();
        let trailing = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*' | '_' | '~' => true,
            ')' => !opens('('),
            ']' => !opens('['),
            '}' => !opens('{'),
            _ => false,
        };
        if !trailing {
            return link;
        }
        link = &link[..link.len() - last.len_utf8()];
    }
}

/// The page's text: UTF-8 (a character cut by the size bound dropped);
/// Latin-1 when the page declares it (or Windows-1252, which differs only
/// in rarely used punctuation), decoded byte for byte; else UTF-8 with the
/// bad bytes replaced.
fn decode(data: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(data) {
        Ok(text) => text.into(),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&data[..e.valid_up_to()])
            .unwrap_or_default()
            .into(),
        Err(_) if declares_latin1(data) => data.iter().map(|&b| char::from(b)).collect(),
        Err(_) => String::from_utf8_lossy(data),
    }
}

/// Whether the page's first bytes declare a Latin-1 charset.
fn declares_latin1(data: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&data[..data.len().min(4096)]).to_ascii_lowercase();
    head.match_indices("charset").any(|(at, _)| {
        let declared: String = head[at..].chars().take(24).collect();
        ["8859-1", "latin1", "latin-1", "1252"]
            .iter()
            .any(|c| declared.contains(c))
    })
}

/// What a preview takes from a page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PageMeta {
    pub title: Option<String>,
    pub description: Option<String>,
    /// As written in the page: maybe relative.
    pub image: Option<String>,
}

/// The `<title>` and `<meta>` tags of the page's head: Open Graph first
/// (`og:title`, `og:description`, `og:image`), then Twitter's cards, then
/// `<title>` and `<meta name="description">`.
pub fn scan(html: &str) -> PageMeta {
    #[derive(Default)]
    struct Found {
        og_title: Option<String>,
        og_description: Option<String>,
        og_image: Option<String>,
        twitter_title: Option<String>,
        twitter_description: Option<String>,
        twitter_image: Option<String>,
        title: Option<String>,
        description: Option<String>,
    }
    let mut found = Found::default();
    let mut at = 0;
    while let Some(lt) = html[at..].find('<') {
        let start = at + lt;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(html.len(), |end| start + end + 3);
            continue;
        }
        let name_len = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '/' || c == '!'))
            .unwrap_or(rest.len() - 1);
        let name = rest[1..1 + name_len].to_ascii_lowercase();
        let (attributes, after) = tag_attributes(html, start + 1 + name_len);
        at = after;
        match name.as_str() {
            "body" | "/head" => break,
            "script" | "style" | "noscript" | "template" => {
                at = closing(html, at, &name).unwrap_or(html.len());
            }
            "title" if found.title.is_none() => {
                let end = closing_start(html, at, "title").unwrap_or(html.len());
                found.title = clean(&html[at..end], MAX_TITLE);
                at = closing(html, at, "title").unwrap_or(html.len());
            }
            "meta" => {
                let key = attributes
                    .iter()
                    .find(|(k, _)| k == "property" || k == "name")
                    .map(|(_, v)| v.to_ascii_lowercase());
                let content = attributes
                    .iter()
                    .find(|(k, _)| k == "content")
                    .map(|(_, v)| v.as_str());
                let (Some(key), Some(content)) = (key, content) else {
                    continue;
                };
                let slot = match key.as_str() {
                    "og:title" => (&mut found.og_title, MAX_TITLE),
                    "og:description" => (&mut found.og_description, MAX_DESCRIPTION),
                    "og:image" | "og:image:url" | "og:image:secure_url" => {
                        (&mut found.og_image, usize::MAX)
                    }
                    "twitter:title" => (&mut found.twitter_title, MAX_TITLE),
                    "twitter:description" => (&mut found.twitter_description, MAX_DESCRIPTION),
                    "twitter:image" | "twitter:image:src" => (&mut found.twitter_image, usize::MAX),
                    "description" => (&mut found.description, MAX_DESCRIPTION),
                    _ => continue,
                };
                if slot.0.is_none() {
                    *slot.0 = clean(content, slot.1);
                }
            }
            _ => {}
        }
    }
    PageMeta {
        title: found.og_title.or(found.twitter_title).or(found.title),
        description: found
            .og_description
            .or(found.twitter_description)
            .or(found.description),
        image: found.og_image.or(found.twitter_image),
    }
}

/// The attributes of the tag whose name ends at `at` (names lowercased,
/// values entity-decoded), and where the tag ends.
fn tag_attributes(html: &str, mut at: usize) -> (Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let mut attributes = Vec::new();
    loop {
        while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b'/') {
            at += 1;
        }
        if at >= bytes.len() {
            return (attributes, at);
        }
        if bytes[at] == b'>' {
            return (attributes, at + 1);
        }
        let name_start = at;
        while at < bytes.len()
            && !bytes[at].is_ascii_whitespace()
            && !matches!(bytes[at], b'=' | b'>' | b'/')
        {
            at += 1;
        }
        let name = html[name_start..at].to_ascii_lowercase();
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let mut value = String::new();
        if at < bytes.len() && bytes[at] == b'=' {
            at += 1;
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            let (raw, next) = match bytes.get(at) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let end = html[at + 1..]
                        .find(char::from(quote))
                        .map_or(html.len(), |e| at + 1 + e);
                    (&html[at + 1..end], (end + 1).min(html.len()))
                }
                _ => {
                    let end = html[at..]
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .map_or(html.len(), |e| at + e);
                    (&html[at..end], end)
                }
            };
            value = entities(raw);
            at = next;
        }
        // A stray `=` has no name: its value was stepped over.
        if !name.is_empty() {
            attributes.push((name, value));
        }
    }
}

/// Where `</name` starts at or after `at`, case-insensitively.
fn closing_start(html: &str, at: usize, name: &str) -> Option<usize> {
    let needle = format!("</{name}");
    let bytes = html.as_bytes();
    (at..bytes.len().saturating_sub(needle.len() - 1)).find(|&i| {
        bytes[i] == b'<' && bytes[i..i + needle.len()].eq_ignore_ascii_case(needle.as_bytes())
    })
}

/// Just past the `>` of `</name ...>` at or after `at`.
fn closing(html: &str, at: usize, name: &str) -> Option<usize> {
    let start = closing_start(html, at, name)?;
    Some(
        html[start..]
            .find('>')
            .map_or(html.len(), |e| start + e + 1),
    )
}

/// Entities decoded, whitespace collapsed, at most `max` characters;
/// `None` when nothing is left.
fn clean(raw: &str, max: usize) -> Option<String> {
    let decoded = entities(raw);
    let text: String = decoded
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// HTML character references: the named ones pages use in titles, and
/// numeric ones. Anything else stays as written.
fn entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| Some((reference(&rest[1..1 + end])?, end + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, Rgba, RgbaImage};

    use super::*;

    #[test]
    fn the_first_http_link_is_found_as_written() {
        assert_eq!(
            first_link("Veja https://loja.example.com/p/42?cor=azul, e responda."),
            Some("https://loja.example.com/p/42?cor=azul")
        );
        assert_eq!(
            first_link("(HTTP://Example.com/a_(b))."),
            Some("HTTP://Example.com/a_(b)")
        );
        assert_eq!(
            first_link("a http://x.example b https://y.example"),
            Some("http://x.example")
        );
        assert_eq!(
            first_link("Olá! 👋 https://ex.example/ç"),
            Some("https://ex.example/ç")
        );
        assert_eq!(first_link("nohttps://x.example"), None);
        assert_eq!(
            first_link("http:// nada, ftp://x.example, www.x.example"),
            None
        );
        assert_eq!(first_link("só texto"), None);
    }

    #[test]
    fn open_graph_wins_and_the_head_ends_the_scan() {
        let page = r#"<!doctype html><html><head>
            <meta charset="utf-8">
            <!-- <meta property="og:title" content="commented out"> -->
            <title>  Loja &amp; Cia |
                Tênis </title>
            <script>var s = '<meta property="og:image" content="/bad.png">';</script>
            <META name="description" content="Plain description">
            <meta content='Tênis de corrida &#8211; azul' property='og:title' />
            <meta property=og:image content=/img/tenis.png>
            <meta property="og:description" content="Frete &quot;grátis&quot;&nbsp;hoje &#x1F45F;">
            </head><body><meta property="og:title" content="in the body"></body></html>"#;
        assert_eq!(
            scan(page),
            PageMeta {
                title: Some("Tênis de corrida – azul".to_owned()),
                description: Some("Frete \"grátis\" hoje 👟".to_owned()),
                image: Some("/img/tenis.png".to_owned()),
            }
        );
    }

    #[test]
    fn the_title_tag_and_meta_description_are_the_fallback() {
        let page = "<html><head><title>Só o título</title>\
            <meta name=\"twitter:image\" content=\"https://cdn.example/x.jpg\">\
            <meta name=\"description\" content=\"Uma descrição\"></head>";
        assert_eq!(
            scan(page),
            PageMeta {
                title: Some("Só o título".to_owned()),
                description: Some("Uma descrição".to_owned()),
                image: Some("https://cdn.example/x.jpg".to_owned()),
            }
        );
        assert_eq!(scan("<html><body>nothing</body>"), PageMeta::default());
        // A page cut by the size bound mid-tag still yields what came before.
        assert_eq!(
            scan("<title>Cut</title><meta property=\"og:description\" content=\"unfinis").title,
            Some("Cut".to_owned())
        );
    }

    #[test]
    fn long_titles_are_bounded_and_latin1_pages_decode() {
        let long = format!("<title>{}</title>", "a".repeat(10_000));
        assert_eq!(scan(&long).title.unwrap().len(), MAX_TITLE);
        let latin1 = b"<meta charset=iso-8859-1><title>Promo\xe7\xe3o</title>";
        assert_eq!(scan(&decode(latin1)).title.as_deref(), Some("Promoção"));
        // UTF-8 cut in the middle of a character by the size bound.
        let cut = "<title>Promoção</title>".as_bytes();
        assert_eq!(decode(&cut[..13]), "<title>Promo");
    }

    #[test]
    fn images_become_small_jpegs_on_white() {
        let image = RgbaImage::from_pixel(1200, 630, Rgba([10, 120, 200, 0]));
        let mut png = Cursor::new(Vec::new());
        image.write_to(&mut png, ImageFormat::Png).unwrap();
        let thumbnail = make_thumbnail(png.get_ref()).unwrap();
        assert_eq!((thumbnail.width, thumbnail.height), (192, 101));
        assert_eq!(
            image::guess_format(&thumbnail.jpeg).unwrap(),
            ImageFormat::Jpeg
        );
        let decoded = image::load_from_memory(&thumbnail.jpeg).unwrap().to_rgb8();
        // Fully transparent: white, not black.
        assert!(decoded.get_pixel(96, 50).0.iter().all(|&c| c > 240));
        assert!(make_thumbnail(b"not an image").is_err());
    }
}
