//! Generates the small PNG every simulated image is made of (once per server).

use bytes::Bytes;

/// An 8x8 RGB PNG of one colour.
pub(crate) fn tiny_png(rgb: [u8; 3]) -> Bytes {
    const SIDE: u32 = 8;
    let mut out = Vec::new();
    let pixels: Vec<u8> = (0..SIDE * SIDE).flat_map(|_| rgb).collect();
    let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let written = encoder.write_header().and_then(|mut writer| {
        writer.write_image_data(&pixels)?;
        writer.finish()
    });
    match written {
        Ok(()) => Bytes::from(out),
        // Encoding a fixed, valid image into memory cannot fail; fall back to no bytes.
        Err(_) => Bytes::new(),
    }
}
