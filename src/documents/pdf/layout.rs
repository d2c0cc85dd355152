//! Page layout for the PDF report: words wrapped to the text width (CJK text
//! breaks between any two characters, an over-long word between characters),
//! headings kept with what follows, simple tables, pages. Pure: it measures with
//! the `Metrics` it is given and returns positioned text runs, one font each.

/// The fonts a run can use; which one draws a character is decided per glyph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FontId {
    Regular,
    Bold,
    Cjk,
}

pub trait Metrics {
    /// The font that draws `c` (per-glyph fallback).
    fn font_for(&self, c: char, bold: bool) -> FontId;
    /// The advance of `c` in `font` at `size` points.
    fn advance(&self, font: FontId, c: char, size: f32) -> f32;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub font: FontId,
    pub size: f32,
    pub x: f32,
    pub text: String,
    pub gray: bool,
}

/// One laid-out page: text runs with their baseline `y`, and horizontal rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageOut {
    pub runs: Vec<(f32, Span)>,
    pub rules: Vec<(f32, f32, f32)>,
}

#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    pub size: f32,
    pub bold: bool,
    pub gray: bool,
    /// Line height as a multiple of the size.
    pub leading: f32,
}

pub const A4: (f32, f32) = (595.28, 841.89);
pub const MARGIN: f32 = 56.0;
/// Room at the bottom for the page number.
pub const FOOTER: f32 = 28.0;

pub struct Layout<'m, M: Metrics> {
    m: &'m M,
    pub pages: Vec<PageOut>,
    y: f32,
}

impl<'m, M: Metrics> Layout<'m, M> {
    pub fn new(m: &'m M) -> Self {
        Layout {
            m,
            pages: vec![PageOut::default()],
            y: MARGIN,
        }
    }

    fn width(&self) -> f32 {
        A4.0 - 2.0 * MARGIN
    }

    fn bottom(&self) -> f32 {
        A4.1 - MARGIN - FOOTER
    }

