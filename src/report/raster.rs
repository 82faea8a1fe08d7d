//! The PNG plot without system libraries: plotters' bitmap backend draws the
//! lines, and [`TextBitmap`] wraps it to draw the text with ab_glyph from a
//! TrueType file found at run time. plotters is built without its own text
//! features on purpose: `ttf` needs fontconfig's headers at build time, and
//! `ab_glyph` keeps fonts in a process-wide table that, left empty on a machine
//! without fonts, makes even the SVG fail to lay out.

use std::path::{Path, PathBuf};

use ab_glyph::{point, Font, FontVec, GlyphId, PxScale, ScaleFont};
use plotters::backend::RGBPixel;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

use super::{chart, MetricsRow};

/// Font files tried first, in this order: common sans-serif regulars.
const PREFERRED: [&str; 5] =
    ["DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf", "Arial.ttf", "arial.ttf"];
/// Every character the chart's text uses; a font missing one (a symbol or
/// non-Latin font) is passed over.
const NEEDED: &str = "0123456789.-+eabcdefghijklmnopqrstuvwxyz";
/// Font folders nest (truetype/dejavu/...), but not deeply.
const MAX_DEPTH: usize = 6;

/// The folders [`crate::report::plot_losses`] looks in for a font: the usual
/// system and per-user places on Linux, macOS and Windows.
pub fn default_font_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        ["/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "/System/Library/Fonts"]
            .map(PathBuf::from)
            .into();
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        dirs.push(PathBuf::from(data).join("fonts"));
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.extend([home.join(".local/share/fonts"), home.join(".fonts"), home.join("Library/Fonts")]);
    }
    if let Some(windows) = std::env::var_os("WINDIR") {
        dirs.push(PathBuf::from(windows).join("Fonts"));
    }
    dirs
}

/// The font file the PNG plot would use, looked for in `font_dirs` and their
/// subfolders; None if there is no usable .ttf or .otf.
pub fn find_font(font_dirs: &[&Path]) -> Option<PathBuf> {
    load_font(font_dirs).map(|font| font.path)
}

pub(super) struct LoadedFont {
    pub(super) path: PathBuf,
    font: FontVec,
}

pub(super) fn load_font(font_dirs: &[&Path]) -> Option<LoadedFont> {
    let mut files = Vec::new();
    for dir in font_dirs {
        font_files(dir, MAX_DEPTH, &mut files);
    }
    // Sorted so the same machine always draws with the same font.
    files.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    files.into_iter().find_map(|path| {
        let font = FontVec::try_from_vec(std::fs::read(&path).ok()?).ok()?;
        NEEDED.chars().all(|c| font.glyph_id(c) != GlyphId(0)).then_some(LoadedFont { path, font })
    })
}

fn font_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        // file_type does not follow links, so a linked folder cannot loop the
        // walk; a linked font file is still taken, and read through the link.
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => {
                if depth > 0 {
                    font_files(&path, depth - 1, out);
                }
            }
            Ok(_) => {
                let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                if matches!(extension.as_deref(), Some("ttf" | "otf")) {
                    out.push(path);
                }
            }
            Err(_) => {}
        }
    }
}

/// Preferred names first, then regular-looking faces, then the rest.
fn rank(path: &Path) -> usize {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if let Some(place) = PREFERRED.iter().position(|p| *p == name) {
        return place;
    }
    let lower = name.to_ascii_lowercase();
    let styled = ["bold", "italic", "oblique", "light", "condensed", "mono", "math", "serif"];
    PREFERRED.len() + if styled.iter().any(|s| lower.contains(s)) { 2 } else { 1 }
}

/// Draws the figure of `rows` at `size` and returns it encoded as PNG.
pub(super) fn render_png(
    rows: &[MetricsRow],
    best_epoch: Option<usize>,
    font: &LoadedFont,
    (width, height): (u32, u32),
) -> Result<Vec<u8>, String> {
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let inner = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut pixels, (width, height))
            .map_err(|e| e.to_string())?;
        let root = TextBitmap { inner, font: &font.font }.into_drawing_area();
        chart::draw(&root, rows, best_epoch).map_err(|e| e.to_string())?;
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png)
}

/// plotters' RGB bitmap backend with text measured and drawn from `font`;
/// every other call goes straight to the bitmap.
struct TextBitmap<'a> {
    inner: BitMapBackend<'a, RGBPixel>,
    font: &'a FontVec,
}

type BitmapError<'a> = <BitMapBackend<'a, RGBPixel> as DrawingBackend>::ErrorType;

/// plotters draws a font of `size` with an em of size / 1.24 pixels (the SVG's
/// font-size and its own TrueType backend), so the PNG's text matches the SVG's.
const SIZE_PER_EM: f64 = 1.24;

impl<'a> TextBitmap<'a> {
    /// ab_glyph scales by the height from descender to ascender, not the em.
    fn scale(&self, size: f64) -> PxScale {
        let em = (size / SIZE_PER_EM) as f32;
        match self.font.units_per_em() {
            Some(units) => PxScale::from(em * self.font.height_unscaled() / units),
            None => PxScale::from(em),
        }
    }

    /// Width and height of `text` in pixels at plotters' `size`.
    fn measure(&self, text: &str, size: f64) -> (f32, f32) {
        let font = self.font.as_scaled(self.scale(size));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                width += font.kern(previous, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        (width, font.ascent() - font.descent())
    }
}

impl<'a> DrawingBackend for TextBitmap<'a> {
    type ErrorType = BitmapError<'a>;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (width, height): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, (width, height), src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (width, height) = self.measure(text, style.size());
        Ok((width.ceil() as u32, height.ceil() as u32))
    }

    /// Anchored and rotated as plotters' default draw_text does, so the layout
    /// matches what estimate_text_size promised.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (width, height) = self.measure(text, style.size());
        let (width, height) = (width.ceil() as i32, height.ceil() as i32);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };

        // Coverage of each pixel of the text, with (0, 0) the top left of its box.
        let font = self.font.as_scaled(self.scale(style.size()));
        let mut coverage = Vec::new();
        let mut caret = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                caret += font.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(font.scale(), point(caret, font.ascent()));
            caret += font.h_advance(id);
            previous = Some(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (left, top) = (bounds.min.x as i32, bounds.min.y as i32);
                outline.draw(|x, y, amount| coverage.push((left + x as i32, top + y as i32, amount)));
            }
        }

        let transform = style.transform();
        for (x, y, amount) in coverage {
            // Below one step of 8-bit colour the blend changes nothing.
            if amount < 1.0 / 255.0 {
                continue;
            }
            let (x, y) = transform.transform(x + dx, y + dy);
            let alpha = color.alpha * f64::from(amount.min(1.0));
            self.inner.draw_pixel((pos.0 + x, pos.1 + y), BackendColor { alpha, rgb: color.rgb })?;
        }
        Ok(())
    }
}
