//! Stickers as WhatsApp wants them: WebP, 512 x 512. A WebP is sent as
//! given (it may be animated); a PNG or JPEG is fitted into a transparent
//! 512 x 512 square and encoded as lossless WebP.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbaImage, imageops::FilterType};
use zapgate_core::Error;

/// The side of a WhatsApp sticker, in pixels.
const SIDE: u32 = 512;
/// Decoding limits: a small file can claim huge dimensions.
const MAX_DIMENSION: u32 = 8192;
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// The sticker's WebP bytes for an image in `data`.
pub fn to_webp(data: &[u8]) -> Result<Vec<u8>, Error> {
    let unsupported =
        || Error::bad_request("invalid body: imageUrl must be a WebP, PNG or JPEG image");
    match image::guess_format(data).map_err(|_| unsupported())? {
        ImageFormat::WebP => Ok(data.to_vec()),
        format @ (ImageFormat::Png | ImageFormat::Jpeg) => convert(data, format),
        _ => Err(unsupported()),
    }
}

fn convert(data: &[u8], format: ImageFormat) -> Result<Vec<u8>, Error> {
    let unreadable =
        |e: image::ImageError| Error::bad_request(format!("invalid body: imageUrl: {e}"));
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(unreadable)?;
    let fitted = image.resize(SIDE, SIDE, FilterType::Lanczos3).to_rgba8();
    let mut square = RgbaImage::new(SIDE, SIDE);
    let x = i64::from((SIDE - fitted.width()) / 2);
    let y = i64::from((SIDE - fitted.height()) / 2);
    image::imageops::overlay(&mut square, &fitted, x, y);
    let mut out = Cursor::new(Vec::new());
    square
        .write_to(&mut out, ImageFormat::WebP)
        .map_err(Error::internal)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use image::{GenericImageView, Rgba};

    use super::*;

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image = RgbaImage::from_pixel(width, height, Rgba([200, 30, 30, 255]));
        let mut out = Cursor::new(Vec::new());
        let image = image::DynamicImage::ImageRgba8(image);
        let image = if format == ImageFormat::Jpeg {
            image::DynamicImage::ImageRgb8(image.to_rgb8())
        } else {
            image
        };
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_wide_png_is_fitted_into_a_transparent_square() {
        let webp = to_webp(&encoded(1024, 256, ImageFormat::Png)).unwrap();
        assert_eq!(image::guess_format(&webp).unwrap(), ImageFormat::WebP);
        let sticker = image::load_from_memory(&webp).unwrap();
        assert_eq!(sticker.dimensions(), (512, 512));
        // 1024x256 scales to 512x128, centred: rows 192..320 are the picture.
        assert_eq!(sticker.get_pixel(256, 256), Rgba([200, 30, 30, 255]));
        assert_eq!(sticker.get_pixel(256, 10)[3], 0);
    }

    #[test]
    fn a_jpeg_is_converted() {
        let webp = to_webp(&encoded(300, 300, ImageFormat::Jpeg)).unwrap();
        let sticker = image::load_from_memory(&webp).unwrap();
        assert_eq!(sticker.dimensions(), (512, 512));
    }

    #[test]
    fn a_webp_goes_as_it_is() {
        let webp = to_webp(&encoded(64, 64, ImageFormat::Png)).unwrap();
        assert_eq!(to_webp(&webp).unwrap(), webp);
    }

    #[test]
    fn other_bytes_are_refused() {
        assert!(matches!(to_webp(b"GIF89a...."), Err(Error::BadRequest(_))));
        assert!(matches!(to_webp(b"hello"), Err(Error::BadRequest(_))));
    }
}