    fn page(&mut self) -> &mut PageOut {
        if self.pages.is_empty() {
            self.pages.push(PageOut::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    pub fn new_page(&mut self) {
        self.pages.push(PageOut::default());
        self.y = MARGIN;
    }

    /// Vertical space, unless at the top of a page.
    pub fn space(&mut self, pts: f32) {
        if self.y > MARGIN {
            self.y += pts;
        }
    }

    /// Starts a new page unless `pts` of height still fit on this one.
    pub fn keep(&mut self, pts: f32) {
        if self.y + pts > self.bottom() {
            self.new_page();
        }
    }

    /// Wrapped text, `indent` points from the left margin; lines of `text`
    /// (a code block's) stay lines.
    pub fn text(&mut self, text: &str, style: TextStyle, indent: f32) {
        let max = (self.width() - indent).max(50.0);
        for para in text.split('\n') {
            let lines = self.wrap(para, style, max);
            for line in lines {
                let height = style.size * style.leading;
                self.keep(height);
                self.y += height;
                let baseline = self.y - style.size * (style.leading - 1.0) / 2.0;
                let spans = self.spans(&line, style, MARGIN + indent);
                let y = baseline;
                self.page().runs.extend(spans.into_iter().map(|s| (y, s)));
            }
        }
    }

    /// A heading: kept on the page with at least three lines after it.
    pub fn heading(&mut self, text: &str, size: f32) {
        self.space(size * 0.8);
        self.keep(size * 1.4 + 3.0 * 15.0);
        let style = TextStyle {
            size,
            bold: true,
            gray: false,
            leading: 1.3,
        };
        self.text(text, style, 0.0);
        self.y += size * 0.3;
    }

    pub fn rule(&mut self) {
        self.keep(6.0);
        self.y += 3.0;
        let (x1, x2, y) = (MARGIN, A4.0 - MARGIN, self.y);
        self.page().rules.push((x1, y, x2));
        self.y += 3.0;
    }

    /// A table: `widths` are fractions of the text width; numeric columns
    /// (`right`) are right-aligned; cells too wide are cut with `…`.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>], widths: &[f32], right: &[bool]) {
        let size = 9.0;
        let w = self.width();
        let mut all = vec![(
            true,
            header.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )];
        all.extend(rows.iter().map(|r| (false, r.clone())));
        let n = all.len();
        for (i, (head, cells)) in all.into_iter().enumerate() {
            let style = TextStyle {
                size,
                bold: head || i + 1 == n,
                gray: false,
                leading: 1.5,
            };
            let height = size * style.leading;
            self.keep(height);
            self.y += height;
            let baseline = self.y - size * 0.35;
            let mut x = MARGIN;
            let mut spans = Vec::new();
            for (c, cell) in cells.iter().enumerate() {
                let cw = w * widths.get(c).copied().unwrap_or(0.2);
                let text = self.fit(cell, style, cw - 6.0);
                let tw = self.measure(&text, style);
                let at = if right.get(c).copied().unwrap_or(false) {
                    x + cw - 6.0 - tw
                } else {
                    x
                };
                spans.extend(self.spans(&text, style, at));
                x += cw;
            }
            self.page()
                .runs
                .extend(spans.into_iter().map(|s| (baseline, s)));
            if head || i + 2 == n {
                let y = self.y + 1.0;
                self.page().rules.push((MARGIN, y, MARGIN + w));
            }
        }
    }

    fn measure(&self, text: &str, style: TextStyle) -> f32 {
        text.chars()
            .map(|c| {
                self.m
                    .advance(self.m.font_for(c, style.bold), c, style.size)
            })
            .sum()
    }

    /// `text` cut (with `…`) to fit `max` points.
    fn fit(&self, text: &str, style: TextStyle, max: f32) -> String {
        if self.measure(text, style) <= max {
            return text.to_string();
        }
        let mut out = String::new();
        for c in text.chars() {
            out.push(c);
            if self.measure(&out, style) + self.measure("…", style) > max {
                out.pop();
                break;
            }
        }
        out.push('…');
        out
    }

    /// Greedy line breaking over pieces: a word, or one CJK character.
    fn wrap(&self, para: &str, style: TextStyle, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut width = 0.0;
        let space = self.m.advance(FontId::Regular, ' ', style.size);
        for (gap, piece) in pieces(para) {
            let pw = self.measure(&piece, style);
            let need = if gap && !line.is_empty() { space } else { 0.0 };
            if width + need + pw <= max {
                if need > 0.0 {
                    line.push(' ');
                }
                line.push_str(&piece);
                width += need + pw;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                width = 0.0;
            }
            if pw <= max {
                line.push_str(&piece);
                width = pw;
                continue;
            }
            // Longer than a line (a URL): broken between characters.
            for c in piece.chars() {
                let cw = self
                    .m
                    .advance(self.m.font_for(c, style.bold), c, style.size);
                if width + cw > max && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    width = 0.0;
                }
                line.push(c);
                width += cw;
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// A line as runs of one font each, starting at `x`.
    fn spans(&self, line: &str, style: TextStyle, mut x: f32) -> Vec<Span> {
        let mut out: Vec<Span> = Vec::new();
        for c in line.chars() {
            let font = self.m.font_for(c, style.bold);
            let adv = self.m.advance(font, c, style.size);
            match out.last_mut() {
                Some(s) if s.font == font => s.text.push(c),
                _ => out.push(Span {
                    font,
                    size: style.size,
                    x,
                    text: c.to_string(),
                    gray: style.gray,
                }),
            }
            x += adv;
        }
        out.retain(|s| !s.text.trim().is_empty());
        out
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xA960..=0xA97F | 0xAC00..=0xD7FF | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
}

/// The breakable pieces of a paragraph, each with whether a space came before it.
fn pieces(para: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut gap = false;
    for c in para.chars() {
        if c.is_whitespace() {
            if !cur.is_empty() {
                out.push((gap, std::mem::take(&mut cur)));
            }
            gap = true;
        } else if is_cjk(c) {
            if !cur.is_empty() {
                out.push((gap, std::mem::take(&mut cur)));
                gap = false;
            }
            out.push((gap, c.to_string()));
            gap = false;
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push((gap, cur));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character 5 points wide at size 10; CJK from the CJK font.
    struct Fixed;
    impl Metrics for Fixed {
        fn font_for(&self, c: char, bold: bool) -> FontId {
            match (is_cjk(c), bold) {
                (true, _) => FontId::Cjk,
                (false, true) => FontId::Bold,
                _ => FontId::Regular,
            }
        }
        fn advance(&self, _: FontId, _: char, size: f32) -> f32 {
            size / 2.0
        }
    }

    const BODY: TextStyle = TextStyle {
        size: 10.0,
        bold: false,
        gray: false,
        leading: 1.4,
    };

    #[test]
    fn words_wrap_within_the_width_and_cjk_breaks_anywhere() {
        let l = Layout::new(&Fixed);
        // 20 characters fit in 100 points.
        let lines = l.wrap("aaaa bbbb cccc dddd eeee ffff", BODY, 100.0);
        assert_eq!(lines, ["aaaa bbbb cccc dddd", "eeee ffff"]);
        let lines = l.wrap("研究研究研究研究研究研究研究研究研究研究研究", BODY, 100.0);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].chars().count(), 20);
        let lines = l.wrap(&"x".repeat(45), BODY, 100.0);
        assert_eq!(lines.len(), 3, "an over-long word is broken");
    }

    #[test]
    fn runs_change_font_per_glyph_and_pages_fill() {
        let l = Layout::new(&Fixed);
        let spans = l.spans("Ab 研究 Ελ", BODY, 0.0);
        let fonts: Vec<FontId> = spans.iter().map(|s| s.font).collect();
        assert_eq!(fonts, [FontId::Regular, FontId::Cjk, FontId::Regular]);
        assert_eq!(spans[1].x, 15.0);
        let mut l = Layout::new(&Fixed);
        for _ in 0..200 {
            l.text("a line of text", BODY, 0.0);
        }
        assert!(l.pages.len() > 1, "200 lines do not fit one page");
    }
}
