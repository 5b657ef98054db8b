//! Renders a login payload as a QR code PNG. The API hands clients a
//! `data:image/png` URL they can drop into an `<img>` tag, so the code has to
//! be a real, scannable QR code rather than a placeholder picture.

use base64::{Engine, engine::general_purpose::STANDARD};
use qrcode::{Color, QrCode};
use zapgate_core::{Error, Result};

/// Light modules around the symbol; the QR specification asks for four so
/// scanners can find the finder patterns.
pub const QUIET_ZONE: usize = 4;
/// Pixels per module: small enough for a short data URL, large enough for a
/// phone camera to read off a screen.
pub const MODULE_PX: usize = 4;

const DARK: u8 = 0x00;
const LIGHT: u8 = 0xFF;

/// The QR code of `payload` as an 8-bit grayscale PNG.
pub fn png(payload: &str) -> Result<Vec<u8>> {
    let code = QrCode::new(payload.as_bytes()).map_err(|e| Error::internal(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;

    let mut pixels = vec![LIGHT; side * side];
    for (y, row) in pixels.chunks_exact_mut(side).enumerate() {
        let my = y / MODULE_PX;
        if !(QUIET_ZONE..QUIET_ZONE + modules).contains(&my) {
            continue;
        }
        for (x, px) in row.iter_mut().enumerate() {
            let mx = x / MODULE_PX;
            if (QUIET_ZONE..QUIET_ZONE + modules).contains(&mx)
                && colors[(my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)] == Color::Dark
            {
                *px = DARK;
            }
        }
    }

    let side_u32 = u32::try_from(side).map_err(Error::internal)?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(Error::internal)?;
    writer.write_image_data(&pixels).map_err(Error::internal)?;
    writer.finish().map_err(Error::internal)?;
    Ok(out)
}

/// The QR code of `payload` as a `data:image/png;base64,...` URL.
pub fn png_data_url(payload: &str) -> Result<String> {
    Ok(format!(
        "data:image/png;base64,{}",
        STANDARD.encode(png(payload)?)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_pixels_match_the_module_matrix() {
        let payload = "2@abc,def,ghi,jkl";
        let bytes = png(payload).unwrap();

        let reader = png::Decoder::new(bytes.as_slice()).read_info().unwrap();
        let mut reader = reader;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);

        let code = QrCode::new(payload.as_bytes()).unwrap();
        let modules = code.width();
        let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
        assert_eq!(info.width as usize, side);
        assert_eq!(info.height as usize, side);

        let colors = code.to_colors();
        let stride = info.line_size;
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = (x / MODULE_PX, y / MODULE_PX);
                let inside = (QUIET_ZONE..QUIET_ZONE + modules).contains(&mx)
                    && (QUIET_ZONE..QUIET_ZONE + modules).contains(&my);
                let dark = inside
                    && colors[(my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)] == Color::Dark;
                let expected = if dark { DARK } else { LIGHT };
                assert_eq!(buf[y * stride + x], expected, "pixel ({x},{y})");
            }
        }
    }

    #[test]
    fn data_url_is_base64_png() {
        let url = png_data_url("hello").unwrap();
        let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
        let bytes = STANDARD.decode(b64).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}
