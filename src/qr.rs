//! Drawing the login QR code in a terminal, so a user on a headless server can
//! scan it over SSH.
//!
//! The API hands out the QR code as a PNG (or, on some backends, as the code's
//! text). A PNG scaled by the API does not map cleanly onto terminal cells, so
//! the code is read back from the image and drawn again, two modules per
//! character cell, with the quiet zone scanners need.

use qrcode::render::unicode::Dense1x2;

use crate::api::QrCode;

/// Why a QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The PNG could not be decoded.
    #[error("the QR image is not a readable PNG: {0}")]
    Image(String),
    /// The image holds no QR code that could be read.
    #[error(
        "no QR code could be read from the image; write it to a file with --out qr.png instead"
    )]
    NotFound,
    /// The content is too long for a QR code.
    #[error("the QR content cannot be drawn: {0}")]
    Encode(String),
}

/// The QR code as terminal text: dark modules drawn with block characters.
pub fn render_terminal(qr: &QrCode) -> Result<String, QrError> {
    let content = match qr {
        QrCode::Content(text) => text.clone(),
        QrCode::Png(bytes) => read_png(bytes)?,
    };
    let code =
        qrcode::QrCode::new(content.as_bytes()).map_err(|e| QrError::Encode(e.to_string()))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Reads the content of the QR code in a PNG image.
pub fn read_png(bytes: &[u8]) -> Result<String, QrError> {
    let (width, height, luma) = decode_png_luma(bytes)?;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| luma[y * width + x]);
    image
        .detect_grids()
        .into_iter()
        .find_map(|grid| grid.decode().ok().map(|(_, content)| content))
        .ok_or(QrError::NotFound)
}

/// Decodes any PNG colour type into one grey byte per pixel.
fn decode_png_luma(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), QrError> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| QrError::Image(e.to_string()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| QrError::Image("the image is too large".into()))?;
    if size > 64 << 20 {
        return Err(QrError::Image("the image is too large".into()));
    }
    let mut buffer = vec![0; size];
    let info = reader
        .next_frame(&mut buffer)
        .map_err(|e| QrError::Image(e.to_string()))?;
    let (width, height) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let luma = buffer[..info.buffer_size()]
        .chunks(info.line_size)
        .take(height)
        .flat_map(|row| {
            row.chunks(channels).take(width).map(move |px| {
                let grey = match channels {
                    1 | 2 => px[0],
                    _ => {
                        ((u16::from(px[0]) * 3 + u16::from(px[1]) * 6 + u16::from(px[2])) / 10)
                            as u8
                    }
                };
                // Transparent pixels are paper, not ink.
                let alpha = match channels {
                    2 => px[1],
                    4 => px[3],
                    _ => 255,
                };
                if alpha < 128 { 255 } else { grey }
            })
        })
        .collect();
    Ok((width, height, luma))
}

/// Encodes `content` as a PNG QR code, `scale` pixels per module: for tests and fixtures.
pub fn encode_png(content: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let code =
        qrcode::QrCode::new(content.as_bytes()).map_err(|e| QrError::Encode(e.to_string()))?;
    let modules = code.width() as u32;
    let quiet = 4;
    let side = (modules + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; (side * side) as usize];
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = (x / scale, y / scale);
            if mx >= quiet && my >= quiet && mx < modules + quiet && my < modules + quiet {
                let index = ((my - quiet) * modules + (mx - quiet)) as usize;
                if colors[index] == qrcode::Color::Dark {
                    pixels[(y * side + x) as usize] = 0;
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| QrError::Image(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Image(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_is_read_back_and_drawn() {
        let content = "2@abcDEF123,xyz456==,QWERTY==,789";
        let png = encode_png(content, 6).unwrap();
        assert_eq!(read_png(&png).unwrap(), content);
        let drawn = render_terminal(&QrCode::Png(png)).unwrap();
        assert!(drawn.lines().count() > 10);
        assert!(drawn.contains('█') || drawn.contains('▀') || drawn.contains('▄'));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(read_png(b"not a png"), Err(QrError::Image(_))));
        let blank = encode_png("x", 1).unwrap();
        let _ = read_png(&blank[..blank.len() / 2]);
    }
}
